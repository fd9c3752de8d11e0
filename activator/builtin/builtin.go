package builtin

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/api"
)

// Env is what built-in filters need from the gateway.
type Env struct {
	// Mirror returns the handler that serves copies sent to a Revision
	// of the Function, or nil when that Revision does not run.
	Mirror func(revision string) http.Handler
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Percent draws a number in [0, 100) for sampling; default uniform.
	Percent func() float64
}

// New makes the filter spec describes. mirrorRevision is the Revision a
// mirror sends copies to, resolved from spec.Mirror by the caller.
func New(spec api.GatewayFilter, mirrorRevision string, env Env) (filter.Entry, error) {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Percent == nil {
		env.Percent = func() float64 { return rand.Float64() * 100 }
	}
	phase, err := filter.ParsePhase(spec.Phase)
	if err != nil {
		return filter.Entry{}, err
	}
	e := filter.Entry{Phase: phase, Priority: spec.Priority}
	name := func(kind string) string {
		if spec.Name != "" {
			return spec.Name
		}
		return kind
	}
	switch {
	case spec.Headers != nil:
		e.Filter = newHeaders(name("headers"), spec.Headers)
	case spec.RateLimit != nil:
		e.Filter = newRateLimit(name("rate-limit"), spec.RateLimit, env.Now)
	case spec.Fault != nil:
		e.Filter, err = newFault(name("fault"), spec.Fault, env.Percent)
	case spec.Mirror != nil:
		e.Filter = newMirror(name("mirror"), spec.Mirror, mirrorRevision, env)
	case spec.CORS != nil:
		e.Filter = newCORS(name("cors"), spec.CORS)
	default:
		return filter.Entry{}, fmt.Errorf("filter %q sets none of headers, rateLimit, fault, mirror and cors", spec.Name)
	}
	if err != nil {
		return filter.Entry{}, fmt.Errorf("filter %s: %w", name("?"), err)
	}
	return e, nil
}

// stateless is the part of filter.Stream that built-in filters without
// per-request state share: their Filter is their Stream.
type stateless struct{}

func (stateless) Response(*filter.Exchange) *filter.Response { return nil }
func (stateless) Done(*filter.Exchange)                      {}

// local is a plain-text local response.
func local(status int, msg string, header http.Header) *filter.Response {
	if header == nil {
		header = http.Header{}
	}
	header.Set("Content-Type", "text/plain; charset=utf-8")
	return &filter.Response{Status: status, Header: header, Body: []byte(msg + "\n")}
}
