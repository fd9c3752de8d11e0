package proxywasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	goruntime "runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wisp-faas/wisp/internal/wasmcode"
)

// Defaults for the zero values of HostOptions.
const (
	defaultCallTimeout       = 2 * time.Second
	defaultHTTPCallTimeout   = 30 * time.Second
	defaultCrashLoopRestarts = 5
	defaultCrashLoopWindow   = time.Minute
)

// HostOptions configures a Host. The zero value works: logs are
// discarded, metrics are not exported, compiled code stays in memory,
// http calls to functions fail and calls to URLs use a plain client.
type HostOptions struct {
	// Logger receives the host's logs and the plugins' (proxy_log, and
	// what a guest writes to stdout at Info and stderr at Error), with
	// the attribute plugin. Nil discards them.
	Logger *slog.Logger

	// Metrics registers the metrics plugins define (proxy_define_metric).
	// Nil keeps them, readable by the plugins, but unexported.
	Metrics prometheus.Registerer

	// CacheDir, when set, keeps wazero's compiled code on disk, so that
	// a restarted node loads a filter without compiling it again. It is
	// created if missing.
	CacheDir string

	// CompileWorkers is how many goroutines compile one module; zero
	// means GOMAXPROCS.
	CompileWorkers int

	// Functions serves the proxy_http_calls whose upstream names a
	// function: "fn:<namespace>/<name>", or a host name ending in
	// "."+FunctionDomain. For "fn:" upstreams the request's Host is
	// "<name>.<namespace>.<FunctionDomain>" when FunctionDomain is set,
	// else its path is prefixed with "/fn/<namespace>/<name>". Nil makes
	// such calls fail (the guest sees a failed call).
	Functions      http.Handler
	FunctionDomain string

	// Client sends the proxy_http_calls to any other upstream: a URL
	// ("http://authz:8080") or a host[:port], taken as http. Nil uses a
	// client that does not follow redirects.
	Client *http.Client

	// CallTimeout bounds one call into a guest (a callback such as
	// proxy_on_request_headers); a guest that runs longer is stopped and
	// its VM treated as crashed. Zero means 2s.
	CallTimeout time.Duration

	// CrashLoopRestarts and CrashLoopWindow bound how often a plugin's
	// crashed VMs are recreated: after CrashLoopRestarts recreations
	// within CrashLoopWindow the plugin is unhealthy (Plugin.Health) and
	// its VMs stay down until the window allows another. Zero means 5 per
	// minute.
	CrashLoopRestarts int
	CrashLoopWindow   time.Duration
}

// Host runs proxy-wasm plugins on one wazero runtime. It holds what
// plugins share: compiled modules (by digest), shared data and shared
// queues (by VM id) and metrics. It is safe for concurrent use.
type Host struct {
	opts  HostOptions
	log   *slog.Logger
	cache wazero.CompilationCache
	// code is every module compiled once, by digest, shared by the
	// plugins that load the same bytes; modules wasmrewrite instrumented
	// stop when their interrupt global is set, the others by wazero's
	// (slower) CloseOnContextDone.
	code *wasmcode.Cache

	// ctx ends when the host closes; background work (http calls, ticks,
	// VM recreation) watches it.
	ctx    context.Context
	cancel context.CancelFunc

	shared  sharedData
	queues  sharedQueues
	metrics *metricSet
}

// NewHost starts a Host.
func NewHost(ctx context.Context, opts HostOptions) (*Host, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CompileWorkers <= 0 {
		opts.CompileWorkers = goruntime.GOMAXPROCS(0)
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = defaultCallTimeout
	}
	if opts.CrashLoopRestarts <= 0 {
		opts.CrashLoopRestarts = defaultCrashLoopRestarts
	}
	if opts.CrashLoopWindow <= 0 {
		opts.CrashLoopWindow = defaultCrashLoopWindow
	}
	if opts.Client == nil {
		opts.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	var cache wazero.CompilationCache
	if opts.CacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(opts.CacheDir); err != nil {
			return nil, fmt.Errorf("proxywasm: opening the compilation cache in %s: %w; give a writable directory", opts.CacheDir, err)
		}
	} else {
		cache = wazero.NewCompilationCache()
	}
	code, err := wasmcode.New(ctx, wasmcode.Options{
		NewRuntime: func(ctx context.Context, closeOnDone bool) (wazero.Runtime, error) {
			return newRuntime(ctx, cache, closeOnDone)
		},
		CompileWorkers: opts.CompileWorkers,
		Log:            opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	h := &Host{
		opts:    opts,
		log:     opts.Logger,
		code:    code,
		cache:   cache,
		metrics: newMetricSet(opts.Metrics),
	}
	h.ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	h.shared.init()
	h.queues.init()
	return h, nil
}

// newRuntime returns a runtime with WASI and the proxy-wasm host
// functions.
func newRuntime(ctx context.Context, cache wazero.CompilationCache, closeOnDone bool) (wazero.Runtime, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithCloseOnContextDone(closeOnDone))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("proxywasm: instantiating WASI: %w", err)
	}
	if err := instantiateEnv(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("proxywasm: instantiating the proxy-wasm host functions: %w", err)
	}
	return rt, nil
}

// Close stops every plugin's background work and releases the runtimes.
// Plugins must not be used after it.
func (h *Host) Close(ctx context.Context) error {
	h.cancel()
	return errors.Join(h.code.Close(ctx), h.cache.Close(ctx))
}
