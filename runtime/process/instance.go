package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/runtime"
)

// errRequestTimeout is the cause of a request's context ending at the
// Revision's timeoutSeconds.
var errRequestTimeout = errors.New("request timeout")

// instance is one running copy of a Revision: a supervised process and a
// reverse proxy to it.
type instance struct {
	p             *Provider
	rev           *api.Revision
	id            string
	path          string // resolved executable
	readinessPath string
	timeout       time.Duration // per request; 0: none
	log           *slog.Logger
	notify        func(runtime.State)
	proxy         *httputil.ReverseProxy

	target atomic.Pointer[url.URL] // the current process's address
	ready  atomic.Bool

	// mu orders the stopping flag against inflight.Add(1): once stopping
	// is set no request is added. drained is closed, once, when stopping
	// is set and no request is in flight.
	mu        sync.RWMutex
	stopping  bool
	inflight  atomic.Int64
	drained   chan struct{}
	drainOnce sync.Once

	// stopCtx is cancelled by Stop once draining is over; it ends the
	// process and aborts a restart in progress.
	stopCtx    context.Context
	stopCancel context.CancelFunc
	done       chan struct{}
	stopErr    error // set by supervise before done is closed
	restarts   int   // owned by supervise
}

var _ runtime.Instance = (*instance)(nil)

func (p *Provider) newInstance(rev *api.Revision, path string, notify func(runtime.State)) *instance {
	if notify == nil {
		notify = func(runtime.State) {}
	}
	id := rev.Name + "-" + strconv.FormatUint(p.seq.Add(1), 10)
	var readiness string
	if src := rev.Spec.Process; src != nil {
		readiness = src.ReadinessPath
	}
	if readiness == "" {
		readiness = "/"
	} else if !strings.HasPrefix(readiness, "/") {
		readiness = "/" + readiness
	}
	var timeout time.Duration
	if t := rev.Spec.TimeoutSeconds; t != nil && *t > 0 {
		timeout = time.Duration(*t) * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	i := &instance{
		p:             p,
		rev:           rev,
		id:            id,
		path:          path,
		readinessPath: readiness,
		timeout:       timeout,
		log:           p.opts.Logger.With("function", functionName(rev), "revision", rev.Name, "instance", id),
		notify:        notify,
		stopCtx:       ctx,
		stopCancel:    cancel,
		done:          make(chan struct{}),
		drained:       make(chan struct{}),
	}
	i.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(i.target.Load())
			pr.Out.Host = pr.In.Host // the function sees the Host the client asked for
			pr.SetXForwarded()       // replaces the client's X-Forwarded-*: see RATIONALE.md
		},
		Transport: p.transport,
		// 0 still flushes every write of a streamed answer (no Content-Length,
		// or text/event-stream): httputil decides per response. A sized
		// answer is written in as few syscalls as the copy allows.
		FlushInterval: 0,
		ErrorLog:      p.errorLog,
		ErrorHandler:  i.proxyError,
		BufferPool:    p.buffers,
	}
	return i
}

// ID returns the instance's ID: the Revision's name and a sequence number.
func (i *instance) ID() string { return i.id }

// Ready reports whether the process answers and the instance is not
// stopping.
func (i *instance) Ready() bool { return i.ready.Load() }

// Done is closed once the instance has ended for good.
func (i *instance) Done() <-chan struct{} { return i.done }

// ServeHTTP forwards the request to the process. It answers 503 when the
// instance is not ready (restarting or stopping), 502 when the process
// does not answer, and 504 when the request's deadline (its context's, or
// the Revision's timeoutSeconds) passes before the response starts; a
// response that already started is cut.
func (i *instance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i.mu.RLock()
	if i.stopping || !i.ready.Load() {
		stopping := i.stopping
		i.mu.RUnlock()
		state := "restarting"
		if stopping {
			state = "stopping"
		}
		msg := fmt.Sprintf("instance %s of revision %s is %s; send the request to a ready instance", i.id, i.rev.Name, state)
		runtime.WriteFailure(w, http.StatusServiceUnavailable, runtime.FailureOverloaded, msg)
		return
	}
	i.inflight.Add(1)
	i.mu.RUnlock()
	defer i.requestDone()

	if i.timeout > 0 {
		ctx, cancel := context.WithTimeoutCause(r.Context(), i.timeout, errRequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	i.proxy.ServeHTTP(w, r)
}

// proxyError answers a request that the process did not answer: 504
// when the request's deadline passed (the Revision's timeoutSeconds, or
// one set upstream, such as the gateway's), 502 otherwise. A client that
// went away is not worth a warning.
func (i *instance) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	switch {
	case errors.Is(context.Cause(ctx), errRequestTimeout):
		runtime.WriteFailure(w, http.StatusGatewayTimeout, runtime.FailureTimeout, fmt.Sprintf(
			"revision %s did not answer within its timeout of %s; make it answer sooner or raise spec.timeoutSeconds",
			i.rev.Name, i.timeout))
		return
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		runtime.WriteFailure(w, http.StatusGatewayTimeout, runtime.FailureTimeout, fmt.Sprintf(
			"revision %s did not answer before the request's deadline", i.rev.Name))
		return
	case errors.Is(ctx.Err(), context.Canceled):
		// The client went away; nobody reads the answer.
	default:
		i.log.Warn("forwarding to the process failed", "error", err)
	}
	runtime.WriteFailure(w, http.StatusBadGateway, connectionFailure(err), fmt.Sprintf(
		"instance %s of revision %s did not answer: %v; its output may say why ('wisp logs %s -n %s')",
		i.id, i.rev.Name, err, functionName(i.rev), i.rev.Namespace))
}

// Stop stops taking requests, waits until those in flight finish or ctx
// ends, then sends SIGTERM to the process group and, after
// Options.StopGrace, SIGKILL. It returns once the process is gone and Done
// is closed. It is safe to call more than once and concurrently; every
// call waits for the end. The error says if requests were cut or the
// process had to be killed.
func (i *instance) Stop(ctx context.Context) error {
	i.mu.Lock()
	first := !i.stopping
	i.stopping = true
	i.ready.Store(false)
	i.mu.Unlock()
	if first {
		i.log.Info("stopping instance")
	}

	if i.inflight.Load() == 0 {
		i.drain()
	}

	var errs []error
	select {
	case <-i.drained:
	case <-i.done:
	case <-ctx.Done():
		select {
		case <-i.drained: // ctx was done already, with nothing in flight
		default:
			errs = append(errs, fmt.Errorf("instance %s: stopped with %d request(s) still in flight: %w",
				i.id, i.inflight.Load(), context.Cause(ctx)))
		}
	}
	i.stopCancel()
	<-i.done
	if i.stopErr != nil {
		errs = append(errs, i.stopErr)
	}
	return errors.Join(errs...)
}

// requestDone ends a request that ServeHTTP let in.
func (i *instance) requestDone() {
	if i.inflight.Add(-1) == 0 && i.isStopping() {
		i.drain()
	}
}

// drain reports that the instance is stopping with no request in flight.
func (i *instance) drain() { i.drainOnce.Do(func() { close(i.drained) }) }

// setReady points the proxy at c and marks the instance ready, unless it
// is stopping.
func (i *instance) setReady(c *child) bool {
	i.target.Store(&url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(c.port)})
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stopping {
		return false
	}
	i.ready.Store(true)
	return true
}

func (i *instance) isStopping() bool {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.stopping
}

// supervise watches the ready process c: it restarts it with backoff when
// it exits and ends it when Stop asks. It closes done when it returns.
func (i *instance) supervise(c *child) {
	defer close(i.done)
	opts := &i.p.opts
	backoff := opts.RestartBackoff
	for {
		select {
		case <-i.stopCtx.Done():
			i.stopErr = i.terminate(c)
			i.gone()
			return
		case <-c.exited:
		}
		i.ready.Store(false)
		if i.isStopping() {
			i.gone()
			return
		}
		if time.Since(c.started) >= opts.RestartResetAfter {
			backoff = opts.RestartBackoff
		}
		reason := describeExit(c.cmd.ProcessState)
		if l := c.stderr.last(1); len(l) > 0 {
			reason += ": " + l[0]
		}
		for {
			i.restarts++
			i.log.Warn("process ended; restarting", "pid", c.pid, "reason", reason, "restarts", i.restarts, "backoff", backoff)
			i.notify(runtime.State{Restarts: i.restarts, Reason: fmt.Sprintf("%s; restarting in %s", reason, backoff)})
			if !sleep(i.stopCtx, backoff) {
				i.gone()
				return
			}
			backoff = min(backoff*2, opts.MaxRestartBackoff)
			nc, err := i.launch(i.stopCtx)
			if err == nil {
				c = nc
				break
			}
			if i.stopCtx.Err() != nil {
				i.gone()
				return
			}
			reason = err.Error()
			if ee, ok := errors.AsType[*earlyExit](err); ok {
				reason = ee.short()
			}
		}
		if i.setReady(c) {
			i.log.Info("instance ready again", "port", c.port, "pid", c.pid, "restarts", i.restarts)
			i.notify(runtime.State{Ready: true, Restarts: i.restarts})
		}
	}
}

// terminate ends the ready process c: SIGTERM to its group, then SIGKILL
// after the grace period.
func (i *instance) terminate(c *child) error {
	terminateGroup(c.cmd.Process)
	t := time.NewTimer(i.p.opts.StopGrace)
	defer t.Stop()
	select {
	case <-c.exited:
		i.log.Info("instance stopped", "pid", c.pid, "exit", describeExit(c.cmd.ProcessState))
		return nil
	case <-t.C:
	}
	killGroup(c.cmd.Process)
	<-c.exited
	i.log.Warn("process ignored SIGTERM; killed it", "pid", c.pid, "grace", i.p.opts.StopGrace)
	return fmt.Errorf("instance %s: the process did not exit within %s of SIGTERM and was killed; it should exit on SIGTERM",
		i.id, i.p.opts.StopGrace)
}

// gone reports that the instance has ended for good.
func (i *instance) gone() {
	i.ready.Store(false)
	i.notify(runtime.State{Gone: true, Restarts: i.restarts})
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// connectionFailure tells a connection the process refused (nothing was
// sent: any request may be retried) from one that broke later.
func connectionFailure(err error) string {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return runtime.FailureConnect
	}
	return runtime.FailureReset
}
