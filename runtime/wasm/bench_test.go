package wasm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// latencies records one duration per iteration and reports percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	at := func(q float64) float64 { return float64(l[int(q*float64(len(l)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkColdStart measures Start and the first request on a prepared
// (compiled) Revision: what a request to a function scaled to zero waits
// for beyond routing.
func BenchmarkColdStart(b *testing.B) {
	for _, tc := range []struct {
		name, guest string
		opts        Options
	}{
		{"wat-wagi", "hello-wat", Options{}},
		{"c-wagi", "hello-c-wagi", Options{}},
		{"go-wagi", "hello-go-wagi", Options{}},
		{"go-reactor", "hello-go-reactor", Options{}},
		{"go-reactor-nosnapshot", "hello-go-reactor", Options{NoSnapshots: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := newProvider(b, tc.opts)
			rev := newRevision("cold-"+tc.name, tc.guest)
			ctx := context.Background()
			if err := p.Prepare(ctx, rev); err != nil {
				b.Fatal(err)
			}
			// One instance first, so that a snapshot exists when enabled.
			warm, err := p.Start(ctx, rev, nil)
			if err != nil {
				b.Fatal(err)
			}
			_ = warm.Stop(ctx)
			req := httptest.NewRequest("GET", "/?name=Ada", nil)
			lat := make(latencies, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				begin := time.Now()
				inst, err := p.Start(ctx, rev, nil)
				if err != nil {
					b.Fatal(err)
				}
				w := httptest.NewRecorder()
				inst.ServeHTTP(w, req)
				lat = append(lat, time.Since(begin))
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
				_ = inst.Stop(ctx)
			}
			lat.report(b)
		})
	}
}

// BenchmarkWarm measures a request to a running instance, in process
// (ServeHTTP with a recorder): for the http ABI a call into the live
// module, for wagi a fresh module instance per request.
func BenchmarkWarm(b *testing.B) {
	for _, tc := range []struct{ name, guest string }{
		{"go-reactor", "hello-go-reactor"},
		{"wat-wagi", "hello-wat"},
		{"c-wagi", "hello-c-wagi"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := newProvider(b, Options{})
			inst, _ := start(b, p, newRevision("warm-"+tc.name, tc.guest))
			req := httptest.NewRequest("GET", "/?name=Ada", nil)
			lat := make(latencies, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w := httptest.NewRecorder()
				begin := time.Now()
				inst.ServeHTTP(w, req)
				lat = append(lat, time.Since(begin))
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			lat.report(b)
		})
	}
}

// BenchmarkBare is the baseline: wazero alone, without wisp. "wat" is
// instantiate + _start of hello-wat; "go-reactor-call" calls wisp_handle
// of the unmodified hello-go-reactor, "-closeondone" with wazero's
// WithCloseOnContextDone (its cost on a warm call), "-instrumented" after
// wisp's rewrite.
func BenchmarkBare(b *testing.B) {
	ctx := context.Background()
	newRuntime := func(b *testing.B, closeOnDone bool) wazero.Runtime {
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().
			WithCloseOnContextDone(closeOnDone).
			WithCompilationCache(sharedBenchCache(b)))
		b.Cleanup(func() { _ = rt.Close(ctx) })
		wasi_snapshot_preview1.MustInstantiate(ctx, rt)
		if err := instantiateHostModule(ctx, rt); err != nil {
			b.Fatal(err)
		}
		return rt
	}

	b.Run("wat-instantiate-start", func(b *testing.B) {
		rt := newRuntime(b, false)
		bin, _ := os.ReadFile(guests["hello-wat"])
		cm, err := rt.CompileModule(ctx, bin)
		if err != nil {
			b.Fatal(err)
		}
		cfg := wazero.NewModuleConfig().WithName("").WithStdout(io.Discard)
		lat := make(latencies, 0, b.N)
		for b.Loop() {
			begin := time.Now()
			mod, err := rt.InstantiateModule(ctx, cm, cfg)
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(begin))
			_ = mod.Close(ctx)
		}
		lat.report(b)
	})

	for _, tc := range []struct {
		name                      string
		closeOnDone, instrumented bool
	}{
		{"go-reactor-call", false, false},
		{"go-reactor-call-closeondone", true, false},
		{"go-reactor-call-instrumented", false, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rt := newRuntime(b, tc.closeOnDone)
			bin, _ := os.ReadFile(guests["hello-go-reactor"])
			if tc.instrumented {
				rw, err := rewrite(bin)
				if err != nil {
					b.Fatal(err)
				}
				bin = rw.bin
			}
			cm, err := rt.CompileModule(ctx, bin)
			if err != nil {
				b.Fatal(err)
			}
			mctx := experimental.WithMemoryAllocator(ctx, allocator{limit: DefaultMemoryLimitPages * pageSize})
			mod, err := rt.InstantiateModule(mctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := mod.ExportedFunction("_initialize").Call(ctx); err != nil {
				b.Fatal(err)
			}
			c := &call{req: encodeRequest(httptest.NewRequest("GET", "/?name=Ada", nil), nil)}
			cctx, cancel := context.WithCancel(context.WithValue(ctx, callKey{}, c))
			defer cancel()
			handle := mod.ExportedFunction("wisp_handle")
			stack := []uint64{0}
			lat := make(latencies, 0, b.N)
			for b.Loop() {
				begin := time.Now()
				stack[0] = uint64(len(c.req))
				if err := handle.CallWithStack(cctx, stack); err != nil || stack[0] != 0 {
					b.Fatal(err, stack[0])
				}
				lat = append(lat, time.Since(begin))
			}
			lat.report(b)
			if !bytes.Contains(c.resp, []byte("Hello, Ada!")) {
				b.Fatalf("response %q", c.resp)
			}
		})
	}
}

var benchCache wazero.CompilationCache

// sharedBenchCache is a compilation cache on the run's shared directory.
func sharedBenchCache(b *testing.B) wazero.CompilationCache {
	if benchCache == nil {
		c, err := wazero.NewCompilationCacheWithDir(sharedCache)
		if err != nil {
			b.Fatal(err)
		}
		benchCache = c
	}
	return benchCache
}

// BenchmarkCompile measures Prepare of the Go examples: 2.8 MB
// (hello-go-wagi) and 5.3 MB (hello-go-reactor, net/http), into an empty
// cache directory and into one that holds the compiled code, as a
// restarted node does. Prepare includes Load, rewrite and the checks.
func BenchmarkCompile(b *testing.B) {
	for _, guest := range []string{"hello-go-wagi", "hello-go-reactor"} {
		for _, cached := range []bool{false, true} {
			name := guest + "/nocache"
			if cached {
				name = guest + "/cache"
			}
			b.Run(name, func(b *testing.B) {
				dir := b.TempDir()
				rev := newRevision("compile-1", guest)
				if cached {
					p := newProvider(b, Options{CacheDir: dir})
					if err := p.Prepare(context.Background(), rev); err != nil {
						b.Fatal(err)
					}
				}
				lat := make(latencies, 0, b.N)
				for b.Loop() {
					opts := Options{CacheDir: dir}
					if !cached {
						opts.CacheDir = b.TempDir()
					}
					p, err := New(context.Background(), withLoad(opts))
					if err != nil {
						b.Fatal(err)
					}
					begin := time.Now()
					if err := p.Prepare(context.Background(), rev); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(begin))
					_ = p.Close(context.Background())
				}
				lat.report(b)
			})
		}
	}
}

func withLoad(o Options) Options {
	o.Load = loadGuest
	return o
}

// BenchmarkInstanceMemory starts instances of the Go reactor, each having
// served one request, and reports what one costs: the growth of the
// process's resident memory and the size of its linear memory.
func BenchmarkInstanceMemory(b *testing.B) {
	const n = 20
	p := newProvider(b, Options{})
	rev := newRevision("mem-1", "hello-go-reactor")
	ctx := context.Background()
	if err := p.Prepare(ctx, rev); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		goruntime.GC()
		debug.FreeOSMemory()
		before := rss(b)
		var insts []*instance
		for range n {
			inst, err := p.Start(ctx, rev, nil)
			if err != nil {
				b.Fatal(err)
			}
			w := httptest.NewRecorder()
			inst.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
			insts = append(insts, inst.(*instance))
		}
		goruntime.GC()
		debug.FreeOSMemory()
		after := rss(b)
		b.ReportMetric(float64(after-before)/n/1024, "rss-KiB/instance")
		b.ReportMetric(float64(insts[0].mod.Memory().Size())/1024, "linear-KiB/instance")
		for _, i := range insts {
			_ = i.Stop(ctx)
		}
	}
}

// rss returns the process's resident set size in bytes (Linux).
func rss(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Skip("no /proc/self/statm: resident memory is measured on Linux only")
	}
	f := strings.Fields(string(raw))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// BenchmarkRevisionsAtZero prepares 1,000 revisions (compiled, as a
// deployed function at zero instances is) and reports what each costs in
// resident memory, against one running instance of the same module. A
// revision at zero holds compiled code only: no instance, no linear memory.
func BenchmarkRevisionsAtZero(b *testing.B) {
	const n = 1000
	for _, guest := range []string{"hello-wat", "hello-go-reactor"} {
		b.Run(guest, func(b *testing.B) {
			for b.Loop() {
				p := newProvider(b, Options{})
				ctx := context.Background()
				// Warm the compilation cache so that what is measured is what
				// a node holds for a deployed revision, not the compiler.
				if err := p.Prepare(ctx, newRevision("zero-warm", guest)); err != nil {
					b.Fatal(err)
				}
				goruntime.GC()
				debug.FreeOSMemory()
				before := rss(b)
				for i := range n {
					if err := p.Prepare(ctx, newRevision(fmt.Sprintf("zero-%d", i), guest)); err != nil {
						b.Fatal(err)
					}
				}
				goruntime.GC()
				debug.FreeOSMemory()
				after := rss(b)
				b.ReportMetric(float64(after-before)/n/1024, "rss-KiB/revision")
				var live int
				p.mu.Lock()
				live = len(p.modules)
				p.mu.Unlock()
				if live < n {
					b.Fatalf("%d revisions prepared, %d kept", n, live)
				}
			}
		})
	}
}
