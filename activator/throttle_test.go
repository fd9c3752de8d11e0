package activator

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/runtime"
)

// gateProvider starts instances that block each request until released
// and record the most requests they ever served at once.
type gateProvider struct {
	release chan struct{}
	maxSeen atomic.Int64
	started atomic.Int64
}

func (p *gateProvider) Prepare(context.Context, *api.Revision) error { return nil }
func (p *gateProvider) Release(*api.Revision)                        {}
func (p *gateProvider) Start(context.Context, *api.Revision, func(runtime.State)) (runtime.Instance, error) {
	p.started.Add(1)
	return &gateInstance{p: p, done: make(chan struct{})}, nil
}

type gateInstance struct {
	p    *gateProvider
	cur  atomic.Int64
	once sync.Once
	done chan struct{}
}

func (i *gateInstance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := i.cur.Add(1)
	defer i.cur.Add(-1)
	for {
		m := i.p.maxSeen.Load()
		if n <= m || i.p.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-i.p.release:
	case <-r.Context().Done():
	}
	w.WriteHeader(200)
}
func (i *gateInstance) ID() string            { return "g" }
func (i *gateInstance) Ready() bool           { return true }
func (i *gateInstance) Done() <-chan struct{} { return i.done }
func (i *gateInstance) Stop(context.Context) error {
	i.once.Do(func() { close(i.done) })
	return nil
}

func ccRevision(cc int64) *api.Revision {
	r := testRevision()
	r.Spec.ContainerConcurrency = &cc
	return r
}

func waitReady(t *testing.T, p *Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Status().Ready < n {
		if time.Now().After(deadline) {
			t.Fatalf("pool never had %d ready: %+v", n, p.Status())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestContainerConcurrencyIsNeverExceeded(t *testing.T) {
	for _, cc := range []int64{1, 2, 5} {
		prov := &gateProvider{release: make(chan struct{})}
		p := NewPool(PoolOptions{Revision: ccRevision(cc), Provider: prov, Log: slog.New(slog.DiscardHandler), StopWait: time.Second})
		p.Scale(2)
		waitReady(t, p, 2)
		var wg sync.WaitGroup
		codes := make(chan int, 40)
		for range 40 {
			wg.Go(func() {
				rec := httptest.NewRecorder()
				p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
				codes <- rec.Code
			})
		}
		// Let them pile up, then release them one at a time.
		time.Sleep(50 * time.Millisecond)
		for range 40 {
			prov.release <- struct{}{}
		}
		wg.Wait()
		close(codes)
		for c := range codes {
			if c != 200 {
				t.Fatalf("cc=%d: a request got %d", cc, c)
			}
		}
		if got := prov.maxSeen.Load(); got != cc {
			t.Fatalf("cc=%d: an instance served %d at once", cc, got)
		}
		p.Close(context.Background())
	}
}

func TestFullQueueAnswers503WithRetryAfter(t *testing.T) {
	prov := &gateProvider{release: make(chan struct{})}
	p := NewPool(PoolOptions{Revision: ccRevision(1), Provider: prov, Log: slog.New(slog.DiscardHandler), StopWait: time.Second, QueueDepth: 2})
	defer p.Close(context.Background())
	p.Scale(1)
	waitReady(t, p, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 3 { // one served, two queued
		wg.Go(func() {
			p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil).WithContext(ctx))
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.waiting.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("waiting = %d, want 2", p.waiting.Load())
		}
		time.Sleep(time.Millisecond)
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("overflow: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	cancel()
	wg.Wait()
}

func TestFirstRequestAtZeroPokes(t *testing.T) {
	prov := &gateProvider{release: make(chan struct{})}
	var pokes atomic.Int32
	var p *Pool
	p = NewPool(PoolOptions{Revision: testRevision(), Provider: prov, Log: slog.New(slog.DiscardHandler), StopWait: time.Second,
		OnPoke: func() { pokes.Add(1); go p.Scale(1) }})
	defer p.Close(context.Background())
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		done <- rec.Code
	}()
	waitReady(t, p, 1)
	prov.release <- struct{}{}
	if code := <-done; code != 200 || pokes.Load() != 1 {
		t.Fatalf("code %d, pokes %d", code, pokes.Load())
	}
}

func TestStatsAverageConcurrencyExactly(t *testing.T) {
	var s concurrencyStats
	t0 := time.Unix(1000, 0)
	s.reset(t0)
	// Two requests for the first half second, one for the second half.
	s.change(t0, 1)
	s.change(t0, 1)
	s.change(t0.Add(500*time.Millisecond), -1)
	avg, arrivals := s.collect(t0.Add(time.Second))
	if math.Abs(avg-1.5) > 1e-9 || arrivals != 2 {
		t.Fatalf("avg %v arrivals %v, want 1.5 and 2", avg, arrivals)
	}
	// The request still in flight counts fully in the next period.
	avg, arrivals = s.collect(t0.Add(2 * time.Second))
	if math.Abs(avg-1) > 1e-9 || arrivals != 0 {
		t.Fatalf("next period avg %v arrivals %v, want 1 and 0", avg, arrivals)
	}
}
