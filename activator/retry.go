package activator

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/runtime"
)

// Retry bounds: a request body up to retryBodyLimit is kept to be sent
// again; a larger one is streamed once and never retried. Between tries
// the gateway waits a random time below retryBackoffBase·2ⁿ, at most
// retryBackoffMax (Envoy's defaults).
const (
	retryBodyLimit   = 1 << 20
	retryBackoffBase = 25 * time.Millisecond
	retryBackoffMax  = 250 * time.Millisecond
	// retryBudgetMin is how many retries may always be in flight, however
	// few requests there are (Envoy's min_retry_concurrency).
	retryBudgetMin = 3
)

// attemptHeader numbers the tries of a request with a retry policy,
// from 1.
const attemptHeader = "X-Wisp-Attempt"

// The failures a RetryPolicy may retry, as a bit set.
const (
	retryOn5xx = 1 << iota
	retryOnGatewayError
	retryOnConnectFailure
	retryOnReset
	retryOnOverloaded
	retryOnRetriable4xx
)

var retryOnNames = map[string]int{
	"5xx": retryOn5xx, "gateway-error": retryOnGatewayError, "connect-failure": retryOnConnectFailure,
	"reset": retryOnReset, "overloaded": retryOnOverloaded, "retriable-4xx": retryOnRetriable4xx,
}

// RetryPolicy is a Function's (or a route rule's) api.RetryPolicy, ready
// for the data path.
type RetryPolicy struct {
	Attempts      int
	PerTryTimeout time.Duration
	on            int
	NonIdempotent bool
	BudgetPercent int64
}

// NewRetryPolicy compiles p; nil when p retries nothing. p is valid.
func NewRetryPolicy(p *api.RetryPolicy) *RetryPolicy {
	if p == nil || p.Attempts <= 0 {
		return nil
	}
	rp := &RetryPolicy{Attempts: int(p.Attempts), NonIdempotent: p.RetryNonIdempotent, BudgetPercent: 20}
	if p.PerTryTimeout != "" {
		rp.PerTryTimeout, _ = time.ParseDuration(p.PerTryTimeout)
	}
	if p.BudgetPercent != nil {
		rp.BudgetPercent = int64(*p.BudgetPercent)
	}
	on := p.RetryOn
	if len(on) == 0 {
		on = []string{"connect-failure", "reset", "overloaded", "gateway-error"}
	}
	for _, o := range on {
		rp.on |= retryOnNames[o]
	}
	return rp
}

// retriable reports whether an answer with code and header is a failure
// the policy retries.
func (p *RetryPolicy) retriable(code int, h http.Header) bool {
	switch h.Get(runtime.FailureHeader) {
	case runtime.FailureConnect:
		if p.on&retryOnConnectFailure != 0 {
			return true
		}
	case runtime.FailureReset:
		if p.on&retryOnReset != 0 {
			return true
		}
	case runtime.FailureOverloaded:
		if p.on&retryOnOverloaded != 0 {
			return true
		}
	}
	switch {
	case code >= 500 && p.on&retryOn5xx != 0:
		return true
	case (code == 502 || code == 503 || code == 504) && p.on&retryOnGatewayError != 0:
		return true
	case code == http.StatusConflict && p.on&retryOnRetriable4xx != 0:
		return true
	}
	return false
}

// retryBudget counts a Function's requests and retries in flight, so
// that retries stay a bounded share of its load.
type retryBudget struct {
	active  atomic.Int64
	retries atomic.Int64
}

// acquire takes a slot for one retry, if the budget has one.
func (b *retryBudget) acquire(percent int64) bool {
	limit := max(retryBudgetMin, b.active.Load()*percent/100)
	if b.retries.Add(1) > limit {
		b.retries.Add(-1)
		return false
	}
	return true
}

func (b *retryBudget) release() { b.retries.Add(-1) }

// forward serves r on pool, retrying failed tries as p says. A try is
// retried only while nothing of its answer reached the client.
func forward(w http.ResponseWriter, r *http.Request, pool *Pool, p *RetryPolicy, budget *retryBudget) {
	if p == nil || (!p.NonIdempotent && !idempotent(r.Method)) || r.Header.Get("Upgrade") != "" {
		pool.ServeHTTP(w, r)
		return
	}
	body, retriable := replayable(r)
	if !retriable {
		pool.ServeHTTP(w, r)
		return
	}
	budget.active.Add(1)
	defer budget.active.Add(-1)
	held := false // a retry slot of the budget, for the try in flight
	defer func() {
		if held {
			budget.release()
		}
	}()
	for try := 0; ; try++ {
		ctx, cancel := r.Context(), context.CancelFunc(func() {})
		if p.PerTryTimeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, p.PerTryTimeout)
		}
		req := r.WithContext(ctx)
		if body != nil {
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		// Tell the function which try this is, as Envoy's
		// x-envoy-attempt-count does.
		req.Header.Set(attemptHeader, strconv.Itoa(try+1))
		last, next := try == p.Attempts, false
		tw := &tryWriter{w: w, h: http.Header{}}
		if !last {
			// Drop a failed answer only if the budget has room to retry.
			tw.retry = func(code int, h http.Header) bool {
				next = p.retriable(code, h) && budget.acquire(p.BudgetPercent)
				return next
			}
		}
		pool.ServeHTTP(tw, req)
		perTryExpired := errors.Is(ctx.Err(), context.DeadlineExceeded) && r.Context().Err() == nil
		cancel()
		if held {
			budget.release()
			held = false
		}
		switch {
		case tw.committed:
			return
		case !tw.discarded && !perTryExpired:
			tw.WriteHeader(http.StatusOK) // the instance answered nothing
			return
		case !tw.discarded:
			// The try ran out of time before it answered.
			if last || !budget.acquire(p.BudgetPercent) {
				runtime.WriteFailure(w, http.StatusGatewayTimeout, runtime.FailureTimeout, "no try answered within the retry policy's perTryTimeout")
				return
			}
			next = true
		}
		held = next
		if r.Context().Err() != nil || !sleep(r.Context(), backoff(try)) {
			return // the client left, or the request's deadline passed: the gateway answers
		}
	}
}

func idempotent(method string) bool {
	return method != http.MethodPost && method != http.MethodPatch && method != http.MethodConnect
}

// replayable reads a body small enough to send again, leaving r able to
// send it once more. It reports false, leaving r's body intact, when the
// body is too large to keep.
func replayable(r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	if r.ContentLength > retryBodyLimit {
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, retryBodyLimit+1))
	if err != nil || len(b) > retryBodyLimit {
		// Send what was read and the rest as one stream, once.
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
		return nil, false
	}
	r.Body.Close()
	return b, true
}

func backoff(try int) time.Duration {
	ceiling := min(retryBackoffBase<<min(try, 10), retryBackoffMax)
	return time.Duration(rand.Int64N(int64(ceiling)) + 1)
}

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

// tryWriter stands between one try and the client: when retry says the
// try's answer is a failure to retry, the answer is dropped; otherwise it
// is committed to the client.
type tryWriter struct {
	w     http.ResponseWriter
	h     http.Header
	retry func(code int, h http.Header) bool // nil: commit whatever comes

	committed, discarded bool
}

func (t *tryWriter) Header() http.Header { return t.h }

func (t *tryWriter) WriteHeader(code int) {
	if t.committed || t.discarded {
		return
	}
	if code >= 100 && code < 200 {
		t.w.WriteHeader(code)
		return
	}
	if t.retry != nil && t.retry(code, t.h) {
		t.discarded = true
		return
	}
	t.committed = true
	dst := t.w.Header()
	for k, v := range t.h {
		dst[k] = v
	}
	t.w.WriteHeader(code)
}

func (t *tryWriter) Write(b []byte) (int, error) {
	if !t.committed && !t.discarded {
		t.WriteHeader(http.StatusOK)
	}
	if t.discarded {
		return len(b), nil
	}
	return t.w.Write(b)
}

func (t *tryWriter) Flush() {
	if t.committed {
		_ = http.NewResponseController(t.w).Flush()
	}
}

func (t *tryWriter) Unwrap() http.ResponseWriter { return t.w }
