package activator

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkRouteMatch looks a request up among 10,000 deployed functions
// (with tags and a header rule each) and picks its revision: what the
// gateway does before any filter or instance, by Host and by path.
func BenchmarkRouteMatch(b *testing.B) {
	const n = 10000
	r := NewRoutes("example.test")
	for i := range n {
		fn := fmt.Sprintf("fn%d", i)
		r.Set(Route{Namespace: "ns", Function: fn,
			Rules: []Rule{{Headers: []Match{{Name: "X-Env", Exact: "canary"}}, Revision: fn + "-00002"}},
			Targets: []Target{
				{Revision: fn + "-00001", Percent: 90, Tag: "stable"},
				{Revision: fn + "-00002", Percent: 10},
			}})
	}
	for _, c := range []struct{ name, url string }{
		{"host", "http://fn7777.ns.example.test/a/b"},
		{"path", "http://127.0.0.1:8080/fn/ns/fn7777/a/b"},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", c.url, nil)
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				m, ok := r.lookup(req)
				if !ok {
					b.Fatal("no match")
				}
				rev, ok := "", false
				if rl := m.route.rule(req); rl != nil {
					rev, ok = rl.Revision, true
				} else {
					rev, ok = m.route.pick(m.tag, randInt64N)
				}
				lat = append(lat, time.Since(t0))
				if !ok || rev == "" {
					b.Fatal("no revision")
				}
			}
			reportPercentiles(b, lat)
		})
	}
}
