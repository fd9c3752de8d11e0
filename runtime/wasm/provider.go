package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	wapi "github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/internal/wasmcode"
	"github.com/wisp-faas/wisp/runtime"
)

// The ABIs a module may speak; see docs/abi.md.
const (
	// ABIWAGI is a WASI command run once per request, CGI-style.
	ABIWAGI = "wagi"
	// ABIHTTP is a reactor exporting wisp_handle, called once per request.
	ABIHTTP = "http"
)

// Defaults for the zero values of Options.
const (
	defaultCrashLoopTraps  = 5
	defaultCrashLoopWindow = time.Minute
)

// Options configures a Provider. Load is required.
type Options struct {
	// Load returns the bytes of rev's module. The Provider never fetches
	// modules itself.
	Load func(ctx context.Context, rev *api.Revision) ([]byte, error)

	// CacheDir, when set, keeps compiled code on disk so that a restarted
	// node does not compile again; it is created if missing. Empty keeps
	// compiled code in memory only.
	CacheDir string

	// CompileWorkers is how many goroutines compile one module. Zero
	// means GOMAXPROCS.
	CompileWorkers int

	// Logger receives the provider's logs and, unless LogSink is set, the
	// guests' output. Nil discards both.
	Logger *slog.Logger

	// LogSink, when set, receives every line a guest writes to stdout or
	// stderr (stream is "stdout" or "stderr"). A wagi module's stdout is
	// its response, not a log. LogSink is called on the request's
	// goroutine and must not block for long. Nil logs each line at Info
	// on Logger with the attributes function, revision, instance and
	// stream.
	LogSink func(rev *api.Revision, instanceID, stream, line string)

	// CrashLoopTraps and CrashLoopWindow define a crash loop: a Revision
	// whose guests trapped or exited unexpectedly CrashLoopTraps times
	// within CrashLoopWindow is reported as crash-looping in the Reason
	// of the states its instances notify. Zero means 5 and one minute.
	CrashLoopTraps  int
	CrashLoopWindow time.Duration

	// NoSnapshots turns off starting http-ABI instances from a snapshot
	// of an initialised instance; every instance then runs _initialize.
	NoSnapshots bool
}

// Provider runs Revisions whose source is a WebAssembly module, in
// process, on wazero. It implements runtime.Provider and is safe for
// concurrent use. Close it when done.
type Provider struct {
	opts  Options
	log   *slog.Logger
	cache wazero.CompilationCache
	// code is every module rewritten and compiled once, shared by the
	// Revisions that run the same bytes: a new Revision usually changes
	// only env or scaling, not the module, and a compiled Go module costs
	// megabytes of memory and ~100 ms to rewrite and load. wazero
	// instantiates one CompiledModule any number of times with different
	// configurations; the per-instance memory limit lives in the
	// allocator, not in the code.
	code *wasmcode.Cache

	seq atomic.Uint64 // instance IDs

	mu      sync.Mutex
	modules map[string]*module // by revKey
}

var _ runtime.Provider = (*Provider)(nil)

// New returns a Provider configured by opts.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if opts.Load == nil {
		return nil, errors.New("wasm: Options.Load is required: it returns the module bytes of a revision")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CrashLoopTraps <= 0 {
		opts.CrashLoopTraps = defaultCrashLoopTraps
	}
	if opts.CrashLoopWindow <= 0 {
		opts.CrashLoopWindow = defaultCrashLoopWindow
	}
	if opts.CompileWorkers <= 0 {
		opts.CompileWorkers = goruntime.GOMAXPROCS(0)
	}
	var cache wazero.CompilationCache
	if opts.CacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(opts.CacheDir); err != nil {
			return nil, fmt.Errorf("wasm: opening the compilation cache in %s: %w; give a writable directory", opts.CacheDir, err)
		}
	} else {
		cache = wazero.NewCompilationCache()
	}
	if opts.CacheDir != "" {
		if err := os.MkdirAll(filepath.Join(opts.CacheDir, "snapshots"), 0o700); err != nil {
			return nil, fmt.Errorf("wasm: creating the snapshot directory: %w; give a writable CacheDir", err)
		}
	}
	p := &Provider{
		opts:    opts,
		log:     opts.Logger,
		cache:   cache,
		modules: make(map[string]*module),
	}
	var err error
	if p.code, err = wasmcode.New(ctx, wasmcode.Options{NewRuntime: p.newRuntime, CompileWorkers: opts.CompileWorkers, Log: opts.Logger}); err != nil {
		_ = cache.Close(ctx)
		return nil, err
	}
	return p, nil
}

// newRuntime returns a runtime sharing p's compilation cache, with the
// host modules every guest may import.
func (p *Provider) newRuntime(ctx context.Context, closeOnDone bool) (wazero.Runtime, error) {
	cfg := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(p.cache).
		WithCloseOnContextDone(closeOnDone).
		WithCustomSections(false)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiating WASI: %w", err)
	}
	if err := instantiateHostModule(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiating the wisp host module: %w", err)
	}
	return rt, nil
}

// Close releases every compiled module and the runtimes. Instances must
// have been stopped first. The on-disk cache stays.
func (p *Provider) Close(ctx context.Context) error {
	p.mu.Lock()
	for k, m := range p.modules {
		m.close(ctx)
		delete(p.modules, k)
	}
	p.mu.Unlock()
	return errors.Join(p.code.Close(ctx), p.cache.Close(ctx))
}

// snapshots reports whether m's instances start from a snapshot: it speaks
// the http ABI, rewrite exported its globals, and it is granted no
// directories (open files are host state that a snapshot cannot carry).
func (p *Provider) snapshots(m *module) bool {
	return !p.opts.NoSnapshots && m.abi == ABIHTTP && m.interruptible && len(m.limits.dirs) == 0
}

// snapshotDir is where snapshots keep their bytes; empty keeps them in
// memory.
func (p *Provider) snapshotDir() string {
	if p.opts.CacheDir == "" {
		return ""
	}
	return filepath.Join(p.opts.CacheDir, "snapshots")
}

func revKey(rev *api.Revision) string { return rev.Namespace + "/" + rev.Name }

// Prepare loads rev's module, compiles it (or finds it in the cache),
// determines its ABI and checks that wisp can run it. It keeps the
// compiled module until Release. Preparing a prepared Revision again does
// nothing.
func (p *Provider) Prepare(ctx context.Context, rev *api.Revision) error {
	key := revKey(rev)
	p.mu.Lock()
	_, ok := p.modules[key]
	p.mu.Unlock()
	if ok {
		return nil
	}
	m, err := p.compile(ctx, rev)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if _, ok := p.modules[key]; ok { // a concurrent Prepare won
		p.mu.Unlock()
		m.close(ctx)
		return nil
	}
	p.modules[key] = m
	p.mu.Unlock()
	return nil
}

// Release closes what Prepare kept for rev. Its instances must have been
// stopped.
func (p *Provider) Release(rev *api.Revision) {
	p.mu.Lock()
	m, ok := p.modules[revKey(rev)]
	delete(p.modules, revKey(rev))
	p.mu.Unlock()
	if ok {
		m.close(context.Background())
	}
}

// module returns rev's prepared module, preparing it if needed.
func (p *Provider) module(ctx context.Context, rev *api.Revision) (*module, error) {
	for {
		p.mu.Lock()
		m, ok := p.modules[revKey(rev)]
		p.mu.Unlock()
		if ok {
			return m, nil
		}
		if err := p.Prepare(ctx, rev); err != nil {
			return nil, err
		}
	}
}

// Start starts one instance of rev, preparing rev first if needed. For
// the http ABI the instance is a module instantiated and initialised now
// and reused for every request; for wagi it is a slot that instantiates
// the module afresh for each request. ctx bounds only the start.
func (p *Provider) Start(ctx context.Context, rev *api.Revision, notify func(runtime.State)) (runtime.Instance, error) {
	m, err := p.module(ctx, rev)
	if err != nil {
		return nil, err
	}
	if notify == nil {
		notify = func(runtime.State) {}
	}
	id := rev.Name + "-" + strconv.FormatUint(p.seq.Add(1), 10)
	i := &instance{
		p:      p,
		m:      m,
		id:     id,
		log:    p.log.With("function", functionName(rev), "revision", rev.Name, "instance", id),
		notify: notify,
		slot:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	i.stdout = &lineWriter{emit: i.sink("stdout")}
	i.stderr = &lineWriter{emit: i.sink("stderr")}
	if m.abi == ABIHTTP {
		begin := time.Now()
		if err := i.startReactor(ctx); err != nil {
			return nil, fmt.Errorf("revision %s: starting an instance: %w", rev.Name, err)
		}
		i.log.Debug("instance ready", "startup", time.Since(begin), "snapshot", m.snap.Load() != nil)
	}
	i.ready.Store(true)
	return i, nil
}

// functionName is the name of rev's Function, or rev's own name when the
// label is missing.
func functionName(rev *api.Revision) string {
	if fn := rev.Labels[api.LabelFunction]; fn != "" {
		return fn
	}
	return rev.Name
}

// compile loads, rewrites and compiles rev's module and checks it.
func (p *Provider) compile(ctx context.Context, rev *api.Revision) (*module, error) {
	src := rev.Spec.Wasm
	if src == nil {
		return nil, fmt.Errorf("revision %s has no wasm source (spec.wasm); the wasm runtime runs only WebAssembly modules", rev.Name)
	}
	switch src.ABI {
	case "", ABIWAGI, ABIHTTP:
	default:
		return nil, fmt.Errorf("revision %s: wasm.abi %q is not one wisp knows; use %q, %q or leave it empty to detect it", rev.Name, src.ABI, ABIWAGI, ABIHTTP)
	}
	bin, err := p.opts.Load(ctx, rev)
	if err != nil {
		return nil, fmt.Errorf("revision %s: loading module %s: %w", rev.Name, src.Module, err)
	}
	m := &module{
		rev:    rev,
		limits: limitsFor(rev),
		env:    environ(rev),
		crash:  crashLog{max: p.opts.CrashLoopTraps, window: p.opts.CrashLoopWindow},
	}
	begin := time.Now()
	code, err := p.code.Acquire(ctx, bin, "revision", rev.Name, "module", src.Module)
	if err != nil {
		return nil, fmt.Errorf("revision %s: module %s is not a valid WebAssembly module: %v", rev.Name, src.Module, err)
	}
	m.p, m.code = p, code
	m.rt, m.compiled, m.interruptible, m.globals = code.Runtime, code.Compiled, code.Interruptible, code.Globals
	p.log.Debug("module rewritten", "revision", rev.Name, "dataSegments", code.SegmentsBefore, "merged", code.SegmentsAfter)
	if err := m.check(src.ABI); err != nil {
		m.close(ctx)
		return nil, fmt.Errorf("revision %s: module %s: %w", rev.Name, src.Module, err)
	}
	p.log.Info("module prepared", "revision", rev.Name, "module", src.Module, "abi", m.abi,
		"bytes", len(bin), "compile", time.Since(begin), "interruptible", m.interruptible)
	return m, nil
}

// environ returns the variables every instance of rev sees: its spec env,
// then the Knative runtime contract's K_SERVICE, K_CONFIGURATION and
// K_REVISION, a later one overriding an earlier one of the same name.
func environ(rev *api.Revision) [][2]string {
	var env [][2]string
	at := make(map[string]int)
	set := func(k, v string) {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			return
		}
		if i, ok := at[k]; ok {
			env[i][1] = v
			return
		}
		at[k] = len(env)
		env = append(env, [2]string{k, v})
	}
	for _, e := range rev.Spec.Env {
		set(e.Name, e.Value)
	}
	fn := functionName(rev)
	set("K_SERVICE", fn)
	set("K_CONFIGURATION", fn)
	set("K_REVISION", rev.Name)
	return env
}

// module is a prepared Revision: its compiled module and what every
// instance of it shares.
type module struct {
	rev      *api.Revision
	abi      string
	rt       wazero.Runtime
	p        *Provider
	code     *wasmcode.Code        // shared with Revisions of the same module
	compiled wazero.CompiledModule // code.compiled
	limits   limits
	env      [][2]string
	// interruptible is true when rewrite instrumented the module: it traps
	// once its interrupt global is set. Otherwise rt closes it when the
	// call's context ends.
	interruptible bool
	// globals are the exports of the module's mutable globals.
	globals []string
	crash   crashLog

	// snap is the snapshot new http-ABI instances start from, once made.
	snapMu sync.Mutex
	snap   atomic.Pointer[snapshot]
}

func (m *module) close(ctx context.Context) {
	if m.code != nil {
		m.p.code.Release(ctx, m.code)
	}
	if s := m.snap.Swap(nil); s != nil {
		s.release()
	}
}

// check determines m's ABI, honouring want when set, and checks that the
// module imports only what wisp provides and fits its memory limit.
func (m *module) check(want string) error {
	exports := m.compiled.ExportedFunctions()
	_, hasStart := exports["_start"]
	_, hasHandle := exports["wisp_handle"]
	_, hasVersion := exports[abiVersionExport]
	abi := want
	switch {
	case abi != "":
	case hasHandle || hasVersion:
		abi = ABIHTTP
	case hasStart:
		abi = ABIWAGI
	default:
		return errors.New("exports neither _start (a WASI command: the wagi ABI) nor wisp_handle (the http ABI); see docs/abi.md")
	}
	switch abi {
	case ABIWAGI:
		if !hasStart {
			return errors.New("the wagi ABI needs a WASI command exporting _start; build a command (not -buildmode=c-shared)")
		}
	case ABIHTTP:
		if !hasVersion {
			return fmt.Errorf("the http ABI needs the export %s; build with wisp's SDK of this version (see docs/abi.md)", abiVersionExport)
		}
		if err := checkSignature(exports, "wisp_handle", []wapi.ValueType{wapi.ValueTypeI32}, []wapi.ValueType{wapi.ValueTypeI32}); err != nil {
			return err
		}
		if d, ok := exports["_initialize"]; ok && (len(d.ParamTypes()) != 0 || len(d.ResultTypes()) != 0) {
			return errors.New("_initialize must take and return nothing")
		}
		if len(m.compiled.ExportedMemories()) == 0 {
			return errors.New("the http ABI needs an exported memory")
		}
	}
	m.abi = abi
	for _, f := range m.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch {
		case mod == wasi_snapshot_preview1.ModuleName:
		case mod == hostModule && abi == ABIHTTP && (name == "request_read" || name == "response_write"):
		default:
			return fmt.Errorf("imports %s.%s, which wisp does not provide: a module may import only %s (WASI preview 1) and, under the http ABI, %s.request_read and %s.response_write",
				mod, name, wasi_snapshot_preview1.ModuleName, hostModule, hostModule)
		}
	}
	var mems []wapi.MemoryDefinition
	for _, d := range m.compiled.ExportedMemories() {
		mems = append(mems, d)
	}
	mems = append(mems, m.compiled.ImportedMemories()...)
	for _, d := range mems {
		if d.Min() > m.limits.memoryPages {
			return fmt.Errorf("its memory starts at %d pages (%d MiB), more than the limit of %d pages (%d MiB); raise wasm.memoryLimitPages",
				d.Min(), d.Min()/16, m.limits.memoryPages, m.limits.memoryPages/16)
		}
	}
	return nil
}

func checkSignature(exports map[string]wapi.FunctionDefinition, name string, params, results []wapi.ValueType) error {
	d, ok := exports[name]
	if !ok {
		return fmt.Errorf("the http ABI needs the export %s", name)
	}
	if !equalTypes(d.ParamTypes(), params) || !equalTypes(d.ResultTypes(), results) {
		return fmt.Errorf("export %s has the wrong signature; docs/abi.md gives it", name)
	}
	return nil
}

func equalTypes(a, b []wapi.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// crashLog counts a Revision's guest crashes within a sliding window.
type crashLog struct {
	max    int
	window time.Duration

	mu    sync.Mutex
	times []time.Time
}

// record notes a crash at now and returns the Reason to report: it says
// how many crashes the window holds once they reach max.
func (c *crashLog) record(now time.Time, what string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	cut := 0
	for cut < len(c.times) && now.Sub(c.times[cut]) > c.window {
		cut++
	}
	c.times = append(c.times[cut:], now)
	if n := len(c.times); n >= c.max {
		return fmt.Sprintf("%s %d crashes in %s, the last: %s", CrashLoopPrefix, n, c.window, what)
	}
	return CrashPrefix + " " + what
}

// Prefixes of the Reason that an instance reports through notify after its
// guest trapped or exited unexpectedly. The controller can show the
// Reason as the Revision's status message.
const (
	// CrashPrefix starts the Reason of one crash: "guest crashed:
	// <wazero's error>".
	CrashPrefix = "guest crashed:"
	// CrashLoopPrefix starts the Reason once a Revision's guests crashed
	// Options.CrashLoopTraps times within Options.CrashLoopWindow: "guest
	// crash loop: 5 crashes in 1m0s, the last: <wazero's error>".
	CrashLoopPrefix = "guest crash loop:"
)
