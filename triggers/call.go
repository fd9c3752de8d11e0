package triggers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// maxExcerpt bounds the part of a failed answer kept for the dead letter,
// the status and the log.
const maxExcerpt = 1024

// maxReplyBody bounds an answer read in full: a reply event or the result
// of an asynchronous call.
const maxReplyBody = 4 << 20

// result is the outcome of one call to a sink.
type result struct {
	// code is the HTTP status; 0 when no answer came (err says why).
	code     int
	header   http.Header
	body     []byte
	err      error
	duration time.Duration
}

// ok reports a 2xx answer.
func (r *result) ok() bool { return r.err == nil && r.code/100 == 2 }

// retry reports whether trying again may succeed: no answer (a timeout or
// a connection error), or a retryable status.
func (r *result) retry() bool { return r.err != nil || retryable(r.code) }

// String says what went wrong, for logs, status and dead letters.
func (r *result) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("status %d: %s", r.code, excerpt(r.body))
}

// excerpt returns the start of b as valid UTF-8, at most maxExcerpt bytes.
func excerpt(b []byte) string {
	if len(b) > maxExcerpt {
		b = b[:maxExcerpt]
	}
	return strings.ToValidUTF8(strings.TrimSpace(string(b)), string(utf8.RuneError))
}

// call sends req and reads the answer: all of a 2xx body up to
// maxReplyBody when full is set, else an excerpt; the rest is discarded so
// that the connection is reused.
func call(client *http.Client, req *http.Request, full bool) result {
	begin := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within the delivery timeout: %w", err)
		}
		return result{err: err, duration: time.Since(begin)}
	}
	defer resp.Body.Close()
	limit := int64(maxExcerpt)
	if full && resp.StatusCode/100 == 2 {
		limit = maxReplyBody
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReplyBody))
	res := result{code: resp.StatusCode, header: resp.Header, body: body, duration: time.Since(begin)}
	if err != nil && resp.StatusCode/100 == 2 {
		// The answer was cut short: the call may not have completed.
		res.code, res.err = 0, fmt.Errorf("reading the answer: %w", err)
	}
	return res
}

// newTransport returns the HTTP transport for calls to functions: many
// idle connections to the one gateway, so that concurrent deliveries
// reuse them.
func newTransport(tlsConfig *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsConfig
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 1024
	t.IdleConnTimeout = 90 * time.Second
	return t
}
