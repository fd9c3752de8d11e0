package triggers

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/wisp-faas/wisp/api"
)

// maxAckWait bounds a consumer's AckWait: a call that takes longer keeps
// its lease with InProgress, and a node that died holding a message lets
// it go after at most this long.
const maxAckWait = 30 * time.Second

// policy is a DeliverySpec with its durations parsed and defaults applied.
type policy struct {
	retries     int
	exponential bool
	delay, max  time.Duration
	timeout     time.Duration
	deadLetter  string
}

// newPolicy resolves d, which SetDefaults has filled in and Validate
// accepted; it fails only on a spec that skipped them.
func newPolicy(d api.DeliverySpec) (policy, error) {
	if d.Retry == nil {
		return policy{}, fmt.Errorf("delivery.retry is not set")
	}
	p := policy{retries: int(*d.Retry), exponential: d.BackoffPolicy == api.BackoffExponential, deadLetter: d.DeadLetterSubject}
	for _, f := range []struct {
		name, value string
		to          *time.Duration
	}{{"backoffDelay", d.BackoffDelay, &p.delay}, {"backoffMax", d.BackoffMax, &p.max}, {"timeout", d.Timeout, &p.timeout}} {
		v, err := api.ParseEventDuration(f.value)
		if err != nil {
			return policy{}, fmt.Errorf("delivery.%s: %w", f.name, err)
		}
		*f.to = v
	}
	return p, nil
}

// attempts is the most deliveries of one message: the first and the retries.
func (p policy) attempts() int { return p.retries + 1 }

// ackWait is how long JetStream waits for an acknowledgement before it
// redelivers: a little more than one attempt, at most maxAckWait.
func (p policy) ackWait() time.Duration { return min(p.timeout+time.Second, maxAckWait) }

// backoff is the wait before retry n (1-based): n × delay (linear) or
// delay × 2^(n-1) (exponential), capped by max.
func (p policy) backoff(n int) time.Duration {
	n = max(n, 1)
	var d time.Duration
	if p.exponential {
		d = p.delay
		for i := 1; i < n && d < p.max; i++ {
			d *= 2
		}
	} else {
		d = time.Duration(n) * p.delay
	}
	return min(d, p.max)
}

// retryable reports whether an answer with this status may succeed when
// tried again: 5xx, 429 Too Many Requests and 408 Request Timeout.
func retryable(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
}

// retryAfter reads a Retry-After header given in seconds; 0 if absent.
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}
