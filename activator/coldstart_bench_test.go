package activator

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/runtime"
	"github.com/wisp-faas/wisp/runtime/process"
	"github.com/wisp-faas/wisp/runtime/wasm"
)

// benchFunctions builds the example functions once for the benchmarks.
var benchFunctions = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "wisp-bench")
	if err != nil {
		return "", err
	}
	if out, err := exec.Command("../functions/examples/build.sh", dir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the examples: %v\n%s", err, out)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "hello-process"), "../functions/examples/hello-process")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building hello-process: %v\n%s", err, out)
	}
	return dir, nil
})

// BenchmarkColdStartThroughGateway measures an HTTP client's request to a
// function at zero instances, through the gateway over loopback HTTP, to
// its response: route, pool at zero, the poke that scales it to one (what
// the autoscaler does on a poke), the instance's start, and the call.
// Between iterations the pool is scaled back to zero, untimed.
// BenchmarkWarmThroughGateway and the "direct" cases are the baselines of
// the same run.
func BenchmarkColdStartThroughGateway(b *testing.B) {
	dir, err := benchFunctions()
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	wasmProv, err := wasm.New(context.Background(), wasm.Options{
		Load:     func(_ context.Context, rev *api.Revision) ([]byte, error) { return os.ReadFile(rev.Spec.Wasm.Module) },
		CacheDir: b.TempDir(),
	})
	if err != nil {
		b.Fatal(err)
	}
	procProv := process.New(process.Options{Logger: log})
	cases := []struct {
		name string
		prov runtime.Provider
		spec api.RevisionSpec
	}{
		{"wat-wagi", wasmProv, api.RevisionSpec{Wasm: &api.WasmSource{Module: filepath.Join(dir, "hello-wat.wasm")}}},
		{"c-wagi", wasmProv, api.RevisionSpec{Wasm: &api.WasmSource{Module: filepath.Join(dir, "hello-c-wagi.wasm")}}},
		{"go-reactor", wasmProv, api.RevisionSpec{Wasm: &api.WasmSource{Module: filepath.Join(dir, "hello-go-reactor.wasm")}}},
		{"process-go", procProv, api.RevisionSpec{Process: &api.ProcessSource{Command: filepath.Join(dir, "hello-process"), ReadinessPath: "/"}}},
	}
	for i, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// A revision of its own per case: providers key what they
			// compiled by revision.
			name := fmt.Sprintf("fn-%05d", i+1)
			rev := &api.Revision{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{api.LabelFunction: "fn"}}, Spec: c.spec}
			routes := NewRoutes("example.test")
			routes.Set(Route{Namespace: "ns", Function: "fn", Targets: []Target{{Revision: rev.Name, Percent: 100}}})
			pools := NewPools()
			var starts atomic.Int64
			var pool *Pool
			pool = pools.GetOrCreate("ns", rev.Name, func() *Pool {
				return NewPool(PoolOptions{Revision: rev, Provider: countingProvider{c.prov, &starts}, Log: log, StopWait: 5 * time.Second,
					OnPoke: func() { pool.Scale(1) }})
			})
			defer pool.Close(context.Background())
			gw, err := NewGateway(routes, pools, log, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(gw)
			defer srv.Close()
			client := srv.Client()
			call := func() {
				resp, err := client.Get(srv.URL + "/fn/ns/fn/")
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			call() // prepare (compile) outside the measurement
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				pool.Scale(0)
				for len(pool.members) > 0 || pool.Status().Starting > 0 {
					time.Sleep(time.Millisecond)
				}
				b.StartTimer()
				t0 := time.Now()
				call()
				lat = append(lat, time.Since(t0))

			}
			b.StopTimer()
			b.ReportMetric(float64(starts.Load()-1)/float64(b.N), "starts/op")
			reportPercentiles(b, lat)
		})
	}
}

// countingProvider counts the instances started through it.
type countingProvider struct {
	runtime.Provider
	starts *atomic.Int64
}

func (c countingProvider) Start(ctx context.Context, rev *api.Revision, notify func(runtime.State)) (runtime.Instance, error) {
	c.starts.Add(1)
	return c.Provider.Start(ctx, rev, notify)
}

// BenchmarkWarmThroughGateway is the warm path: the same request to a
// function with a ready instance, through the gateway, against the direct
// call of the instance in the same process.
func BenchmarkWarmThroughGateway(b *testing.B) {
	dir, err := benchFunctions()
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	prov, err := wasm.New(context.Background(), wasm.Options{
		Load:     func(_ context.Context, rev *api.Revision) ([]byte, error) { return os.ReadFile(rev.Spec.Wasm.Module) },
		CacheDir: b.TempDir(),
	})
	if err != nil {
		b.Fatal(err)
	}
	rev := &api.Revision{ObjectMeta: metav1.ObjectMeta{Name: "fn-00001", Namespace: "ns", Labels: map[string]string{api.LabelFunction: "fn"}},
		Spec: api.RevisionSpec{Wasm: &api.WasmSource{Module: filepath.Join(dir, "hello-go-reactor.wasm")}}}
	if err := prov.Prepare(context.Background(), rev); err != nil {
		b.Fatal(err)
	}
	inst, err := prov.Start(context.Background(), rev, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer inst.Stop(context.Background())

	routes := NewRoutes("example.test")
	routes.Set(Route{Namespace: "ns", Function: "fn", Targets: []Target{{Revision: rev.Name, Percent: 100}}})
	pools := NewPools()
	pool := pools.GetOrCreate("ns", rev.Name, func() *Pool {
		return NewPool(PoolOptions{Revision: rev, Provider: prov, Log: log, StopWait: 5 * time.Second})
	})
	defer pool.Close(context.Background())
	pool.Scale(1)
	for pool.Status().Ready == 0 {
		time.Sleep(time.Millisecond)
	}
	gw, err := NewGateway(routes, pools, log, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, h http.Handler, target string) {
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			req := httptest.NewRequest("GET", target, nil)
			rec := httptest.NewRecorder()
			t0 := time.Now()
			h.ServeHTTP(rec, req)
			lat = append(lat, time.Since(t0))
			if rec.Code != 200 {
				b.Fatalf("status %d", rec.Code)
			}
		}
		reportPercentiles(b, lat)
	}
	b.Run("direct-instance", func(b *testing.B) { run(b, inst, "http://x/") })
	b.Run("gateway", func(b *testing.B) { run(b, gw, "http://x/fn/ns/fn/") })
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e3 }
	b.ReportMetric(p(0.5), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
}
