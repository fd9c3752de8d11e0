package builtin

import (
	"net/http"

	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/api"
)

// headers edits request and response headers.
type headers struct {
	name          string
	request, resp edits
}

type edits struct {
	remove   []string
	set, add [][2]string
}

func compile(e api.HeaderEdits) edits {
	var out edits
	for _, k := range e.Remove {
		out.remove = append(out.remove, http.CanonicalHeaderKey(k))
	}
	for k, v := range e.Set {
		out.set = append(out.set, [2]string{http.CanonicalHeaderKey(k), v})
	}
	for k, v := range e.Add {
		out.add = append(out.add, [2]string{http.CanonicalHeaderKey(k), v})
	}
	return out
}

func (e *edits) apply(h http.Header) {
	for _, k := range e.remove {
		delete(h, k)
	}
	for _, kv := range e.set {
		h[kv[0]] = []string{kv[1]}
	}
	for _, kv := range e.add {
		h[kv[0]] = append(h[kv[0]], kv[1])
	}
}

func newHeaders(name string, spec *api.HeadersFilter) *headers {
	return &headers{name: name, request: compile(spec.Request), resp: compile(spec.Response)}
}

func (f *headers) Name() string                         { return f.name }
func (f *headers) Start(*filter.Exchange) filter.Stream { return f }
func (f *headers) Done(*filter.Exchange)                {}
func (f *headers) Request(x *filter.Exchange) *filter.Response {
	f.request.apply(x.Request.Header)
	return nil
}

func (f *headers) Response(x *filter.Exchange) *filter.Response {
	f.resp.apply(x.Header)
	return nil
}
