package controller

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisp-faas/wisp/activator"
	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/autoscaler"
	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/controller/store/storetest"
	"github.com/wisp-faas/wisp/runtime"
)

// These tests drive the whole scaling loop: a real store, controller,
// gateway, pools and autoscaler, with instances in memory whose requests
// take as long as the test says. They run in parallel: each waits out
// autoscaler windows, and they share no state.

// slowProvider runs instances in memory that hold each request for the
// duration in its "hold" query parameter, or until gate is closed when
// it has "gate=1", then answer with their revision's name. It records how
// many instances ran at once, and every request that found its instance
// already serving another.
type slowProvider struct {
	gate chan struct{}

	mu         sync.Mutex
	running    map[string]int // revision → instances running (draining ones too)
	maxRunning map[string]int // revision → most instances running at once
	seq        atomic.Int64
	serving    atomic.Int64 // requests inside an instance now
	overlapped atomic.Int64 // requests that shared an instance
}

func newSlowProvider() *slowProvider {
	return &slowProvider{gate: make(chan struct{}), running: map[string]int{}, maxRunning: map[string]int{}}
}

func (p *slowProvider) Prepare(context.Context, *api.Revision) error { return nil }
func (p *slowProvider) Release(*api.Revision)                        {}

func (p *slowProvider) Start(_ context.Context, rev *api.Revision, _ func(runtime.State)) (runtime.Instance, error) {
	p.mu.Lock()
	p.running[rev.Name]++
	p.maxRunning[rev.Name] = max(p.maxRunning[rev.Name], p.running[rev.Name])
	p.mu.Unlock()
	return &slowInstance{p: p, rev: rev.Name, id: fmt.Sprint(p.seq.Add(1)), done: make(chan struct{})}, nil
}

func (p *slowProvider) count(rev string) (running, most int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running[rev], p.maxRunning[rev]
}

type slowInstance struct {
	p        *slowProvider
	rev, id  string
	busy     atomic.Int64
	idle     sync.WaitGroup // requests in flight, for Stop to drain
	done     chan struct{}
	stopOnce sync.Once
}

// ServeHTTP ignores the request's context, as a handler that does not
// watch it would: only the gateway's deadline can end a request early.
func (i *slowInstance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i.idle.Add(1)
	defer i.idle.Done()
	if i.busy.Add(1) > 1 {
		i.p.overlapped.Add(1)
	}
	i.p.serving.Add(1)
	defer func() {
		i.p.serving.Add(-1)
		i.busy.Add(-1)
	}()
	if r.URL.Query().Get("gate") == "1" {
		<-i.p.gate
	} else if d, err := time.ParseDuration(r.URL.Query().Get("hold")); err == nil {
		time.Sleep(d)
	}
	io.WriteString(w, i.rev)
}

func (i *slowInstance) ID() string            { return i.id }
func (i *slowInstance) Ready() bool           { return true }
func (i *slowInstance) Done() <-chan struct{} { return i.done }

// Stop lets the requests in flight finish until ctx ends.
func (i *slowInstance) Stop(ctx context.Context) error {
	drained := make(chan struct{})
	go func() { i.idle.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
	}
	i.stopOnce.Do(func() {
		i.p.mu.Lock()
		i.p.running[i.rev]--
		i.p.mu.Unlock()
		close(i.done)
	})
	return nil
}

// scaleEnv is env with the pools and a slowProvider.
type scaleEnv struct {
	*env
	pools *activator.Pools
	slow  *slowProvider
}

// testScaling is an autoscaler configuration with the shortest windows
// the configuration allows: a 6s stable window, a panic window of 10% of
// it (which the spec rounds up to one 1s bucket) and a 1s grace period.
func testScaling(t *testing.T) *autoscaler.Config {
	t.Helper()
	cfg := autoscaler.DefaultConfig()
	cfg.StableWindow = autoscaler.WindowMin
	cfg.PanicWindowPercentage = 10
	cfg.ScaleToZeroGracePeriod = time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// startScaling is start with an autoscaler configuration and a slowProvider.
func startScaling(t *testing.T, cfg *autoscaler.Config) *scaleEnv {
	t.Helper()
	st := storetest.NewKV(t)
	log := slog.New(slog.DiscardHandler)
	e := &scaleEnv{
		env: &env{
			t:         t,
			functions: store.NewTyped[api.Function](st, store.Functions),
			revisions: store.NewTyped[api.Revision](st, store.Revisions),
			routes:    activator.NewRoutes("example.test"),
		},
		pools: activator.NewPools(),
		slow:  newSlowProvider(),
	}
	gw, err := activator.NewGateway(e.routes, e.pools, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e.gateway = gw
	c, err := New(Options{
		Store: st, Routes: e.routes, Pools: e.pools, Providers: Providers{Process: e.slow},
		Domain: "example.test", GatewayURL: "http://127.0.0.1:8080", Log: log, StopWait: 5 * time.Second,
		Autoscaler: cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		e.pools.CloseAll(ctx)
	})
	return e
}

// scaledFunction is a function with containerConcurrency 1 and the given
// autoscaling annotations (key, value, ...).
func scaledFunction(name string, annotations ...string) *api.Function {
	f := function(name)
	f.Spec.Template.Spec.ContainerConcurrency = new(int64(1))
	if len(annotations) > 0 {
		f.Spec.Template.Metadata.Annotations = map[string]string{}
	}
	for i := 0; i+1 < len(annotations); i += 2 {
		f.Spec.Template.Metadata.Annotations[annotations[i]] = annotations[i+1]
	}
	return f
}

// deploy creates f and waits until it is ready.
func (e *scaleEnv) deploy(f *api.Function) {
	e.t.Helper()
	if _, err := e.functions.Create(context.Background(), f); err != nil {
		e.t.Fatal(err)
	}
	e.waitFor(f.Name, ready)
}

// waitRevision polls a revision until cond holds or within has passed.
func (e *scaleEnv) waitRevision(name string, within time.Duration, cond func(*api.Revision) bool) *api.Revision {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		r, err := e.revisions.Get(context.Background(), "default", name)
		if err == nil && cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			if r != nil {
				e.t.Fatalf("revision %s never reached the condition within %v; last status: %+v (err %v)", name, within, r.Status, err)
			}
			e.t.Fatalf("revision %s never reached the condition within %v: %v", name, within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type result struct {
	code int
	body string
	took time.Duration
}

// call sends one request to a function through the gateway.
func (e *scaleEnv) call(fn, query string) result {
	req := httptest.NewRequest("GET", "http://"+fn+".default.example.test/?"+query, nil)
	rec := httptest.NewRecorder()
	begin := time.Now()
	e.gateway.ServeHTTP(rec, req)
	return result{code: rec.Code, body: rec.Body.String(), took: time.Since(begin)}
}

// burst sends n requests at once and returns a channel that yields
// their results once all have answered.
func (e *scaleEnv) burst(fn, query string, n int) <-chan []result {
	out := make(chan []result, 1)
	go func() {
		results := make([]result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i] = e.call(fn, query) })
		}
		wg.Wait()
		out <- results
	}()
	return out
}

// allOK fails the test unless every result is a 200 from rev.
func allOK(t *testing.T, rev string, results []result) {
	t.Helper()
	for i, r := range results {
		if r.code != http.StatusOK || r.body != rev {
			t.Errorf("request %d: %d %q after %v, want 200 %q", i, r.code, r.body, r.took, rev)
		}
	}
}

func TestBurstPanicsScalesUpThenToZero(t *testing.T) {
	t.Parallel()
	cfg := testScaling(t)
	e := startScaling(t, cfg)
	const rev = "burst-00001"
	e.deploy(scaledFunction("burst"))

	// 20 requests of 3s on instances that take 1 each: far over the panic
	// threshold (200% of what one instance takes).
	begin := time.Now()
	done := e.burst("burst", "hold=3s", 20)
	r := e.waitRevision(rev, 8*time.Second, func(r *api.Revision) bool { return r.Status.PanicMode && r.Status.DesiredReplicas > 1 })
	t.Logf("after %v: panic, desired %d: %s", time.Since(begin).Round(time.Millisecond), r.Status.DesiredReplicas, r.Status.ScaleReason)
	if !strings.HasPrefix(r.Status.ScaleReason, "panic:") {
		t.Errorf("scale reason in panic mode: %q", r.Status.ScaleReason)
	}
	results := <-done
	allOK(t, rev, results)
	served := time.Now()
	if _, most := e.slow.count(rev); most < 2 {
		t.Fatalf("at most %d instance ran during the burst", most)
	}
	if n := e.slow.overlapped.Load(); n != 0 {
		t.Errorf("%d requests shared an instance with containerConcurrency 1", n)
	}

	// Idle: out of panic after a stable window without a burst, then down
	// to zero once a stable window holds no load and the grace period has
	// passed.
	r = e.waitRevision(rev, 25*time.Second, func(r *api.Revision) bool {
		return r.Status.DesiredReplicas == 0 && r.Status.ActualReplicas == 0 && !r.Status.PanicMode
	})
	idle := time.Since(served)
	t.Logf("after %v idle: desired 0: %s", idle.Round(time.Millisecond), r.Status.ScaleReason)
	if floor := cfg.StableWindow + cfg.ScaleToZeroGracePeriod - time.Second; idle < floor {
		t.Errorf("scaled to zero %v after the last request; the stable window and grace period need at least %v", idle, floor)
	}
	if !strings.Contains(r.Status.ScaleReason, "zero") {
		t.Errorf("scale reason at zero: %q", r.Status.ScaleReason)
	}
	if running, _ := e.slow.count(rev); running != 0 {
		t.Errorf("%d instances still run at desired 0", running)
	}

	// A request at zero pokes the autoscaler: an instance starts at once,
	// not at the next 2s decision.
	res := e.call("burst", "")
	allOK(t, rev, []result{res})
	if res.took > time.Second {
		t.Errorf("a request at zero waited %v for an instance", res.took)
	}
}

func TestMinScaleKeepsInstancesWarm(t *testing.T) {
	t.Parallel()
	e := startScaling(t, testScaling(t))
	e.deploy(scaledFunction("warm", autoscaler.AnnotationMinScale, "2"))
	// A function without min-scale, deployed alongside, shows how long
	// idling takes to reach zero.
	e.deploy(scaledFunction("cold"))

	r := e.waitRevision("warm-00001", 5*time.Second, func(r *api.Revision) bool { return r.Status.ActualReplicas == 2 })
	if r.Status.DesiredReplicas != 2 {
		t.Fatalf("min-scale 2: desired %d", r.Status.DesiredReplicas)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		running, most := e.slow.count("warm-00001")
		if running != 2 || most != 2 {
			t.Fatalf("min-scale 2 with no traffic: %d instances running (at most %d at once)", running, most)
		}
		c, err := e.revisions.Get(context.Background(), "default", "cold-00001")
		if err == nil && c.Status.DesiredReplicas == 0 && c.Status.ActualReplicas == 0 {
			if n, _ := e.slow.count("cold-00001"); n == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the function without min-scale never scaled to zero: %+v", c.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r, err := e.revisions.Get(context.Background(), "default", "warm-00001")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status.DesiredReplicas != 2 || r.Status.ActualReplicas != 2 {
		t.Fatalf("min-scale 2 after idling to zero elsewhere: desired %d, actual %d", r.Status.DesiredReplicas, r.Status.ActualReplicas)
	}
	if got := e.call("warm", ""); got.code != http.StatusOK || got.body != "warm-00001" {
		t.Fatalf("warm instance answered %d %q", got.code, got.body)
	}
}

func TestMaxScaleCapsAndQueues(t *testing.T) {
	t.Parallel()
	e := startScaling(t, testScaling(t))
	const rev = "capped-00001"
	e.deploy(scaledFunction("capped", autoscaler.AnnotationMaxScale, "2"))

	begin := time.Now()
	results := <-e.burst("capped", "hold=1s", 10)
	took := time.Since(begin)
	allOK(t, rev, results)
	if _, most := e.slow.count(rev); most != 2 {
		t.Errorf("max-scale 2 under a burst of 10: at most %d instances ran at once, want 2", most)
	}
	if n := e.slow.overlapped.Load(); n != 0 {
		t.Errorf("%d requests shared an instance with containerConcurrency 1", n)
	}
	// Two instances taking one request each serve 10 requests of 1s in 5
	// rounds at best.
	if took < 5*time.Second {
		t.Errorf("10 requests of 1s on at most 2 instances of 1 were all served in %v", took)
	}
	r, err := e.revisions.Get(context.Background(), "default", rev)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status.DesiredReplicas > 2 {
		t.Errorf("max-scale 2: desired %d (%s)", r.Status.DesiredReplicas, r.Status.ScaleReason)
	}
}

func TestQueuedRequestTimesOutOthersSucceed(t *testing.T) {
	t.Parallel()
	e := startScaling(t, testScaling(t))
	const rev = "busy-00001"
	f := scaledFunction("busy", autoscaler.AnnotationMaxScale, "1")
	f.Spec.Template.Spec.TimeoutSeconds = new(int64(1))
	e.deploy(f)

	// The first request holds the only instance until the gate opens.
	first := e.burst("busy", "gate=1", 1)
	deadline := time.Now().Add(5 * time.Second)
	for e.slow.serving.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first request never reached the instance")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// The second waits for room, and gets 504 at its 1s deadline.
	second := e.call("busy", "")
	if second.code != http.StatusGatewayTimeout || !strings.Contains(second.body, "had room in time") {
		t.Errorf("queued request: %d %q, want 504 saying no instance had room", second.code, second.body)
	}
	if second.took < 900*time.Millisecond || second.took > 3*time.Second {
		t.Errorf("queued request answered after %v, want about its 1s timeout", second.took)
	}
	if p := e.pools.Get("default", rev); p == nil || p.Waiting() != 0 {
		t.Errorf("a timed-out request is still counted as waiting")
	}

	// The first was not disturbed, and the instance has room again.
	close(e.slow.gate)
	allOK(t, rev, <-first)
	third := e.call("busy", "hold=10ms")
	allOK(t, rev, []result{third})
	if _, most := e.slow.count(rev); most != 1 {
		t.Errorf("max-scale 1: %d instances ran at once", most)
	}
	if n := e.slow.overlapped.Load(); n != 0 {
		t.Errorf("%d requests shared an instance with containerConcurrency 1", n)
	}
}
