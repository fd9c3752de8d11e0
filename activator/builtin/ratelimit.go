package builtin

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/api"
)

// maxBuckets bounds how many client keys a rate limit tracks; past it,
// buckets that have refilled (their clients are idle) are dropped first.
const maxBuckets = 100_000

// rateLimit admits requests from token buckets, one per key, and answers
// the rest 429 with the seconds until a token is back in Retry-After.
type rateLimit struct {
	stateless
	name  string
	rate  float64 // tokens per second
	burst float64
	key   func(*http.Request) string
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newRateLimit(name string, spec *api.RateLimitFilter, now func() time.Time) *rateLimit {
	burst := float64(spec.Burst)
	if burst == 0 {
		burst = math.Ceil(spec.RequestsPerSecond)
	}
	f := &rateLimit{name: name, rate: spec.RequestsPerSecond, burst: burst, now: now, buckets: map[string]*bucket{}}
	switch header, isHeader := strings.CutPrefix(spec.Key, "header:"); {
	case spec.Key == "client-ip":
		f.key = clientIP
	case isHeader:
		header = http.CanonicalHeaderKey(header)
		f.key = func(r *http.Request) string { return r.Header.Get(header) }
	default:
		f.key = func(*http.Request) string { return "" }
	}
	return f
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (f *rateLimit) Name() string                         { return f.name }
func (f *rateLimit) Start(*filter.Exchange) filter.Stream { return f }

func (f *rateLimit) Request(x *filter.Exchange) *filter.Response {
	wait, ok := f.take(f.key(x.Request))
	if ok {
		return nil
	}
	retry := max(1, int(math.Ceil(wait.Seconds())))
	return local(http.StatusTooManyRequests,
		"rate limit of "+strconv.FormatFloat(f.rate, 'g', -1, 64)+" requests/s exceeded; retry after "+strconv.Itoa(retry)+"s",
		http.Header{"Retry-After": {strconv.Itoa(retry)}})
}

// take removes a token from key's bucket; when there is none it returns
// how long until there is.
func (f *rateLimit) take(key string) (time.Duration, bool) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.buckets[key]
	if b == nil {
		if len(f.buckets) >= maxBuckets {
			f.evictLocked(now)
		}
		b = &bucket{tokens: f.burst, at: now}
		f.buckets[key] = b
	}
	b.tokens = min(f.burst, b.tokens+now.Sub(b.at).Seconds()*f.rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / f.rate * float64(time.Second)), false
}

// evictLocked drops the buckets that have refilled; if none has, it
// drops one at random (map order), so that the map stays bounded.
func (f *rateLimit) evictLocked(now time.Time) {
	for k, b := range f.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*f.rate >= f.burst {
			delete(f.buckets, k)
		}
	}
	if len(f.buckets) >= maxBuckets {
		for k := range f.buckets {
			delete(f.buckets, k)
			break
		}
	}
}
