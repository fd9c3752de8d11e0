package activator

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	// Crashing, when set, is the last crash an instance reported within
	// crashMemory (a trap, a crash loop), even if instances are ready.
	Crashing string
	// SourceFailed is true when LastError comes from preparing the
	// Revision's source (a missing executable, a module that does not
	// compile), not from an instance.
	SourceFailed bool
}

// crashMemory is how long a pool reports an instance's crash.
const crashMemory = 5 * time.Minute

// DefaultQueueDepth is how many requests a Pool holds while no instance
// has capacity, before it answers 503 (Knative's activator breaker depth).
const DefaultQueueDepth = 10000

// PoolOptions configure a Pool.
type PoolOptions struct {
	Revision *api.Revision
	Provider runtime.Provider
	Log      *slog.Logger
	// StopWait bounds how long a scaled-down instance may drain.
	StopWait time.Duration
	// OnChange, when set, is called after the pool's status changed; it
	// must not block.
	OnChange func()
	// OnPoke, when set, is called when a request arrives while no
	// instance is ready, so that the autoscaler can scale from zero at
	// once instead of at its next tick; it must not block.
	OnPoke func()
	// QueueDepth bounds the requests held while no instance has
	// capacity; 0 means DefaultQueueDepth.
	QueueDepth int
	// OnColdStart, when set, is called for every request that arrived
	// while no instance was ready and was then served, with how long it
	// waited for an instance.
	OnColdStart func(wait time.Duration)
}

// Pool keeps the instances of one Revision and hands requests to them by
// Knative's load-balancing policies, never more at once to an instance
// than the Revision's containerConcurrency (one for Wasm). Scale sets how
// many instances it keeps; requests that find no capacity wait, in a
// bounded queue, until an instance has room or their context ends.
type Pool struct {
	rev        *api.Revision
	provider   runtime.Provider
	log        *slog.Logger
	onChange   func()
	onPoke     func()
	onCold     func(time.Duration)
	stopWait   time.Duration
	capacity   int64 // per instance; 0 means unlimited
	queueDepth int64

	ctx    context.Context // ends when the pool closes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	inFlight atomic.Int64 // requests in the pool: queued or being served
	waiting  atomic.Int64 // requests waiting for capacity
	active   atomic.Int64 // requests inside instances
	policy   atomic.Pointer[PoolPolicy]
	rr       atomic.Uint64
	stats    concurrencyStats

	mu        sync.Mutex
	desired   int
	members   []*member
	starting  int
	failures  int       // consecutive start failures
	retryAt   time.Time // no start before this after a failure
	retryT    *time.Timer
	lastErr   string
	crash     string
	crashAt   time.Time
	sourceErr bool
	prepared  bool
	everReady bool
	closed    bool
	changed   chan struct{} // closed and replaced whenever readiness changes
}

type member struct {
	inst     runtime.Instance
	ready    atomic.Bool
	inFlight atomic.Int64

	// Outlier detection: 5xx answers in a row, how many times the
	// instance was ejected, and until when (Unix nanoseconds).
	failures     atomic.Int64
	ejections    atomic.Int64
	ejectedUntil atomic.Int64
}

// usable reports whether m takes requests at now (Unix nanoseconds).
func (m *member) usable(now int64) bool {
	return m.ready.Load() && m.ejectedUntil.Load() <= now
}

// PoolPolicy is the resilience a Function asks of each of its pools:
// circuit breaking and outlier detection.
type PoolPolicy struct {
	// MaxRequests bounds the requests inside instances at once; the
	// rest wait. 0 means no bound beyond containerConcurrency.
	MaxRequests int64
	// MaxPending bounds the requests waiting; past it requests get 503
	// at once. 0 means the pool's queue depth.
	MaxPending int64
	// Outlier, when set, ejects instances that answer 5xx in a row.
	Outlier *OutlierPolicy
}

// OutlierPolicy ejects an instance from load balancing after
// Consecutive5xx answers of 5xx in a row, for BaseEjection times the
// number of times it was ejected. At most MaxEjectionPercent of the
// ready instances are ejected at once, and never the last one.
type OutlierPolicy struct {
	Consecutive5xx     int64
	BaseEjection       time.Duration
	MaxEjectionPercent int
}

// SetPolicy applies a Function's circuit breaker and outlier detection
// to the pool, from the next request on.
func (p *Pool) SetPolicy(pp PoolPolicy) {
	if old := p.policy.Load(); old != nil && old.MaxRequests == pp.MaxRequests && old.MaxPending == pp.MaxPending &&
		(old.Outlier == nil) == (pp.Outlier == nil) && (old.Outlier == nil || *old.Outlier == *pp.Outlier) {
		return
	}
	p.policy.Store(&pp)
	p.mu.Lock()
	p.broadcastLocked() // a raised bound frees waiting requests
	p.mu.Unlock()
}

// NewPool returns an empty pool.
func NewPool(o PoolOptions) *Pool {
	ctx, cancel := context.WithCancel(context.Background())
	nop := func() {}
	if o.OnChange == nil {
		o.OnChange = nop
	}
	if o.OnPoke == nil {
		o.OnPoke = nop
	}
	if o.OnColdStart == nil {
		o.OnColdStart = func(time.Duration) {}
	}
	if o.QueueDepth <= 0 {
		o.QueueDepth = DefaultQueueDepth
	}
	p := &Pool{
		rev:        o.Revision,
		provider:   o.Provider,
		log:        o.Log.With("namespace", o.Revision.Namespace, "revision", o.Revision.Name),
		onChange:   o.OnChange,
		onPoke:     o.OnPoke,
		onCold:     o.OnColdStart,
		stopWait:   o.StopWait,
		capacity:   instanceCapacity(o.Revision),
		queueDepth: int64(o.QueueDepth),
		ctx:        ctx,
		cancel:     cancel,
		changed:    make(chan struct{}),
	}
	p.stats.reset(time.Now())
	return p
}

// instanceCapacity is how many requests one instance of rev may serve at
// once: its containerConcurrency, and always one for a Wasm instance.
func instanceCapacity(rev *api.Revision) int64 {
	if rev.Spec.Wasm != nil {
		return 1
	}
	if cc := rev.Spec.ContainerConcurrency; cc != nil && *cc > 0 {
		return *cc
	}
	return 0
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
	if p.crash != "" && time.Since(p.crashAt) < crashMemory {
		s.Crashing = p.crash
	}
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
		p.broadcastLocked() // waiting requests learn of the failure
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
	switch {
	case !s.Ready && s.Reason != "":
		p.lastErr = s.Reason
	case s.Ready:
		p.lastErr = ""
	}
	if s.Reason != "" {
		// An instance crashed (and restarts or is replaced), or lives on
		// while its requests crash: say so for a while, even once
		// instances are ready again.
		p.crash, p.crashAt = s.Reason, time.Now()
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

// pick reserves capacity on a ready instance by the load-balancing
// policy of the Revision's concurrency, as Knative's activator does:
// unlimited → the less loaded of two random instances; up to 3 → the first
// with room; more → round robin over those with room. When none has room
// it returns the channel that is closed when that may have changed.
func (p *Pool) pick() (*member, <-chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, true
	}
	n := len(p.members)
	if pol := p.policy.Load(); pol != nil && pol.MaxRequests > 0 && p.active.Load() >= pol.MaxRequests {
		return nil, p.changed, false
	}
	now := time.Now().UnixNano()
	var m *member
	switch {
	case n == 0:
	case p.capacity == 0:
		m = p.twoChoicesLocked(now)
	case p.capacity <= 3:
		for _, x := range p.members {
			if x.usable(now) && x.inFlight.Load() < p.capacity {
				m = x
				break
			}
		}
	default:
		start := int(p.rr.Add(1))
		for i := range n {
			x := p.members[(start+i)%n]
			if x.usable(now) && x.inFlight.Load() < p.capacity {
				m = x
				break
			}
		}
	}
	if m == nil {
		return nil, p.changed, false
	}
	m.inFlight.Add(1)
	p.active.Add(1)
	return m, nil, false
}

// twoChoicesLocked picks the less loaded of two random ready instances.
func (p *Pool) twoChoicesLocked(now int64) *member {
	ready := make([]*member, 0, len(p.members))
	for _, x := range p.members {
		if x.usable(now) {
			ready = append(ready, x)
		}
	}
	switch len(ready) {
	case 0:
		return nil
	case 1:
		return ready[0]
	}
	i := rand.IntN(len(ready))
	j := rand.IntN(len(ready) - 1)
	if j >= i {
		j++
	}
	if ready[j].inFlight.Load() < ready[i].inFlight.Load() {
		return ready[j]
	}
	return ready[i]
}

// release returns capacity taken by pick and wakes a waiting request.
func (p *Pool) release(m *member) {
	m.inFlight.Add(-1)
	p.active.Add(-1)
	if p.waiting.Load() > 0 {
		p.mu.Lock()
		p.broadcastLocked()
		p.mu.Unlock()
	}
}

// ServeHTTP serves the request on an instance with capacity, waiting for
// one while there is none. A request that finds the queue full gets 503
// with Retry-After, one whose context ends while it waits 504, one that
// arrives at a closed pool 503.
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.inFlight.Add(1)
	p.stats.change(time.Now(), 1)
	defer func() {
		p.inFlight.Add(-1)
		p.stats.change(time.Now(), -1)
	}()
	queued, cold := false, false
	arrived := time.Now()
	defer func() {
		if queued {
			p.waiting.Add(-1)
		}
	}()
	for {
		m, wait, closed := p.pick()
		if closed {
			runtime.WriteFailure(w, http.StatusServiceUnavailable, runtime.FailureOverloaded, fmt.Sprintf("revision %s is shutting down", p.rev.Name))
			return
		}
		if m != nil {
			if queued {
				p.waiting.Add(-1)
				queued = false
			}
			if cold {
				p.onCold(time.Since(arrived))
			}
			p.serve(m, w, r)
			return
		}
		if s := p.Status(); s.Ready == 0 && s.Starting == 0 && s.LastError != "" && s.Desired > 0 {
			// The last start failed and the next is not due yet: say why
			// now rather than hold the request until its deadline.
			w.Header().Set("Retry-After", "1")
			runtime.WriteFailure(w, http.StatusServiceUnavailable, runtime.FailureOverloaded, fmt.Sprintf("revision %s has no instance: %s", p.rev.Name, s.LastError))
			return
		}
		if !queued {
			depth, why := p.queueDepth, "requests are already waiting"
			if pol := p.policy.Load(); pol != nil && pol.MaxPending > 0 {
				depth, why = pol.MaxPending, "requests are already waiting (the circuit breaker's maxPendingRequests)"
			}
			if p.waiting.Add(1) > depth {
				p.waiting.Add(-1)
				w.Header().Set("Retry-After", "1")
				runtime.WriteFailure(w, http.StatusServiceUnavailable, runtime.FailureOverloaded, fmt.Sprintf("revision %s is overloaded: %d %s", p.rev.Name, depth, why))
				return
			}
			queued = true
			if p.Status().Ready == 0 {
				cold = true
				p.onPoke()
			}
		}
		select {
		case <-wait:
		case <-r.Context().Done():
			msg := fmt.Sprintf("no instance of revision %s had room in time", p.rev.Name)
			if s := p.Status(); s.LastError != "" {
				msg += ": " + s.LastError
			} else if s.Ready == 0 {
				msg = fmt.Sprintf("no instance of revision %s became ready in time", p.rev.Name)
			}
			runtime.WriteFailure(w, http.StatusGatewayTimeout, runtime.FailureTimeout, msg)
			return
		}
	}
}

// serve hands a request to an instance whose capacity pick reserved,
// watching its status for outlier detection when the policy asks.
func (p *Pool) serve(m *member, w http.ResponseWriter, r *http.Request) {
	defer p.release(m)
	pol := p.policy.Load()
	if pol == nil || pol.Outlier == nil {
		m.inst.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	m.inst.ServeHTTP(sw, r)
	if sw.code < 500 {
		m.failures.Store(0)
		return
	}
	if m.failures.Add(1) >= pol.Outlier.Consecutive5xx {
		p.eject(m, pol.Outlier)
	}
}

// eject takes m out of load balancing for a while, unless that would
// eject more than the policy allows.
func (p *Pool) eject(m *member, o *OutlierPolicy) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if m.ejectedUntil.Load() > now.UnixNano() {
		return
	}
	ready, ejected := 0, 0
	for _, x := range p.members {
		if x.ready.Load() {
			ready++
			if x.ejectedUntil.Load() > now.UnixNano() {
				ejected++
			}
		}
	}
	if ready-ejected <= 1 || (ejected+1)*100 > ready*o.MaxEjectionPercent {
		return
	}
	n := m.ejections.Add(1)
	d := o.BaseEjection * time.Duration(n)
	m.ejectedUntil.Store(now.Add(d).UnixNano())
	m.failures.Store(0)
	p.log.Warn("instance ejected after consecutive 5xx answers", "instance", m.inst.ID(), "for", d, "ejections", n)
	time.AfterFunc(d, func() {
		p.mu.Lock()
		p.broadcastLocked() // requests waiting may use it again
		p.mu.Unlock()
	})
}

// Waiting returns the number of requests waiting for capacity.
func (p *Pool) Waiting() int64 { return p.waiting.Load() }

// Stats returns the average number of requests in the pool (being served
// or waiting) since the last call, and how many arrived, then starts a
// new period. The autoscaler reads it once a second.
func (p *Pool) Stats(now time.Time) (concurrency float64, requests float64) {
	return p.stats.collect(now)
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
