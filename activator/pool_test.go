package activator

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/runtime"
)

// slowProvider starts instances after a delay; failures counts down
// starts that fail first.
type slowProvider struct {
	delay    time.Duration
	failures atomic.Int32
	started  atomic.Int32
	stopped  atomic.Int32
}

func (p *slowProvider) Prepare(context.Context, *api.Revision) error { return nil }
func (p *slowProvider) Release(*api.Revision)                        {}
func (p *slowProvider) Start(ctx context.Context, rev *api.Revision, _ func(runtime.State)) (runtime.Instance, error) {
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.failures.Add(-1) >= 0 {
		return nil, errors.New("exited with status 1")
	}
	p.started.Add(1)
	return &testInstance{p: p, done: make(chan struct{})}, nil
}

type testInstance struct {
	p    *slowProvider
	once sync.Once
	done chan struct{}
}

func (i *testInstance) ServeHTTP(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }
func (i *testInstance) ID() string                                       { return "i" }
func (i *testInstance) Ready() bool                                      { return true }
func (i *testInstance) Done() <-chan struct{}                            { return i.done }
func (i *testInstance) Stop(context.Context) error {
	i.once.Do(func() { i.p.stopped.Add(1); close(i.done) })
	return nil
}

func testRevision() *api.Revision {
	return &api.Revision{ObjectMeta: metav1.ObjectMeta{Name: "fn-00001", Namespace: "ns"}}
}

func TestRequestsWaitForTheFirstInstance(t *testing.T) {
	prov := &slowProvider{delay: 50 * time.Millisecond}
	p := NewPool(PoolOptions{Revision: testRevision(), Provider: prov, Log: slog.New(slog.DiscardHandler), StopWait: time.Second})
	defer p.Close(context.Background())
	p.Scale(1)
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 50 {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code == 200 && rec.Body.String() == "ok" {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 50 || prov.started.Load() != 1 {
		t.Fatalf("%d of 50 answered, %d instances started", ok.Load(), prov.started.Load())
	}
}

func TestStartFailuresAreRetriedAndReported(t *testing.T) {
	prov := &slowProvider{}
	prov.failures.Store(2)
	changes := make(chan struct{}, 100)
	p := NewPool(PoolOptions{Revision: testRevision(), Provider: prov, Log: slog.New(slog.DiscardHandler), StopWait: time.Second, OnChange: func() { changes <- struct{}{} }})
	defer p.Close(context.Background())
	p.Scale(1)
	<-changes
	if s := p.Status(); s.LastError != "exited with status 1" || s.Ready != 0 {
		t.Fatalf("after a failed start: %+v", s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Status().Ready != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("never recovered: %+v", p.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := p.Status(); s.LastError != "" || !s.EverReady {
		t.Fatalf("after recovery: %+v", s)
	}
}

func TestWaitingRequestGets504WhenItsDeadlinePasses(t *testing.T) {
	prov := &slowProvider{delay: time.Hour}
	p := NewPool(PoolOptions{Revision: testRevision(), Provider: prov, Log: slog.New(slog.DiscardHandler), StopWait: time.Second})
	defer p.Close(context.Background())
	p.Scale(1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx))
	if rec.Code != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", rec.Code)
	}
}

func TestScaleDownAndCloseStopInstances(t *testing.T) {
	prov := &slowProvider{}
	p := NewPool(PoolOptions{Revision: testRevision(), Provider: prov, Log: slog.New(slog.DiscardHandler), StopWait: time.Second})
	p.Scale(3)
	deadline := time.Now().Add(5 * time.Second)
	for p.Status().Ready != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("never reached 3: %+v", p.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Scale(1)
	for prov.stopped.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("scale down stopped %d, want 2", prov.stopped.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Close(context.Background())
	if prov.stopped.Load() != 3 {
		t.Fatalf("close stopped %d in all, want 3", prov.stopped.Load())
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("closed pool answered %d, want 503", rec.Code)
	}
}

func TestRequestsFailFastWhenStartsFail(t *testing.T) {
	prov := &slowProvider{}
	prov.failures.Store(1000)
	p := NewPool(PoolOptions{Revision: testRevision(), Provider: prov, Log: slog.New(slog.DiscardHandler), StopWait: time.Second})
	defer p.Close(context.Background())
	p.Scale(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	begin := time.Now()
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "exited with status 1") {
		t.Fatalf("status %d body %q, want 503 with the start error", rec.Code, rec.Body.String())
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Fatalf("took %v to fail, want at once", took)
	}
}
