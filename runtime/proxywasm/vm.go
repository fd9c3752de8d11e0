package proxywasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wisp-faas/wisp/internal/wasmrewrite"
)

// rootID is the context id of every VM's root context (Envoy's plugin
// context); the VM's HTTP contexts count up from it.
const rootID = 1

// vm is one instance of a plugin's module with its root context. The
// guest is single-threaded: every call into it holds mu. Requests are
// pinned to one vm for their whole life and interleave on it, as Envoy's
// streams interleave on a worker thread's VM.
type vm struct {
	p    *Plugin
	slot int
	log  *slog.Logger

	mod api.Module
	mem api.Memory
	fn  guestFuncs
	// interrupt, set to 1, makes an instrumented guest trap at its next
	// loop iteration or call; nil when the module is not instrumented.
	interrupt api.MutableGlobal
	// ctx is passed to every call into the guest: host functions find
	// the vm in it, and cancelling it stops a runaway guest.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the vm ends
	tick   chan time.Duration

	// busySince is when the running call began (UnixNano), 0 when idle;
	// the plugin's watchdog reads it.
	busySince atomic.Int64

	mu         sync.Mutex
	stack      [8]uint64
	allocStack [1]uint64
	dead       bool
	nextID     uint32
	nextToken  uint32
	streams    map[uint32]*stream
	rootProps  map[string][]byte
	// The call in progress: cur is the stream it is for (nil: the root
	// context), effective is what proxy_set_effective_context chose (nil:
	// none), config is the buffer of proxy_on_vm_start/configure and
	// callResp the response proxy_on_http_call_response reports on.
	cur       *stream
	effective *stream
	config    *[]byte
	configBuf int
	callResp  *callResponse
}

// guestFuncs are the callbacks a module exports; any may be missing.
type guestFuncs struct {
	alloc, contextCreate, vmStart, configure,
	requestHeaders, requestBody, requestTrailers,
	responseHeaders, responseBody, responseTrailers,
	done, log, delete, tick, httpCallResponse, queueReady api.Function
}

type vmKey struct{}

// vmOf returns the vm a host function was called for.
func vmOf(ctx context.Context) *vm { return ctx.Value(vmKey{}).(*vm) }

// startVM instantiates the plugin's module and brings its root context
// up: _initialize, proxy_on_context_create, proxy_on_vm_start with the VM
// configuration and proxy_on_configure with the plugin configuration.
func startVM(p *Plugin, slot int) (*vm, error) {
	v := &vm{
		p:       p,
		slot:    slot,
		log:     p.log.With("vm", slot),
		done:    make(chan struct{}),
		tick:    make(chan time.Duration, 1),
		nextID:  rootID,
		streams: map[uint32]*stream{},
	}
	v.ctx, v.cancel = context.WithCancel(context.WithValue(p.h.ctx, vmKey{}, v))
	stdout := &logWriter{log: v.log, level: slog.LevelInfo}
	stderr := &logWriter{log: v.log, level: slog.LevelError}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithStdout(stdout).
		WithStderr(stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(cryptoRand{})
	for k, val := range p.spec.Env {
		cfg = cfg.WithEnv(k, val)
	}
	mod, err := p.code.Runtime.InstantiateModule(v.ctx, p.code.Compiled, cfg)
	if err != nil {
		v.cancel()
		return nil, fmt.Errorf("instantiating: %w", err)
	}
	v.mod, v.mem = mod, mod.Memory()
	fail := func(err error) (*vm, error) {
		stdout.flush()
		stderr.flush()
		v.cancel()
		_ = mod.Close(context.Background())
		return nil, err
	}
	if v.mem == nil {
		return fail(errors.New("the module exports no memory"))
	}
	if p.code.Interruptible {
		v.interrupt, _ = mod.ExportedGlobal(wasmrewrite.InterruptExport).(api.MutableGlobal)
	}
	f := mod.ExportedFunction
	v.fn = guestFuncs{
		alloc: f("proxy_on_memory_allocate"), contextCreate: f("proxy_on_context_create"),
		vmStart: f("proxy_on_vm_start"), configure: f("proxy_on_configure"),
		requestHeaders: f("proxy_on_request_headers"), requestBody: f("proxy_on_request_body"),
		responseHeaders: f("proxy_on_response_headers"), responseBody: f("proxy_on_response_body"),
		requestTrailers: f("proxy_on_request_trailers"), responseTrailers: f("proxy_on_response_trailers"),
		done: f("proxy_on_done"), log: f("proxy_on_log"), delete: f("proxy_on_delete"),
		tick: f("proxy_on_tick"), httpCallResponse: f("proxy_on_http_call_response"),
		queueReady: f("proxy_on_queue_ready"),
	}
	if v.fn.alloc == nil {
		v.fn.alloc = f("malloc") // deprecated, still accepted by the spec
	}
	if v.fn.alloc == nil || v.fn.contextCreate == nil {
		return fail(errors.New("the module exports neither proxy_on_memory_allocate (nor malloc) or no proxy_on_context_create: is it a proxy-wasm module?"))
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, start := range []string{"_initialize", "_start"} {
		if fn := f(start); fn != nil {
			if _, err := v.callLocked(fn); err != nil {
				return fail(fmt.Errorf("%s: %w", start, err))
			}
			break
		}
	}
	if fn := f("main"); fn != nil && f("_initialize") != nil {
		if _, err := v.callLocked(fn, 0, 0); err != nil { // argc, argv when it takes them
			return fail(fmt.Errorf("main: %w", err))
		}
	}
	if _, err := v.callLocked(v.fn.contextCreate, rootID, 0); err != nil {
		return fail(fmt.Errorf("proxy_on_context_create of the root context: %w", err))
	}
	steps := []struct {
		fn   api.Function
		name string
		buf  int
		data []byte
	}{
		{v.fn.vmStart, "proxy_on_vm_start", bufferVMConfiguration, p.spec.VMConfig},
		{v.fn.configure, "proxy_on_configure", bufferPluginConfiguration, p.spec.PluginConfig},
	}
	for _, st := range steps {
		if st.fn == nil {
			continue
		}
		data := st.data
		v.config, v.configBuf = &data, st.buf
		ok, err := v.callLocked(st.fn, rootID, uint64(len(data)))
		v.config = nil
		if err != nil {
			return fail(fmt.Errorf("%s: %w", st.name, err))
		}
		if uint32(ok) == 0 {
			return fail(fmt.Errorf("%s returned false: the plugin refused its configuration (see its logs)", st.name))
		}
	}
	go v.tickLoop()
	return v, nil
}

// callLocked calls fn with args on the guest and returns its first
// result, if any. v.mu must be held. An error means the guest trapped,
// exited or was stopped; the caller must then crash the vm.
func (v *vm) callLocked(fn api.Function, args ...uint64) (uint64, error) {
	copy(v.stack[:], args)
	v.busySince.Store(time.Now().UnixNano())
	err := fn.CallWithStack(v.ctx, v.stack[:])
	v.busySince.Store(0)
	v.effective = nil
	return v.stack[0], err
}

// stop makes the running call fail: through the interrupt global of an
// instrumented guest, else by cancelling the context of the call (its
// runtime closes the module on cancellation). Safe from any goroutine.
func (v *vm) stop() {
	if v.interrupt != nil {
		v.interrupt.Set(1)
		return
	}
	v.cancel()
}

// crashLocked ends a vm whose guest failed: every stream pinned to it is
// woken to follow its plugin's failure strategy, and the plugin recreates
// the vm in the background. v.mu must be held.
func (v *vm) crashLocked(err error) {
	if v.dead {
		return
	}
	v.log.Error("proxy-wasm VM crashed; recreating it", "error", err)
	v.endLocked()
	v.p.crashed(v, err)
}

// endLocked closes the vm's module and wakes its streams. v.mu must be held.
func (v *vm) endLocked() {
	v.dead = true
	close(v.done)
	v.cancel()
	_ = v.mod.Close(context.Background())
	for _, s := range v.streams {
		s.signal()
	}
}

// close ends a vm after telling its root context (proxy_on_done, then
// proxy_on_delete), when the plugin closes.
func (v *vm) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dead {
		return
	}
	if v.fn.done != nil {
		if _, err := v.callLocked(v.fn.done, rootID); err != nil {
			v.endLocked()
			return
		}
	}
	if v.fn.delete != nil {
		_, _ = v.callLocked(v.fn.delete, rootID)
	}
	v.endLocked()
}

// rootCall runs fn for the root context (a tick, an http call's
// response, a ready queue), unless the vm has ended.
func (v *vm) rootCall(fn api.Function, args ...uint64) {
	if fn == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dead {
		return
	}
	v.cur = nil
	if _, err := v.callLocked(fn, args...); err != nil {
		v.crashLocked(err)
	}
}

// tickLoop calls proxy_on_tick at the period the root context set.
func (v *vm) tickLoop() {
	var t *time.Ticker
	var tc <-chan time.Time
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		select {
		case <-v.done:
			return
		case d := <-v.tick:
			if t != nil {
				t.Stop()
				t, tc = nil, nil
			}
			if d > 0 {
				t = time.NewTicker(d)
				tc = t.C
			}
		case <-tc:
			v.rootCall(v.fn.tick, rootID)
		}
	}
}

// setTick changes the tick period; called by the guest with v.mu held.
func (v *vm) setTick(d time.Duration) {
	select {
	case <-v.tick: // drop a period not yet applied
	default:
	}
	v.tick <- d
}

// alloc copies b into memory the guest allocates and writes its address
// and length to ptrPtr and sizePtr. Nothing is allocated for an empty b
// (the Go SDK cannot allocate zero bytes): address and length are 0.
func (v *vm) alloc(ctx context.Context, b []byte, ptrPtr, sizePtr uint32) status {
	var ptr uint32
	if len(b) > 0 {
		v.allocStack[0] = uint64(len(b))
		if err := v.fn.alloc.CallWithStack(ctx, v.allocStack[:]); err != nil {
			panic(err) // a trap in the allocator fails the whole call
		}
		ptr = uint32(v.allocStack[0])
		if !v.mem.Write(ptr, b) {
			return statusInvalidMemAccess
		}
	}
	if !v.mem.WriteUint32Le(ptrPtr, ptr) || !v.mem.WriteUint32Le(sizePtr, uint32(len(b))) {
		return statusInvalidMemAccess
	}
	return statusOK
}
