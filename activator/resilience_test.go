package activator

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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/runtime"
)

// scriptProvider starts instances that serve with handle, given the
// instance's number (0, 1, ...) and counting every request they get.
type scriptProvider struct {
	handle func(instance int, w http.ResponseWriter, r *http.Request)
	n      atomic.Int32
	hits   atomic.Int64
}

func (p *scriptProvider) Prepare(context.Context, *api.Revision) error { return nil }
func (p *scriptProvider) Release(*api.Revision)                        {}
func (p *scriptProvider) Start(context.Context, *api.Revision, func(runtime.State)) (runtime.Instance, error) {
	return &scriptInstance{p: p, n: int(p.n.Add(1) - 1), done: make(chan struct{})}, nil
}

type scriptInstance struct {
	p    *scriptProvider
	n    int
	once sync.Once
	done chan struct{}
}

func (i *scriptInstance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i.p.hits.Add(1)
	i.p.handle(i.n, w, r)
}
func (i *scriptInstance) ID() string            { return fmt.Sprint(i.n) }
func (i *scriptInstance) Ready() bool           { return true }
func (i *scriptInstance) Done() <-chan struct{} { return i.done }
func (i *scriptInstance) Stop(context.Context) error {
	i.once.Do(func() { close(i.done) })
	return nil
}

// meshEnv is a gateway on a real listener with one Function "fn" in
// namespace "ns" whose one Revision runs instances of a scriptProvider.
type meshEnv struct {
	url    string
	routes *Routes
	pool   *Pool
	prov   *scriptProvider
}

func startMesh(t *testing.T, instances int, concurrency int64, handle func(int, http.ResponseWriter, *http.Request), setup ...func(*Gateway)) *meshEnv {
	t.Helper()
	rev := &api.Revision{ObjectMeta: metav1.ObjectMeta{Name: "fn-00001", Namespace: "ns"}}
	rev.Spec.Process = &api.ProcessSource{Command: "x"}
	rev.Spec.ContainerConcurrency = &concurrency
	prov := &scriptProvider{handle: handle}
	pools := NewPools()
	pool := pools.GetOrCreate("ns", rev.Name, func() *Pool {
		return NewPool(PoolOptions{Revision: rev, Provider: prov, Log: slog.New(slog.DiscardHandler), StopWait: time.Second})
	})
	t.Cleanup(func() { pool.Close(context.Background()) })
	pool.Scale(instances)
	routes := NewRoutes("example.test")
	routes.Set(Route{Namespace: "ns", Function: "fn", Targets: []Target{{Revision: rev.Name, Percent: 100}}})
	gw, err := NewGateway(routes, pools, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(gw)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	for pool.Status().Ready < instances {
		time.Sleep(time.Millisecond)
	}
	return &meshEnv{url: srv.URL + "/fn/ns/fn", routes: routes, pool: pool, prov: prov}
}

// setRoute replaces the route's retry policy.
func (e *meshEnv) setRetry(p *api.RetryPolicy) {
	rt, _ := e.routes.Get("ns", "fn")
	next := *rt
	next.Retry = NewRetryPolicy(p)
	e.routes.Set(next)
}

func (e *meshEnv) do(t *testing.T, method, path string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader("payload"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestRetriesTurnFlaky503sIntoSuccesses(t *testing.T) {
	var n atomic.Int64
	e := startMesh(t, 1, 0, func(_ int, w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if n.Add(1)%2 == 1 {
			w.Header().Set("X-From-Failed-Try", "1")
			http.Error(w, "flaky", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ok %s", b)
	})
	failed := 0
	for range 10 {
		if code, _, _ := e.do(t, "GET", "/"); code != 200 {
			failed++
		}
	}
	if failed != 5 {
		t.Fatalf("without retries %d of 10 failed, want 5", failed)
	}

	e.setRetry(&api.RetryPolicy{Attempts: 2})
	for i := range 20 {
		code, h, body := e.do(t, "GET", "/")
		if code != 200 || body != "ok payload" {
			t.Fatalf("request %d with retries: %d %q", i, code, body)
		}
		if h.Get("X-From-Failed-Try") != "" {
			t.Fatal("a header of the dropped try reached the client")
		}
	}
	// POST is not idempotent: its failure comes back as it is.
	n.Store(0)
	if code, _, _ := e.do(t, "POST", "/"); code != 503 {
		t.Fatalf("POST was retried without retryNonIdempotent: %d", code)
	}
	e.setRetry(&api.RetryPolicy{Attempts: 2, RetryNonIdempotent: true})
	n.Store(0)
	if code, _, body := e.do(t, "POST", "/"); code != 200 || body != "ok payload" {
		t.Fatalf("POST with retryNonIdempotent: %d %q, want the body sent again", code, body)
	}
	// 500 is not a gateway error: the default policy leaves it alone,
	// "5xx" retries it.
	e.setRetry(&api.RetryPolicy{Attempts: 2})
	e.prov.handle = func(_ int, w http.ResponseWriter, _ *http.Request) { http.Error(w, "bug", 500) }
	before := e.prov.hits.Load()
	if code, _, _ := e.do(t, "GET", "/"); code != 500 || e.prov.hits.Load()-before != 1 {
		t.Fatalf("a 500 under the default retryOn: %d after %d tries", code, e.prov.hits.Load()-before)
	}
	e.setRetry(&api.RetryPolicy{Attempts: 2, RetryOn: []string{"5xx"}})
	before = e.prov.hits.Load()
	if code, _, _ := e.do(t, "GET", "/"); code != 500 || e.prov.hits.Load()-before != 3 {
		t.Fatalf("a 500 with retryOn 5xx: %d after %d tries, want 3", code, e.prov.hits.Load()-before)
	}
}

func TestPerTryTimeoutRetriesASlowTry(t *testing.T) {
	var n atomic.Int64
	e := startMesh(t, 1, 0, func(_ int, w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			<-r.Context().Done() // the first try hangs until its per-try timeout
			return
		}
		io.WriteString(w, "second try")
	})
	e.setRetry(&api.RetryPolicy{Attempts: 1, PerTryTimeout: "100ms"})
	begin := time.Now()
	code, _, body := e.do(t, "GET", "/")
	if code != 200 || body != "second try" {
		t.Fatalf("got %d %q", code, body)
	}
	if took := time.Since(begin); took < 100*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %v, want a little over the 100ms per-try timeout", took)
	}
}

// TestRetryBudgetBoundsTheLoad: a revision that always fails, with 5
// retries per request, never has more retries in flight than the
// budget's share of the requests in flight.
func TestRetryBudgetBoundsTheLoad(t *testing.T) {
	release := make(chan struct{})
	var retrying, most atomic.Int64
	e := startMesh(t, 1, 0, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Wisp-Attempt") == "1" {
			<-release
		} else {
			n := retrying.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(20 * time.Millisecond) // retries overlap if the budget lets them
			retrying.Add(-1)
		}
		http.Error(w, "down", 503)
	})
	e.setRetry(&api.RetryPolicy{Attempts: 5, BudgetPercent: new(int32(10))})
	const requests = 40
	var wg sync.WaitGroup
	for range requests {
		wg.Go(func() {
			if code, _, _ := e.do(t, "GET", "/"); code != 503 {
				t.Errorf("a request to a failing revision answered %d", code)
			}
		})
	}
	for e.prov.hits.Load() < requests {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	// 10% of 40 requests in flight is 4 retries at once (and never fewer
	// than 3); without the budget all 40 would retry together.
	if m := most.Load(); m < 1 || m > 4 {
		t.Fatalf("%d retries in flight at once, want 1 to 4", m)
	}
	if hits := e.prov.hits.Load(); hits >= requests*6 {
		t.Fatalf("%d tries for %d requests: every retry ran", hits, requests)
	}
}

func TestCircuitBreakerOpensAndCloses(t *testing.T) {
	release := make(chan struct{})
	e := startMesh(t, 1, 0, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hold") != "" {
			<-release
		}
		io.WriteString(w, "ok")
	})
	e.pool.SetPolicy(PoolPolicy{MaxRequests: 2, MaxPending: 1})
	type result struct {
		code    int
		failure string
	}
	results := make(chan result, 6)
	for range 6 {
		go func() {
			code, h, _ := e.do(t, "GET", "/?hold=1")
			results <- result{code, h.Get(runtime.FailureHeader)}
		}()
	}
	// Two are served, one waits, three are refused at once.
	for range 3 {
		select {
		case r := <-results:
			if r.code != 503 || r.failure != runtime.FailureOverloaded {
				t.Fatalf("refused request: %d %q, want 503 overloaded", r.code, r.failure)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the breaker did not refuse the requests beyond maxRequests + maxPendingRequests")
		}
	}
	if w := e.pool.Waiting(); w != 1 {
		t.Errorf("%d requests waiting, want 1", w)
	}
	close(release)
	for range 3 {
		if r := <-results; r.code != 200 {
			t.Errorf("admitted request: %d", r.code)
		}
	}
	// Closed again: requests within the bounds pass.
	for range 5 {
		if code, _, _ := e.do(t, "GET", "/"); code != 200 {
			t.Fatalf("after the burst: %d", code)
		}
	}
}

func TestOutlierDetectionEjectsAFailingInstance(t *testing.T) {
	e := startMesh(t, 2, 0, func(instance int, w http.ResponseWriter, _ *http.Request) {
		if instance == 0 {
			http.Error(w, "broken", 500)
			return
		}
		io.WriteString(w, "ok")
	})
	e.pool.SetPolicy(PoolPolicy{Outlier: &OutlierPolicy{Consecutive5xx: 3, BaseEjection: time.Minute, MaxEjectionPercent: 50}})
	failed := 0
	for range 100 {
		if code, _, _ := e.do(t, "GET", "/"); code != 200 {
			failed++
		}
	}
	if failed != 3 {
		t.Fatalf("%d of 100 requests failed; want exactly 3 before the broken instance is ejected", failed)
	}
}

func TestOutlierDetectionNeverEjectsTheLastInstance(t *testing.T) {
	e := startMesh(t, 1, 0, func(int, http.ResponseWriter, *http.Request) {})
	e.prov.handle = func(_ int, w http.ResponseWriter, _ *http.Request) { http.Error(w, "broken", 500) }
	e.pool.SetPolicy(PoolPolicy{Outlier: &OutlierPolicy{Consecutive5xx: 1, BaseEjection: time.Minute, MaxEjectionPercent: 100}})
	for range 5 {
		if code, _, _ := e.do(t, "GET", "/"); code != 500 {
			t.Fatalf("the only instance was ejected: %d, want its own 500", code)
		}
	}
}
