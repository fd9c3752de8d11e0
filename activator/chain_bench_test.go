package activator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wisp-faas/wisp/activator/builtin"
	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/api"
)

// nullWriter is the cheapest ResponseWriter, so that the benchmark
// measures the gateway, not a recorder.
type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nullWriter) WriteHeader(int)             {}

// BenchmarkGatewayChain serves requests through the whole gateway (route
// match among 10,000 functions, filter chain, pool, metrics) to an
// in-memory instance that answers at once, next to calling that instance
// directly: the difference is what the gateway and its filters cost.
func BenchmarkGatewayChain(b *testing.B) {
	const functions = 10000
	routes := NewRoutes("example.test")
	for i := range functions - 1 {
		fn := fmt.Sprintf("fn%d", i)
		routes.Set(Route{Namespace: "ns", Function: fn, Targets: []Target{{Revision: fn + "-00001", Percent: 100}}})
	}
	rev := &api.Revision{ObjectMeta: metav1.ObjectMeta{Name: "bench-00001", Namespace: "ns"}}
	rev.Spec.Process = &api.ProcessSource{Command: "x"}
	prov := &scriptProvider{handle: func(_ int, w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }}
	pools := NewPools()
	pool := pools.GetOrCreate("ns", rev.Name, func() *Pool {
		return NewPool(PoolOptions{Revision: rev, Provider: prov, Log: slog.New(slog.DiscardHandler), StopWait: time.Second})
	})
	defer pool.Close(context.Background())
	pool.Scale(1)
	for pool.Status().Ready < 1 {
		time.Sleep(time.Millisecond)
	}
	gw, err := NewGateway(routes, pools, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	entry := func(spec api.GatewayFilter) filter.Entry {
		e, err := builtin.New(spec, "", builtin.Env{})
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	withFilters := filter.NewChain([]filter.Entry{
		entry(api.GatewayFilter{Headers: &api.HeadersFilter{
			Request:  api.HeaderEdits{Set: map[string]string{"X-Env": "prod"}, Remove: []string{"Cookie"}},
			Response: api.HeaderEdits{Add: map[string]string{"X-Served-By": "wisp"}},
		}}),
		entry(api.GatewayFilter{RateLimit: &api.RateLimitFilter{RequestsPerSecond: 1e9, Key: "client-ip"}}),
	})
	route := Route{Namespace: "ns", Function: "bench", Targets: []Target{{Revision: rev.Name, Percent: 100}}}
	var inst http.Handler
	pool.mu.Lock()
	inst = pool.members[0].inst
	pool.mu.Unlock()

	for _, c := range []struct {
		name  string
		chain *filter.Chain
		serve http.Handler
	}{
		{"direct", nil, inst},
		{"gateway-empty-chain", nil, gw},
		{"gateway-header-ratelimit", withFilters, gw},
	} {
		b.Run(c.name, func(b *testing.B) {
			route.Chain = c.chain
			routes.Set(route)
			req := httptest.NewRequest("GET", "http://bench.ns.example.test/a", nil)
			req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			w := &nullWriter{h: http.Header{}}
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				clear(w.h)
				t0 := time.Now()
				c.serve.ServeHTTP(w, req)
				lat = append(lat, time.Since(t0))
			}
			reportPercentiles(b, lat)
		})
	}
}
