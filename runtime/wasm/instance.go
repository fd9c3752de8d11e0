package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	wapi "github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wisp-faas/wisp/runtime"
)

// Causes of a call's end that are not the guest's doing.
var (
	errRequestTimeout = errors.New("request timeout")
	errStopped        = errors.New("instance stopped")
)

// instance is one runtime.Instance: for the http ABI a live module
// instance reused across requests, for wagi a slot that instantiates the
// module afresh per request. Either way it serves one request at a time.
type instance struct {
	p      *Provider
	m      *module
	id     string
	log    *slog.Logger
	notify func(runtime.State)

	// slot holds a token while a request runs; Stop takes it for good.
	slot  chan struct{}
	ready atomic.Bool

	// cur is the call running now, if any; Stop interrupts it.
	cur atomic.Pointer[call]

	endOnce sync.Once
	done    chan struct{}

	stdout, stderr *lineWriter

	// The live module of an http-ABI instance.
	mod    wapi.Module
	handle wapi.Function
	stack  []uint64
}

var _ runtime.Instance = (*instance)(nil)

// ID returns the instance's ID: the Revision's name and a sequence number.
func (i *instance) ID() string { return i.id }

// Ready reports whether the instance takes requests: it is neither
// stopping nor discarded.
func (i *instance) Ready() bool { return i.ready.Load() }

// Done is closed once the instance has ended for good.
func (i *instance) Done() <-chan struct{} { return i.done }

func (i *instance) sink(stream string) func(string) {
	if s := i.p.opts.LogSink; s != nil {
		rev, id := i.m.rev, i.id
		return func(line string) { s(rev, id, stream, line) }
	}
	log := i.log.With("stream", stream)
	return func(line string) { log.Info(line) }
}

// ServeHTTP runs the request on the guest. It answers 413 when the body
// is larger than the Revision allows (before any guest code runs), 503
// when the instance is stopping or was discarded, 504 when the request's
// deadline (or the Revision's timeoutSeconds) passes first, and 500 when
// the guest traps, exits or answers something malformed; the instance is
// then discarded.
func (i *instance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !i.ready.Load() {
		i.unavailable(w)
		return
	}
	lim := &i.m.limits
	if r.ContentLength > lim.maxBody {
		runtime.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf(
			"request body of %d bytes is larger than the %d bytes revision %s accepts (wasm.maxRequestBodyBytes)", r.ContentLength, lim.maxBody, i.m.rev.Name))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, lim.maxBody+1))
	if err != nil {
		runtime.WriteError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return
	}
	if int64(len(body)) > lim.maxBody {
		runtime.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf(
			"request body is larger than the %d bytes revision %s accepts (wasm.maxRequestBodyBytes)", lim.maxBody, i.m.rev.Name))
		return
	}

	ctx := r.Context()
	if lim.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, lim.timeout, errRequestTimeout)
		defer cancel()
	}
	select {
	case i.slot <- struct{}{}:
	case <-i.done:
		i.unavailable(w)
		return
	case <-ctx.Done():
		i.ended(w, ctx, true)
		return
	}
	defer func() { <-i.slot }()
	if !i.ready.Load() {
		i.unavailable(w)
		return
	}
	if i.m.abi == ABIHTTP {
		i.serveReactor(ctx, w, r, body)
	} else {
		i.serveWAGI(ctx, w, r, body)
	}
}

func (i *instance) unavailable(w http.ResponseWriter) {
	runtime.WriteFailure(w, http.StatusServiceUnavailable, runtime.FailureOverloaded, fmt.Sprintf("instance %s of revision %s is stopped", i.id, i.m.rev.Name))
}

// ended answers a request whose context ended before the guest answered,
// while it waited for the instance or while the guest ran.
func (i *instance) ended(w http.ResponseWriter, ctx context.Context, waiting bool) {
	when := "while the guest ran; the guest was stopped"
	if waiting {
		when = "while the request waited for the instance, busy with another request"
	}
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errStopped):
		runtime.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("instance %s of revision %s was stopped %s", i.id, i.m.rev.Name, when))
	case errors.Is(cause, context.Canceled):
		runtime.WriteError(w, http.StatusServiceUnavailable, "the request was cancelled "+when)
	default:
		limit := "the request's deadline"
		if i.m.limits.timeout > 0 && errors.Is(cause, errRequestTimeout) {
			limit = fmt.Sprintf("its timeout of %s (spec.timeoutSeconds)", i.m.limits.timeout)
		}
		runtime.WriteFailure(w, http.StatusGatewayTimeout, runtime.FailureTimeout, fmt.Sprintf("revision %s did not answer within %s: the deadline passed %s", i.m.rev.Name, limit, when))
	}
}

// Stop stops taking requests, lets the one in flight finish until ctx is
// done, then interrupts it, and ends the instance. It is safe to call more
// than once and concurrently.
func (i *instance) Stop(ctx context.Context) error {
	i.ready.Store(false)
	var err error
	select {
	case i.slot <- struct{}{}: // idle: keep the slot, nothing runs again
	case <-i.done:
	case <-ctx.Done():
		if c := i.cur.Load(); c != nil {
			c.cancel(errStopped)
		}
		select {
		case i.slot <- struct{}{}:
		case <-i.done:
		}
		err = fmt.Errorf("instance %s: stopped before the request in flight finished: %w", i.id, context.Cause(ctx))
	}
	i.end("")
	<-i.done
	return err
}

// end ends the instance for good, reporting reason. The caller holds the
// slot (no call runs) or the instance had already ended.
func (i *instance) end(reason string) {
	i.endOnce.Do(func() {
		i.ready.Store(false)
		if i.mod != nil {
			_ = i.mod.Close(context.Background())
		}
		i.stdout.Flush()
		i.stderr.Flush()
		i.notify(runtime.State{Gone: true, Reason: reason})
		close(i.done)
	})
}

// crashed records a guest crash of the Revision and returns the Reason to
// report.
func (i *instance) crashed(what string) string {
	reason := i.m.crash.record(time.Now(), what)
	i.log.Warn("guest crashed", "reason", reason)
	return reason
}

// call is one call into a guest: its context, which an interrupt cancels,
// and the request and response of the http ABI.
type call struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	// interrupted is set once the guest was told to stop; its trap is then
	// the interruption, not a crash.
	interrupted atomic.Bool
	stopWatch   func() bool

	mu        sync.Mutex // orders interrupt against done
	finished  bool
	interrupt wapi.MutableGlobal

	req  []byte
	resp []byte
	err  error // a malformed response
}

type callKey struct{}

// startCall returns a call bound to ctx that interrupts mod's guest once
// ctx ends: it sets the interrupt global of an instrumented module, and
// wazero closes an uninstrumented one itself (WithCloseOnContextDone).
func (i *instance) startCall(ctx context.Context, mod wapi.Module) *call {
	c := &call{}
	c.ctx, c.cancel = context.WithCancelCause(ctx)
	if mod != nil && i.m.interruptible {
		c.interrupt, _ = mod.ExportedGlobal(interruptExport).(wapi.MutableGlobal)
	}
	c.stopWatch = context.AfterFunc(c.ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.interrupted.Store(true)
		if !c.finished && c.interrupt != nil {
			c.interrupt.Set(1)
		}
	})
	i.cur.Store(c)
	return c
}

// finish ends the call. It reports whether the guest was interrupted, in
// which case its instance must not be used again.
func (i *instance) finish(c *call) (interrupted bool) {
	i.cur.Store(nil)
	c.stopWatch()
	c.mu.Lock()
	c.finished = true
	c.mu.Unlock()
	c.cancel(nil)
	return c.interrupted.Load()
}

// moduleConfig is the configuration of every module instance: the
// Revision's environment, stdout and stderr as given, real clocks and
// randomness, the granted directories and nothing else of the host.
func (i *instance) moduleConfig(stdin io.Reader, stdout io.Writer) wazero.ModuleConfig {
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithStdin(stdin).
		WithStdout(stdout).
		WithStderr(i.stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(i.nanosleep).
		WithRandSource(rand.Reader)
	for _, kv := range i.m.env {
		cfg = cfg.WithEnv(kv[0], kv[1])
	}
	if dirs := i.m.limits.dirs; len(dirs) > 0 {
		fs := wazero.NewFSConfig()
		for _, d := range dirs {
			if d.ReadOnly {
				fs = fs.WithReadOnlyDirMount(d.HostPath, d.GuestPath)
			} else {
				fs = fs.WithDirMount(d.HostPath, d.GuestPath)
			}
		}
		cfg = cfg.WithFSConfig(fs)
	}
	return cfg
}

// nanosleep sleeps for the guest (poll_oneoff on a clock) until ns pass or
// the current call is interrupted, so that a sleeping guest stops as soon
// as a looping one.
func (i *instance) nanosleep(ns int64) {
	var done <-chan struct{}
	if c := i.cur.Load(); c != nil {
		done = c.ctx.Done()
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
	}
}

// instantiate instantiates the module with cfg, its memory bounded by the
// Revision's limit.
func (i *instance) instantiate(ctx context.Context, cfg wazero.ModuleConfig) (wapi.Module, error) {
	ctx = experimental.WithMemoryAllocator(ctx, allocator{limit: i.m.limits.memoryBytes()})
	return i.m.rt.InstantiateModule(ctx, i.m.compiled, cfg)
}

// exitCode returns the code of a guest's proc_exit, or false when err is
// not an exit.
func exitCode(err error) (uint32, bool) {
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), true
	}
	return 0, false
}
