package proxywasm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/wisp-faas/wisp/activator/filter"
)

// trivial is the benchmark's function: a 200 with a short body.
var trivial = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("hello\n"))
})

// BenchmarkChain serves a GET through filter.Chain around trivial, with
// no filter (the baseline) and with the addheader proxy-wasm filter, in
// the same run. p50-ns is the median of the requests' latencies.
func BenchmarkChain(b *testing.B) {
	h := newHost(b, HostOptions{})
	p := load(b, h, PluginSpec{Name: "addheader", PoolSize: 1})
	for _, bc := range []struct {
		name  string
		chain *filter.Chain
	}{
		{"baseline", filter.NewChain(nil)},
		{"proxywasm-addheader", filter.NewChain([]filter.Entry{{Filter: p}})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "http://hello.default.example.test/", nil)
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				r := req.Clone(context.Background())
				w := httptest.NewRecorder()
				bc.chain.Serve(w, &filter.Exchange{Request: r}, trivial)
				lat = append(lat, time.Since(start))
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		})
	}
}

// BenchmarkLoad loads a new version of a plugin (a new configuration of
// a module the host has compiled: the digest hits) and closes the old:
// the cost of a hot reload, which is starting the VMs. disk-cache starts
// a new Host each time, so the module comes from wazero's compilation
// cache on disk, as after a restart of the node.
func BenchmarkLoad(b *testing.B) {
	wasm := filterWasm(b, "addheader")
	b.Run("digest-hit", func(b *testing.B) {
		h := newHost(b, HostOptions{})
		held := load(b, h, PluginSpec{Name: "addheader", PoolSize: 1, Wasm: wasm}) // keeps the code compiled
		_ = held
		for b.Loop() {
			p, err := h.Load(context.Background(), PluginSpec{Name: "addheader", PoolSize: 2, Wasm: wasm})
			if err != nil {
				b.Fatal(err)
			}
			_ = p.Close(context.Background())
		}
	})
	b.Run("disk-cache", func(b *testing.B) {
		dir := b.TempDir()
		warm := newHost(b, HostOptions{CacheDir: dir})
		load(b, warm, PluginSpec{Name: "addheader", PoolSize: 1, Wasm: wasm})
		for b.Loop() {
			h, err := NewHost(context.Background(), HostOptions{CacheDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			p, err := h.Load(context.Background(), PluginSpec{Name: "addheader", PoolSize: 2, Wasm: wasm})
			if err != nil {
				b.Fatal(err)
			}
			_ = p.Close(context.Background())
			_ = h.Close(context.Background())
		}
	})
}
