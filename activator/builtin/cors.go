package builtin

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/api"
)

// cors answers preflight requests from allowed origins itself and adds
// the CORS headers to the responses they get. Requests from other
// origins pass untouched: the browser enforces the policy.
type cors struct {
	stateless
	name        string
	anyOrigin   bool
	origins     []string
	methods     string
	headers     string
	expose      string
	maxAge      string
	credentials bool
}

func newCORS(name string, spec *api.CORSFilter) *cors {
	f := &cors{
		name:        name,
		anyOrigin:   slices.Contains(spec.AllowOrigins, "*"),
		origins:     spec.AllowOrigins,
		methods:     strings.Join(spec.AllowMethods, ", "),
		headers:     strings.Join(spec.AllowHeaders, ", "),
		expose:      strings.Join(spec.ExposeHeaders, ", "),
		credentials: spec.AllowCredentials,
	}
	if f.methods == "" {
		f.methods = "GET, HEAD, POST"
	}
	if spec.MaxAgeSeconds > 0 {
		f.maxAge = strconv.Itoa(int(spec.MaxAgeSeconds))
	}
	return f
}

func (f *cors) Name() string { return f.name }

func (f *cors) Start(x *filter.Exchange) filter.Stream {
	if x.Request.Header.Get("Origin") == "" {
		return nil
	}
	return f
}

func (f *cors) allowed(origin string) bool {
	return f.anyOrigin || slices.Contains(f.origins, origin)
}

// allowOrigin is the Access-Control-Allow-Origin value for origin.
func (f *cors) allowOrigin(origin string) string {
	if f.anyOrigin && !f.credentials {
		return "*"
	}
	return origin
}

func (f *cors) Request(x *filter.Exchange) *filter.Response {
	r := x.Request
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return nil
	}
	origin := r.Header.Get("Origin")
	h := http.Header{"Vary": {"Origin"}}
	if !f.allowed(origin) {
		return &filter.Response{Status: http.StatusForbidden, Header: h, Body: []byte("origin " + origin + " is not allowed\n")}
	}
	h.Set("Access-Control-Allow-Origin", f.allowOrigin(origin))
	h.Set("Access-Control-Allow-Methods", f.methods)
	if f.headers != "" {
		h.Set("Access-Control-Allow-Headers", f.headers)
	} else if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	}
	if f.maxAge != "" {
		h.Set("Access-Control-Max-Age", f.maxAge)
	}
	if f.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	return &filter.Response{Status: http.StatusNoContent, Header: h}
}

func (f *cors) Response(x *filter.Exchange) *filter.Response {
	origin := x.Request.Header.Get("Origin")
	x.Header.Add("Vary", "Origin")
	if !f.allowed(origin) {
		return nil
	}
	x.Header.Set("Access-Control-Allow-Origin", f.allowOrigin(origin))
	if f.expose != "" {
		x.Header.Set("Access-Control-Expose-Headers", f.expose)
	}
	if f.credentials {
		x.Header.Set("Access-Control-Allow-Credentials", "true")
	}
	return nil
}
