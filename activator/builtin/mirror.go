package builtin

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/api"
)

const (
	// mirrorBodyLimit is the largest request body a mirror copies; a
	// request with a larger body, or one of unknown length, is not
	// mirrored (the original is never held back to copy it).
	mirrorBodyLimit = 1 << 20
	// mirrorsInFlight bounds the copies one mirror filter has in flight;
	// past it, copies are skipped rather than let a slow target pile up
	// work.
	mirrorsInFlight = 64
	// mirrorTimeout bounds one copy.
	mirrorTimeout = 30 * time.Second
)

// mirror sends copies of a share of requests to another Revision and
// ignores their responses.
type mirror struct {
	stateless
	name     string
	revision string
	percent  float64
	env      Env
	inFlight atomic.Int64
}

func newMirror(name string, spec *api.MirrorFilter, revision string, env Env) *mirror {
	p := 100.0
	if spec.Percentage != nil {
		p = *spec.Percentage
	}
	return &mirror{name: name, revision: revision, percent: p, env: env}
}

func (f *mirror) Name() string                         { return f.name }
func (f *mirror) Start(*filter.Exchange) filter.Stream { return f }

func (f *mirror) Request(x *filter.Exchange) *filter.Response {
	if f.percent < 100 && f.env.Percent() >= f.percent {
		return nil
	}
	target := f.env.Mirror(f.revision)
	if target == nil {
		return nil
	}
	r := x.Request
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength < 0 || r.ContentLength > mirrorBodyLimit {
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength))
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(b))
		if err != nil {
			return nil // the function reads the part that arrived, and fails as it would have
		}
		body = b
	}
	if f.inFlight.Add(1) > mirrorsInFlight {
		f.inFlight.Add(-1)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), mirrorTimeout)
	cp := r.Clone(ctx)
	cp.Host = shadowHost(r.Host)
	cp.Body = io.NopCloser(bytes.NewReader(body))
	if body == nil {
		cp.Body = http.NoBody
	}
	go func() {
		defer f.inFlight.Add(-1)
		defer cancel()
		target.ServeHTTP(discard{h: http.Header{}}, cp)
	}()
	return nil
}

// shadowHost appends "-shadow" to a host name, as Envoy's mirrors do, so
// that a function can tell copies from originals.
func shadowHost(host string) string {
	if h, port, err := net.SplitHostPort(host); err == nil {
		return net.JoinHostPort(h+"-shadow", port)
	}
	return host + "-shadow"
}

// discard is a ResponseWriter that drops the response.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
