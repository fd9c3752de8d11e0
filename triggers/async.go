package triggers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/runtime"
)

// The stream and consumer of asynchronous calls.
const (
	// AsyncStream stores the calls until they are done (work-queue retention).
	AsyncStream = "WISP_ASYNC"
	// AsyncSubjectPrefix starts the subject of every call:
	// wisp.async.<namespace>.<name>.
	AsyncSubjectPrefix = "wisp.async."
	asyncConsumer      = "wisp_async"
)

// Headers of asynchronous calls. A stored call carries the request's own
// headers and these; the callback gets the X- ones, as OpenFaaS sends them.
const (
	HeaderCallbackURL = "X-Callback-Url"
	HeaderCallID      = "X-Call-Id"
	HeaderStatus      = "X-Function-Status"
	HeaderDuration    = "X-Duration-Seconds"
	HeaderFunction    = "X-Function-Name"
	HeaderRetry       = "X-Retry"
	HeaderRetryMax    = "X-Retry-Max"

	hdrMethod    = "Wisp-Method"
	hdrPath      = "Wisp-Path"
	hdrNamespace = "Wisp-Namespace"
	hdrFunction  = "Wisp-Function"
)

// callbackTries is how many times a callback is posted before it is given up.
const callbackTries = 3

// serveAsync stores POST /async/<namespace>/<name>[/path] in JetStream
// and answers 202 with the call's id (header X-Call-Id and body), or 404
// for a function that does not exist.
func (m *Manager) serveAsync(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		runtime.WriteError(w, http.StatusMethodNotAllowed, "POST to /async/<namespace>/<name>/ to call a function asynchronously")
		return
	}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/async/"), "/", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		runtime.WriteError(w, http.StatusNotFound, "call /async/<namespace>/<name>/[path]")
		return
	}
	ns, name, path := parts[0], parts[1], "/"
	if len(parts) == 3 {
		path += parts[2]
	}
	if _, err := m.functions.Get(r.Context(), ns, name); err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
			runtime.WriteError(w, http.StatusNotFound, fmt.Sprintf("function %s/%s not found", ns, name))
		default:
			runtime.WriteError(w, http.StatusServiceUnavailable, "reading the function: "+err.Error())
		}
		return
	}
	if cb := r.Header.Get(HeaderCallbackURL); cb != "" {
		if u, err := url.Parse(cb); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			runtime.WriteError(w, http.StatusBadRequest, fmt.Sprintf("%s %q: want an absolute http:// or https:// URL", HeaderCallbackURL, cb))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEventBytes))
	if err != nil {
		runtime.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", MaxEventBytes))
		return
	}
	id := uuid.NewString()
	msg := nats.NewMsg(AsyncSubjectPrefix + ns + "." + name)
	for k, vs := range r.Header {
		msg.Header[k] = vs
	}
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	msg.Header.Set(hdrMethod, r.Method)
	msg.Header.Set(hdrPath, path)
	msg.Header.Set(hdrNamespace, ns)
	msg.Header.Set(hdrFunction, name)
	msg.Header.Set(HeaderCallID, id)
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Data = body
	if _, err := m.opts.JetStream.PublishMsg(r.Context(), msg); err != nil {
		m.log.Warn("storing an asynchronous call", "function", ns+"/"+name, "error", err)
		runtime.WriteError(w, http.StatusServiceUnavailable, "storing the call in JetStream: "+err.Error())
		return
	}
	w.Header().Set(HeaderCallID, id)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, "{\"callId\":%q}\n", id)
}

// runAsync runs the worker of asynchronous calls until ctx ends; the
// channel closes when it has stopped.
func (m *Manager) runAsync(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cons, err := m.setupAsync(ctx)
			if err == nil {
				err = consume(ctx, cons, m.opts.AsyncInFlight, m.opts.ShutdownGrace, m.handleAsync)
			}
			if err == nil || ctx.Err() != nil {
				return
			}
			m.log.Warn("asynchronous calls not running; retrying", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(retryBroken):
			}
		}
	}()
	return done
}

// setupAsync creates the stream and the consumer of asynchronous calls.
func (m *Manager) setupAsync(ctx context.Context) (jetstream.Consumer, error) {
	js := m.opts.JetStream
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        AsyncStream,
		Description: "asynchronous function calls, until they are done",
		Subjects:    []string{AsyncSubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.WorkQueuePolicy,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("creating stream %s: %w", AsyncStream, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, AsyncStream, jetstream.ConsumerConfig{
		Durable:       asyncConsumer,
		Description:   "wisp asynchronous calls",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       m.async.ackWait(),
		MaxDeliver:    m.async.attempts(),
		MaxAckPending: m.opts.AsyncInFlight,
	})
	if err != nil {
		return nil, fmt.Errorf("creating consumer %s: %w", asyncConsumer, err)
	}
	return cons, nil
}

// handleAsync makes one attempt of a stored call, then retries it or
// posts its result to the callback.
func (m *Manager) handleAsync(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Term()
		return
	}
	h := http.Header(msg.Headers())
	ns, name := h.Get(hdrNamespace), h.Get(hdrFunction)
	attempt := int(meta.NumDelivered)
	stop := keepLease(msg, m.async.ackWait()/2, m.async.timeout)
	res := m.invoke(ctx, msg, ns, name)
	stop()
	outcome := "succeeded"
	switch {
	case ctx.Err() != nil:
		_ = msg.Nak()
		return
	case !res.ok() && res.retry() && attempt < m.async.attempts():
		m.metrics.async.WithLabelValues(ns, name, "retried").Inc()
		_ = msg.NakWithDelay(max(m.async.backoff(attempt), min(retryAfter(res.header), m.async.max)))
		return
	case !res.ok():
		outcome = "failed"
	}
	m.metrics.async.WithLabelValues(ns, name, outcome).Inc()
	m.callback(ctx, h, &res, attempt)
	_ = msg.Ack()
}

// invoke calls the function through the gateway as the stored request asked.
func (m *Manager) invoke(ctx context.Context, msg jetstream.Msg, ns, name string) result {
	ctx, cancel := context.WithTimeout(ctx, m.async.timeout)
	defer cancel()
	h := msg.Headers()
	target := m.opts.GatewayURL + "/fn/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + h.Get(hdrPath)
	req, err := http.NewRequestWithContext(ctx, h.Get(hdrMethod), target, bytes.NewReader(msg.Data()))
	if err != nil {
		return result{err: fmt.Errorf("building the call: %w", err)}
	}
	for k, vs := range h {
		if !strings.HasPrefix(k, "Wisp-") && !strings.HasPrefix(k, "Nats-") {
			req.Header[k] = vs
		}
	}
	return call(m.client, req, true)
}

// callback posts the result of a call to its X-Callback-Url, if it has
// one: the function's answer as the body, and the call id, status,
// duration, function and retries as headers.
func (m *Manager) callback(ctx context.Context, h http.Header, res *result, attempt int) {
	cb := h.Get(HeaderCallbackURL)
	fn := h.Get(hdrFunction) + "." + h.Get(hdrNamespace)
	log := m.log.With("call_id", h.Get(HeaderCallID), "function", fn)
	if cb == "" {
		if !res.ok() {
			log.Warn("asynchronous call failed", "attempts", attempt, "error", res.String())
		}
		return
	}
	status, body, ctype := res.code, res.body, res.header.Get("Content-Type")
	if res.err != nil {
		status, body, ctype = http.StatusBadGateway, []byte(res.err.Error()), "text/plain; charset=utf-8"
		if errors.Is(res.err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
	}
	var err error
	for i := range callbackTries {
		req, rerr := http.NewRequestWithContext(ctx, http.MethodPost, cb, bytes.NewReader(body))
		if rerr != nil {
			err = rerr
			break
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set(HeaderCallID, h.Get(HeaderCallID))
		req.Header.Set(HeaderStatus, strconv.Itoa(status))
		req.Header.Set(HeaderDuration, strconv.FormatFloat(res.duration.Seconds(), 'f', 6, 64))
		req.Header.Set(HeaderFunction, fn)
		req.Header.Set(HeaderRetry, strconv.Itoa(attempt-1))
		req.Header.Set(HeaderRetryMax, strconv.Itoa(m.async.retries))
		cres := call(m.client, req, false)
		if cres.ok() {
			return
		}
		err = errors.New(cres.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(i+1) * 200 * time.Millisecond):
		}
	}
	log.Warn("posting the result of an asynchronous call to its callback failed; the result is dropped", "callback", cb, "error", err)
}
