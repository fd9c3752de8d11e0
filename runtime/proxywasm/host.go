package proxywasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wisp-faas/wisp/internal/wasmrewrite"
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
	// rt runs the modules wasmrewrite instrumented: they stop when their
	// interrupt global is set. rtClosing runs the others, stopped by
	// wazero's (slower) CloseOnContextDone; it is made on first use.
	rt            wazero.Runtime
	rtClosingOnce sync.Once
	rtClosing     wazero.Runtime
	rtClosingErr  error

	// ctx ends when the host closes; background work (http calls, ticks,
	// VM recreation) watches it.
	ctx    context.Context
	cancel context.CancelFunc

	codeMu sync.Mutex
	code   map[string]*code // by sha256 of the module

	shared  sharedData
	queues  sharedQueues
	metrics *metricSet
}

// code is a compiled module shared by every plugin loading the same bytes.
type code struct {
	digest   string
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	// interruptible is true when wasmrewrite instrumented the module.
	interruptible bool
	refs          int // guarded by Host.codeMu
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
	rt, err := newRuntime(ctx, cache, false)
	if err != nil {
		return nil, err
	}
	h := &Host{
		opts:    opts,
		log:     opts.Logger,
		rt:      rt,
		cache:   cache,
		code:    map[string]*code{},
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

// closingRuntime returns the runtime for modules wasmrewrite could not
// instrument.
func (h *Host) closingRuntime(ctx context.Context) (wazero.Runtime, error) {
	h.rtClosingOnce.Do(func() { h.rtClosing, h.rtClosingErr = newRuntime(ctx, h.cache, true) })
	return h.rtClosing, h.rtClosingErr
}

// Close stops every plugin's background work and releases the runtimes.
// Plugins must not be used after it.
func (h *Host) Close(ctx context.Context) error {
	h.cancel()
	err := h.rt.Close(ctx)
	if h.rtClosing != nil {
		err = errors.Join(err, h.rtClosing.Close(ctx))
	}
	return errors.Join(err, h.cache.Close(ctx))
}

// acquireCode returns the compiled module for bin, compiling it only when
// no plugin holds it yet.
func (h *Host) acquireCode(ctx context.Context, bin []byte) (*code, error) {
	sum := sha256.Sum256(bin)
	digest := hex.EncodeToString(sum[:])
	h.codeMu.Lock()
	if c, ok := h.code[digest]; ok {
		c.refs++
		h.codeMu.Unlock()
		return c, nil
	}
	h.codeMu.Unlock()
	c := &code{digest: digest, rt: h.rt, refs: 1}
	if rw, err := wasmrewrite.Rewrite(bin); err != nil {
		h.log.Warn("proxy-wasm module not instrumented; using wazero's slower interruption instead", "sha256", digest, "error", err)
		if c.rt, err = h.closingRuntime(ctx); err != nil {
			return nil, err
		}
	} else {
		bin, c.interruptible = rw.Bin, true
	}
	var err error
	c.compiled, err = c.rt.CompileModule(experimental.WithCompilationWorkers(ctx, h.opts.CompileWorkers), bin)
	if err != nil {
		return nil, fmt.Errorf("compiling module sha256:%s: %w", digest, err)
	}
	h.codeMu.Lock()
	defer h.codeMu.Unlock()
	if won, ok := h.code[digest]; ok { // a concurrent load of the same bytes won
		won.refs++
		_ = c.compiled.Close(ctx)
		return won, nil
	}
	h.code[digest] = c
	return c, nil
}

// releaseCode drops one plugin's hold on c.
func (h *Host) releaseCode(ctx context.Context, c *code) {
	h.codeMu.Lock()
	defer h.codeMu.Unlock()
	if c.refs--; c.refs == 0 {
		delete(h.code, c.digest)
		_ = c.compiled.Close(ctx)
	}
}
