package triggers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
)

// Defaults of Options.
const (
	DefaultStatusInterval = 2 * time.Second
	DefaultShutdownGrace  = 10 * time.Second
	// DefaultAsyncTimeout bounds one attempt of an asynchronous call; the
	// function's own timeout still applies.
	DefaultAsyncTimeout = "5m"
	// DefaultAsyncInFlight bounds the asynchronous calls made at once.
	DefaultAsyncInFlight = 64
)

// Options configure a Manager.
type Options struct {
	// JetStream carries the events, the asynchronous calls and the
	// consumers. Required.
	JetStream jetstream.JetStream
	// Store holds the Triggers (watched) and the Functions (read to
	// answer 404 to calls of unknown functions). Required.
	Store store.Store
	// GatewayURL is the node's gateway, reached on loopback, e.g.
	// http://127.0.0.1:8080: functions are called at
	// GatewayURL/fn/<namespace>/<name>/. Required.
	GatewayURL string
	// GatewayTLS, when the gateway serves HTTPS, is the client TLS
	// configuration for reaching it on loopback.
	GatewayTLS *tls.Config
	// Domain is the gateway's domain: requests to hosts under it are a
	// function's, even on /events/ and /async/ paths.
	Domain string
	// Log receives the manager's log; nil discards it.
	Log *slog.Logger
	// Registry registers the metrics; nil registers them nowhere.
	Registry prometheus.Registerer
	// StatusInterval is how often Trigger status is written; 0 means
	// DefaultStatusInterval.
	StatusInterval time.Duration
	// OrphanMinAge is how much older than the node's first list of
	// triggers a consumer with no trigger must be to be deleted at start
	// (against clock skew with the NATS server); 0 means a minute.
	OrphanMinAge time.Duration
	// ShutdownGrace is how long deliveries in flight may take to finish
	// once a consumer stops; 0 means DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// AsyncDelivery is the retry policy of asynchronous calls; fields left
	// empty take a Trigger's defaults, with DefaultAsyncTimeout.
	AsyncDelivery api.DeliverySpec
	// AsyncInFlight bounds the asynchronous calls made at once; 0 means
	// DefaultAsyncInFlight.
	AsyncInFlight int
	// Leading says whether this node writes the Triggers' status (one
	// node of a cluster, the leader, does); nil means always. Every node
	// adds the events it delivered and dead-lettered to the counts.
	Leading func() bool
}

// Manager runs the consumers of the Triggers in the store, the event
// ingress and asynchronous calls of one node.
type Manager struct {
	opts      Options
	log       *slog.Logger
	metrics   *metrics
	client    *http.Client
	triggers  *store.Typed[api.Trigger, *api.Trigger]
	functions *store.Typed[api.Function, *api.Function]
	async     policy

	mu      sync.Mutex
	runners map[string]*runner
	// written is the status last written per trigger.
	written map[string]api.TriggerStatus
}

// New returns a Manager; Run starts it.
func New(opts Options) (*Manager, error) {
	if opts.JetStream == nil || opts.Store == nil || opts.GatewayURL == "" {
		return nil, errors.New("triggers: Options.JetStream, Store and GatewayURL are required")
	}
	if opts.OrphanMinAge <= 0 {
		opts.OrphanMinAge = time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = DefaultStatusInterval
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = DefaultShutdownGrace
	}
	if opts.AsyncInFlight <= 0 {
		opts.AsyncInFlight = DefaultAsyncInFlight
	}
	opts.GatewayURL = strings.TrimSuffix(opts.GatewayURL, "/")
	ad := (&api.Trigger{Spec: api.TriggerSpec{Delivery: opts.AsyncDelivery}})
	if ad.Spec.Delivery.Timeout == "" {
		ad.Spec.Delivery.Timeout = DefaultAsyncTimeout
	}
	ad.SetDefaults()
	async, err := newPolicy(ad.Spec.Delivery)
	if err != nil {
		return nil, fmt.Errorf("triggers: Options.AsyncDelivery: %w", err)
	}
	met, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	return &Manager{
		opts:      opts,
		log:       opts.Log,
		metrics:   met,
		client:    &http.Client{Transport: newTransport(opts.GatewayTLS)},
		triggers:  store.NewTyped[api.Trigger](opts.Store, store.Triggers),
		functions: store.NewTyped[api.Function](opts.Store, store.Functions),
		async:     async,
		runners:   make(map[string]*runner),
		written:   make(map[string]api.TriggerStatus),
	}, nil
}

// Run watches the Triggers and runs their consumers and the worker of
// asynchronous calls until ctx ends; then it stops them, letting
// deliveries in flight finish within the shutdown grace. It returns an
// error if the store's watch fails.
func (m *Manager) Run(ctx context.Context) error {
	listed := time.Now()
	events, err := m.triggers.Watch(ctx, "")
	if err != nil {
		return fmt.Errorf("triggers: watching triggers: %w", err)
	}
	asyncDone := m.runAsync(ctx)
	defer func() {
		m.stopAll()
		<-asyncDone
	}()
	tick := time.NewTicker(m.opts.StatusInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("triggers: the store's watch of triggers ended")
			}
			m.apply(ctx, ev, listed)
		case <-tick.C:
			m.refresh(ctx)
		}
	}
}

// apply starts, restarts or stops a trigger's consumer for a change seen
// in the store.
func (m *Manager) apply(ctx context.Context, ev store.TypedEvent[*api.Trigger], listed time.Time) {
	if ev.Type == store.Synced {
		// Every stored trigger has its consumer now: those of triggers
		// deleted while the node was down are left over.
		m.deleteOrphans(ctx, listed)
		return
	}
	t := ev.Object
	key := t.Namespace + "/" + t.Name
	m.mu.Lock()
	old := m.runners[key]
	m.mu.Unlock()
	if ev.Type == store.Delete {
		if old != nil {
			m.remove(ctx, key, old)
			m.log.Info("trigger stopped and its consumer deleted", "trigger", key)
		}
		return
	}
	if ev.Err != nil {
		m.log.Error("cannot decode a stored trigger; it keeps its previous consumer", "trigger", key, "error", ev.Err)
		return
	}
	t.SetDefaults()
	if fe := t.Validate(); fe != nil {
		m.log.Error("stored trigger is invalid; it keeps its previous consumer", "trigger", key, "error", fe.Error())
		return
	}
	if old != nil && reflect.DeepEqual(old.trigger.Spec, t.Spec) {
		return // a status update, or nothing that the consumer sees
	}
	if old != nil {
		old.stop()
		if oldStream := old.trigger.Spec.Source.Stream; oldStream != t.Spec.Source.Stream {
			m.deleteConsumer(ctx, oldStream, t.Namespace, t.Name)
		}
	}
	r, err := m.newRunner(t)
	if err != nil {
		m.log.Error("cannot run trigger", "trigger", key, "error", err)
		return
	}
	if old != nil {
		// What the stopped runner counted and did not report yet.
		r.nDelivered.Store(old.nDelivered.Load() - old.repDelivered)
		r.nDeadLettered.Store(old.nDeadLettered.Load() - old.repDeadLettered)
	}
	r.start(ctx)
	m.mu.Lock()
	m.runners[key] = r
	if _, ok := m.written[key]; !ok || old == nil {
		m.written[key] = t.Status
	}
	m.mu.Unlock()
	verb := "started"
	if old != nil {
		verb = "updated"
	}
	m.log.Info("trigger "+verb, "trigger", key, "stream", t.Spec.Source.Stream, "subject", t.Spec.Source.Subject, "sink", r.sink)
}

// remove stops a deleted trigger and deletes its durable consumer.
func (m *Manager) remove(ctx context.Context, key string, r *runner) {
	r.stop()
	t := r.trigger
	m.deleteConsumer(ctx, t.Spec.Source.Stream, t.Namespace, t.Name)
	m.metrics.forget(t.Namespace, t.Name)
	m.mu.Lock()
	delete(m.runners, key)
	delete(m.written, key)
	m.mu.Unlock()
}

func (m *Manager) deleteConsumer(ctx context.Context, stream, namespace, name string) {
	err := m.opts.JetStream.DeleteConsumer(ctx, stream, ConsumerName(namespace, name))
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		m.log.Warn("deleting a trigger's consumer", "stream", stream, "consumer", ConsumerName(namespace, name), "error", err)
	}
}

// deleteOrphans deletes the durable consumers of triggers that no longer
// exist (deleted, or moved to another stream, while no node ran), so that
// the streams do not keep messages for nobody. A consumer created after
// listed (less Options.OrphanMinAge) is kept: another node that shares the NATS
// may have created it for a trigger this node's list did not hold yet, and
// deleting it would redeliver that trigger's events from the start.
func (m *Manager) deleteOrphans(ctx context.Context, listed time.Time) {
	m.mu.Lock()
	live := map[string]bool{}
	for _, r := range m.runners {
		live[r.trigger.Spec.Source.Stream+"/"+ConsumerName(r.trigger.Namespace, r.trigger.Name)] = true
	}
	m.mu.Unlock()
	streams := m.opts.JetStream.StreamNames(ctx)
	for stream := range streams.Name() {
		st, err := m.opts.JetStream.Stream(ctx, stream)
		if err != nil {
			continue
		}
		names := st.ConsumerNames(ctx)
		for name := range names.Name() {
			if !strings.HasPrefix(name, "wisp_") || name == asyncConsumer || live[stream+"/"+name] {
				continue
			}
			if c, err := st.Consumer(ctx, name); err != nil || c.CachedInfo().Created.After(listed.Add(-m.opts.OrphanMinAge)) {
				continue
			}
			if err := st.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				m.log.Warn("deleting a left-over trigger consumer", "stream", stream, "consumer", name, "error", err)
				continue
			}
			m.log.Info("deleted the consumer of a trigger that no longer exists", "stream", stream, "consumer", name)
		}
		if err := names.Err(); err != nil {
			m.log.Warn("listing consumers", "stream", stream, "error", err)
		}
	}
	if err := streams.Err(); err != nil {
		m.log.Warn("listing streams for left-over consumers", "error", err)
	}
}

// stopAll stops every consumer at once, keeping the durable consumers.
func (m *Manager) stopAll() {
	m.mu.Lock()
	runners := make([]*runner, 0, len(m.runners))
	for _, r := range m.runners {
		runners = append(runners, r)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Go(r.stop)
	}
	wg.Wait()
}

// refresh writes the status of every trigger whose status changed. A
// node that does not lead only adds the events it delivered and
// dead-lettered since its last write to the counts.
func (m *Manager) refresh(ctx context.Context) {
	leading := m.opts.Leading == nil || m.opts.Leading()
	m.mu.Lock()
	runners := make(map[string]*runner, len(m.runners))
	for k, r := range m.runners {
		runners[k] = r
	}
	m.mu.Unlock()
	for key, r := range runners {
		m.mu.Lock()
		prev := m.written[key]
		m.mu.Unlock()
		next := r.status(ctx, prev)
		dDelivered, dDead := next.Delivered-prev.Delivered, next.DeadLettered-prev.DeadLettered
		if leading && reflect.DeepEqual(next, prev) || !leading && dDelivered == 0 && dDead == 0 {
			continue
		}
		t, err := m.triggers.Get(ctx, r.trigger.Namespace, r.trigger.Name)
		if err != nil {
			continue // deleted: the watch says so next
		}
		// The stored counts hold the other nodes' shares too.
		delivered, dead := t.Status.Delivered+dDelivered, t.Status.DeadLettered+dDead
		if leading {
			t.Status = next
		}
		t.Status.Delivered, t.Status.DeadLettered = delivered, dead
		if _, err := m.triggers.UpdateStatus(ctx, t); err != nil {
			if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
				m.log.Warn("writing trigger status", "trigger", key, "error", err)
			}
			continue // written on the next tick
		}
		r.repDelivered += dDelivered
		r.repDeadLettered += dDead
		m.mu.Lock()
		if m.runners[key] == r {
			if leading {
				m.written[key] = t.Status
			} else {
				w := m.written[key]
				w.Delivered, w.DeadLettered = delivered, dead
				m.written[key] = w
			}
		}
		m.mu.Unlock()
	}
}

// status is prev brought up to date with the consumer's state and the
// runner's counts.
func (r *runner) status(ctx context.Context, prev api.TriggerStatus) api.TriggerStatus {
	t := r.trigger
	st := api.TriggerStatus{
		ObservedGeneration: t.Generation,
		Conditions:         prev.Conditions.DeepCopy(),
		Stream:             t.Spec.Source.Stream,
		Consumer:           ConsumerName(t.Namespace, t.Name),
		SinkURI:            r.sink,
		// The stored counts and what this node has not added to them.
		Delivered:     prev.Delivered + r.nDelivered.Load() - r.repDelivered,
		DeadLettered:  prev.DeadLettered + r.nDeadLettered.Load() - r.repDeadLettered,
		LastError:     prev.LastError,
		LastErrorTime: prev.LastErrorTime,
	}
	r.mu.Lock()
	cons, setupErr, lastErr, lastAt := r.cons, r.setupErr, r.lastErr, r.lastAt
	r.mu.Unlock()
	if cons != nil {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := cons.Info(ictx)
		cancel()
		if err == nil {
			st.Pending, st.AckPending, st.Redelivered = info.NumPending, info.NumAckPending, info.NumRedelivered
		} else {
			st.Pending, st.AckPending, st.Redelivered = prev.Pending, prev.AckPending, prev.Redelivered
		}
	}
	if lastErr != "" {
		st.LastError = lastErr
		st.LastErrorTime = &metav1.Time{Time: lastAt.UTC().Truncate(time.Second)}
	}
	if setupErr == "" {
		st.MarkReady()
	} else {
		st.MarkNotReady("ConsumerNotReady", setupErr)
	}
	return st
}

// Handler serves event ingress at /events/<subject> and asynchronous
// calls at /async/<namespace>/<name>[/path], and passes every other
// request, and any request to a host under the domain (a function's), to
// next.
func (m *Manager) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !m.functionHost(r.Host) {
			switch {
			case strings.HasPrefix(r.URL.Path, "/events/"):
				m.serveEvents(w, r)
				return
			case strings.HasPrefix(r.URL.Path, "/async/"):
				m.serveAsync(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// functionHost reports whether host names a function: <name>.<namespace>.<domain>.
func (m *Manager) functionHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return m.opts.Domain != "" && strings.HasSuffix(strings.ToLower(host), "."+strings.ToLower(m.opts.Domain))
}
