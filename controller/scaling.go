package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/wisp-faas/wisp/activator"
	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/autoscaler"
)

// Knative's cadence: stats every second, a decision every two.
const (
	statsInterval = time.Second
	decideEvery   = 2 // stats intervals
)

// scaling runs the autoscaler of every reachable Revision: it feeds each
// one its pool's stats every second, applies its decision every two, and
// applies a poke at once when a request finds a Revision at zero.
type scaling struct {
	cfg      autoscaler.Config
	log      *slog.Logger
	metrics  *metrics
	onChange func(fnKey string) // a decision changed what status shows

	mu   sync.Mutex
	revs map[activator.RevisionKey]*scaled
}

type scaled struct {
	rev   *autoscaler.Revision
	pool  *activator.Pool
	fnKey string
	last  autoscaler.Decision
}

func newScaling(cfg autoscaler.Config, log *slog.Logger, m *metrics, onChange func(string)) *scaling {
	return &scaling{cfg: cfg, log: log.With("component", "autoscaler"), metrics: m, onChange: onChange, revs: map[activator.RevisionKey]*scaled{}}
}

// capacity is what one instance of r serves at once, for the autoscaler's
// target: containerConcurrency, and one for a Wasm instance.
func capacity(r *api.Revision) int64 {
	if r.Spec.Wasm != nil {
		return 1
	}
	if cc := r.Spec.ContainerConcurrency; cc != nil {
		return *cc
	}
	return 0
}

// track starts autoscaling a Revision (a no-op when it is already
// tracked) and says whether traffic is routed to it. It returns the spec
// error of bad autoscaling annotations.
func (s *scaling) track(r *api.Revision, pool *activator.Pool, routed bool) error {
	key := activator.RevisionKey{Namespace: r.Namespace, Name: r.Name}
	s.mu.Lock()
	sc, ok := s.revs[key]
	s.mu.Unlock()
	if !ok {
		spec, err := autoscaler.SpecFor(s.cfg, r.Annotations, capacity(r))
		if err != nil {
			return err
		}
		if c := r.Status.GetCondition(api.ConditionReady); c != nil && c.IsTrue() {
			// A revision that was ready before (the node restarted, or
			// traffic came back to it) resumes at the scale it had rather
			// than at initial-scale: functions idle at zero stay there.
			spec.InitialScale = r.Status.DesiredReplicas
		}
		as, err := autoscaler.NewRevision(spec, time.Now())
		if err != nil {
			return err
		}
		sc = &scaled{rev: as, pool: pool, fnKey: r.Namespace + "/" + r.Labels[api.LabelFunction]}
		s.mu.Lock()
		if cur, ok := s.revs[key]; ok {
			sc = cur
		} else {
			s.revs[key] = sc
		}
		s.mu.Unlock()
		s.apply(key, sc, sc.rev.Last())
	}
	sc.rev.SetReachable(routed)
	return nil
}

// untrack stops autoscaling a Revision; its pool is scaled by the caller.
func (s *scaling) untrack(namespace, name string) {
	s.mu.Lock()
	_, ok := s.revs[activator.RevisionKey{Namespace: namespace, Name: name}]
	delete(s.revs, activator.RevisionKey{Namespace: namespace, Name: name})
	s.mu.Unlock()
	if ok {
		s.metrics.forget(namespace, name)
	}
}

// coldStart records how long a request waited for a revision's first instance.
func (s *scaling) coldStart(namespace, name string, wait time.Duration) {
	s.metrics.coldStart.WithLabelValues(namespace, name).Observe(wait.Seconds())
}

// decision returns the last decision for a Revision, if it is tracked.
func (s *scaling) decision(namespace, name string) (autoscaler.Decision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.revs[activator.RevisionKey{Namespace: namespace, Name: name}]
	if !ok {
		return autoscaler.Decision{}, false
	}
	return sc.last, true
}

// poke scales a Revision at zero up at once: a request is waiting.
func (s *scaling) poke(namespace, name string) {
	key := activator.RevisionKey{Namespace: namespace, Name: name}
	s.mu.Lock()
	sc, ok := s.revs[key]
	s.mu.Unlock()
	if ok {
		s.apply(key, sc, sc.rev.Poke(time.Now()))
	}
}

// apply actuates a decision and logs it when it changed the scale or the
// panic mode.
func (s *scaling) apply(key activator.RevisionKey, sc *scaled, d autoscaler.Decision) {
	sc.pool.Scale(int(d.DesiredScale))
	s.mu.Lock()
	prev := sc.last
	sc.last = d
	s.mu.Unlock()
	if prev.DesiredScale != d.DesiredScale || prev.PanicMode != d.PanicMode {
		s.log.Info("scale decision", "namespace", key.Namespace, "revision", key.Name,
			"desired", d.DesiredScale, "previous", prev.DesiredScale, "panic", d.PanicMode, "reason", d.Reason)
		s.onChange(sc.fnKey)
	}
}

// run feeds stats and applies decisions until ctx ends.
func (s *scaling) run(ctx context.Context) {
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.tick(now, tick%decideEvery == 0)
		}
	}
}

func (s *scaling) tick(now time.Time, decide bool) {
	s.mu.Lock()
	all := make(map[activator.RevisionKey]*scaled, len(s.revs))
	for k, v := range s.revs {
		all[k] = v
	}
	s.mu.Unlock()
	for key, sc := range all {
		avg, arrivals := sc.pool.Stats(now)
		sc.rev.Record(now, avg, arrivals)
		ready := sc.pool.Status().Ready
		if decide {
			s.apply(key, sc, sc.rev.Scale(now, ready))
		}
		s.mu.Lock()
		d := sc.last
		s.mu.Unlock()
		panicking := 0.0
		if d.PanicMode {
			panicking = 1
		}
		s.metrics.desired.WithLabelValues(key.Namespace, key.Name).Set(float64(d.DesiredScale))
		s.metrics.ready.WithLabelValues(key.Namespace, key.Name).Set(float64(ready))
		s.metrics.panic.WithLabelValues(key.Namespace, key.Name).Set(panicking)
		s.metrics.queue.WithLabelValues(key.Namespace, key.Name).Set(float64(sc.pool.Waiting()))
	}
}
