package activator

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/runtime"
)

// Start-failure backoff of a Pool: the first retry waits startBackoffMin,
// each further consecutive failure doubles it up to startBackoffMax.
const (
	startBackoffMin = 200 * time.Millisecond
	startBackoffMax = 30 * time.Second
)

// PoolStatus is a snapshot of a Pool for status reporting.
type PoolStatus struct {
	// Desired is the number of instances asked for by the last Scale.
	Desired int
	// Ready is the number of instances that take requests now.
	Ready int
	// Starting is the number of instances being started.
	Starting int
	// LastError says why the last start failed or the last instance
	// stopped being ready; empty once an instance is ready again.
	LastError string
	// EverReady is true once any instance of the Revision was ready.
	EverReady bool
	// SourceFailed is true when LastError comes from preparing the
	// Revision's source (a missing executable, a module that does not
	// compile), not from an instance.
	SourceFailed bool
}

// Pool keeps the instances of one Revision and hands requests to them.
// Scale sets how many instances it keeps; requests that arrive while no
// instance is ready wait for one until their context ends.
type Pool struct {
	rev      *api.Revision
	provider runtime.Provider
	log      *slog.Logger
	onChange func()
	stopWait time.Duration

	ctx    context.Context // ends when the pool closes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	inFlight atomic.Int64
	rr       atomic.Uint64

	mu        sync.Mutex
	desired   int
	members   []*member
	starting  int
	failures  int       // consecutive start failures
	retryAt   time.Time // no start before this after a failure
	retryT    *time.Timer
	lastErr   string
	sourceErr bool
	prepared  bool
	everReady bool
	closed    bool
	changed   chan struct{} // closed and replaced whenever readiness changes
}

type member struct {
	inst  runtime.Instance
	ready atomic.Bool
}

// NewPool returns an empty pool for rev. onChange, which may be nil, is
// called after the pool's status changed; it must not block. stopWait
// bounds how long a scaled-down instance may drain.
func NewPool(rev *api.Revision, provider runtime.Provider, log *slog.Logger, stopWait time.Duration, onChange func()) *Pool {
	ctx, cancel := context.WithCancel(context.Background())
	if onChange == nil {
		onChange = func() {}
	}
	return &Pool{
		rev:      rev,
		provider: provider,
		log:      log.With("namespace", rev.Namespace, "revision", rev.Name),
		onChange: onChange,
		stopWait: stopWait,
		ctx:      ctx,
		cancel:   cancel,
		changed:  make(chan struct{}),
	}
}

// Revision returns the Revision the pool runs.
func (p *Pool) Revision() *api.Revision { return p.rev }

// InFlight returns the number of requests the pool is serving or holding.
func (p *Pool) InFlight() int64 { return p.inFlight.Load() }

// Status returns a snapshot of the pool.
func (p *Pool) Status() PoolStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := PoolStatus{Desired: p.desired, Starting: p.starting, LastError: p.lastErr, EverReady: p.everReady, SourceFailed: p.sourceErr}
	for _, m := range p.members {
		if m.ready.Load() {
			s.Ready++
		}
	}
	return s
}

// Scale sets the number of instances the pool keeps.
func (p *Pool) Scale(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || n == p.desired {
		return
	}
	p.desired = n
	p.reconcileLocked()
}

// reconcileLocked starts or stops instances until their number matches
// desired. Must be called with p.mu held.
func (p *Pool) reconcileLocked() {
	if p.closed {
		return
	}
	for len(p.members)+p.starting < p.desired {
		if wait := time.Until(p.retryAt); wait > 0 {
			if p.retryT == nil {
				p.retryT = time.AfterFunc(wait, func() {
					p.mu.Lock()
					defer p.mu.Unlock()
					p.retryT = nil
					p.reconcileLocked()
				})
			}
			return
		}
		p.starting++
		p.wg.Add(1)
		go p.start()
	}
	for len(p.members)+p.starting > p.desired && len(p.members) > 0 {
		// Stop a not-ready instance first, else the newest.
		i := len(p.members) - 1
		for j, m := range p.members {
			if !m.ready.Load() {
				i = j
				break
			}
		}
		m := p.members[i]
		p.members = append(p.members[:i], p.members[i+1:]...)
		p.wg.Add(1)
		go p.stop(m)
	}
}

func (p *Pool) start() {
	defer p.wg.Done()
	m := &member{}
	begin := time.Now()
	var inst runtime.Instance
	err := p.prepare()
	prepareFailed := err != nil
	if err == nil {
		inst, err = p.provider.Start(p.ctx, p.rev, func(s runtime.State) { p.observe(m, s) })
	}

	p.mu.Lock()
	p.starting--
	p.sourceErr = prepareFailed
	if err == nil && p.closed {
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), p.stopWait)
		defer cancel()
		_ = inst.Stop(ctx)
		return
	}
	if err != nil {
		p.failures++
		backoff := min(startBackoffMin<<min(p.failures-1, 16), startBackoffMax)
		p.retryAt = time.Now().Add(backoff)
		p.lastErr = err.Error()
		p.log.Warn("instance failed to start", "error", err, "failures", p.failures, "retry_in", backoff)
		p.reconcileLocked()
		p.mu.Unlock()
		p.onChange()
		return
	}
	m.inst = inst
	m.ready.Store(inst.Ready())
	p.failures, p.lastErr, p.everReady = 0, "", true
	p.members = append(p.members, m)
	p.log.Info("instance started", "instance", inst.ID(), "duration", time.Since(begin))
	p.broadcastLocked()
	p.reconcileLocked() // scaled down while starting: stop the surplus
	p.mu.Unlock()
	p.onChange()

	p.wg.Add(1)
	go p.watchDone(m)
}

// watchDone removes an instance that ended by itself and replaces it.
func (p *Pool) watchDone(m *member) {
	defer p.wg.Done()
	select {
	case <-m.inst.Done():
	case <-p.ctx.Done():
		return
	}
	p.mu.Lock()
	for i, x := range p.members {
		if x == m {
			p.members = append(p.members[:i], p.members[i+1:]...)
			p.log.Warn("instance ended", "instance", m.inst.ID())
			p.broadcastLocked()
			p.reconcileLocked()
			break
		}
	}
	p.mu.Unlock()
	p.onChange()
}

// prepare runs the provider's Prepare once it has succeeded; a failure
// is retried with the next start.
func (p *Pool) prepare() error {
	p.mu.Lock()
	done := p.prepared
	p.mu.Unlock()
	if done {
		return nil
	}
	if err := p.provider.Prepare(p.ctx, p.rev); err != nil {
		return err
	}
	p.mu.Lock()
	p.prepared = true
	p.mu.Unlock()
	return nil
}

func (p *Pool) observe(m *member, s runtime.State) {
	m.ready.Store(s.Ready && !s.Gone)
	p.mu.Lock()
	if !s.Ready && s.Reason != "" {
		p.lastErr = s.Reason
	} else if s.Ready {
		p.lastErr = ""
	}
	p.broadcastLocked()
	p.mu.Unlock()
	p.onChange()
}

func (p *Pool) stop(m *member) {
	defer p.wg.Done()
	m.ready.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), p.stopWait)
	defer cancel()
	if err := m.inst.Stop(ctx); err != nil {
		p.log.Warn("stopping instance", "instance", m.inst.ID(), "error", err)
	}
	p.onChange()
}

// broadcastLocked wakes every request waiting for a ready instance.
func (p *Pool) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// pick returns a ready instance, round robin, or the channel to wait on.
func (p *Pool) pick() (runtime.Instance, <-chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, true
	}
	n := len(p.members)
	start := int(p.rr.Add(1))
	for i := range n {
		m := p.members[(start+i)%n]
		if m.ready.Load() {
			return m.inst, nil, false
		}
	}
	return nil, p.changed, false
}

// ServeHTTP serves the request on a ready instance, waiting for one while
// none is ready. A request whose context ends first gets 504, one that
// arrives at a closed pool 503.
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		inst, wait, closed := p.pick()
		if closed {
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("revision %s is shutting down", p.rev.Name))
			return
		}
		if inst != nil {
			inst.ServeHTTP(w, r)
			return
		}
		select {
		case <-wait:
		case <-r.Context().Done():
			msg := fmt.Sprintf("no instance of revision %s became ready in time", p.rev.Name)
			if s := p.Status(); s.LastError != "" {
				msg += ": " + s.LastError
			}
			writeError(w, http.StatusGatewayTimeout, msg)
			return
		}
	}
}

// Close stops every instance, letting requests in flight finish until ctx
// ends, and waits for the pool's goroutines.
func (p *Pool) Close(ctx context.Context) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	if p.retryT != nil {
		p.retryT.Stop()
	}
	members := p.members
	p.members = nil
	p.broadcastLocked()
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, m := range members {
		wg.Go(func() {
			if err := m.inst.Stop(ctx); err != nil {
				p.log.Warn("stopping instance", "instance", m.inst.ID(), "error", err)
			}
		})
	}
	wg.Wait()
	p.cancel() // abandons starts still in progress
	p.wg.Wait()
}
