package filter

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Phase is where in the chain a filter runs. Filters of an earlier phase
// run before those of a later one; the names are Istio's WasmPlugin
// phases, so that a filter written for Istio lands in the same place.
type Phase int8

// The phases, in the order they run.
const (
	PhaseAuthN Phase = iota
	PhaseAuthZ
	PhaseStats
	// PhaseUnspecified runs last, just before the request goes to the
	// function. It is the zero value of api's phase string "".
	PhaseUnspecified
)

// ParsePhase maps Istio's spelling ("AUTHN", "AUTHZ", "STATS",
// "UNSPECIFIED_PHASE" or "") to a Phase.
func ParsePhase(s string) (Phase, error) {
	switch strings.ToUpper(s) {
	case "AUTHN":
		return PhaseAuthN, nil
	case "AUTHZ":
		return PhaseAuthZ, nil
	case "STATS":
		return PhaseStats, nil
	case "", "UNSPECIFIED_PHASE":
		return PhaseUnspecified, nil
	}
	return 0, fmt.Errorf("phase %q: use AUTHN, AUTHZ, STATS or leave it empty", s)
}

func (p Phase) String() string {
	switch p {
	case PhaseAuthN:
		return "AUTHN"
	case PhaseAuthZ:
		return "AUTHZ"
	case PhaseStats:
		return "STATS"
	}
	return "UNSPECIFIED_PHASE"
}

// Exchange is one request on its way through the chain, and later its
// response.
type Exchange struct {
	// Request is the request as it will reach the function. In the
	// request phase filters may change its method, URL and headers, and
	// replace its Body.
	Request *http.Request
	// Namespace, Function and Revision say where the request goes.
	Namespace, Function, Revision string
	// TraceID is the W3C trace id of the request.
	TraceID string

	// Status and Header are the response's, set when the response phase
	// begins; filters may change them there (and, while a BodyStream
	// holds the body back, until the body is passed on).
	Status int
	Header http.Header
}

// Response is a local response: the answer a filter gives in place of
// the function's (a deny, a 429, an aborted fault, a CORS preflight).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Filter is one configured filter. It must be safe for concurrent use:
// every request starts its own Stream.
type Filter interface {
	// Name identifies the filter in logs and errors.
	Name() string
	// Start begins the filter's work on one exchange and returns the
	// Stream that follows it, or nil when the filter has nothing to do
	// for this exchange.
	Start(x *Exchange) Stream
}

// Stream is a filter's work on one exchange.
type Stream interface {
	// Request runs in the request phase, in chain order, before the
	// request goes on. A non-nil Response answers the client with it:
	// later filters and the function never see the request, and the
	// filters before this one see the local response in their response
	// phase.
	Request(x *Exchange) *Response
	// Response runs in the response phase, in reverse chain order, when
	// the response's status and headers are known (x.Status, x.Header)
	// and before they are sent. A non-nil Response replaces the
	// function's response; its body is then discarded.
	Response(x *Exchange) *Response
	// Done runs once the exchange is over, whatever happened to it, in
	// reverse chain order: the place for logs and for freeing
	// per-request state.
	Done(x *Exchange)
}

// BodyStream is a Stream that also sees the bodies, chunk by chunk, as
// they flow: the request body in chain order as the function reads it,
// the response body in reverse order as the function writes it. end marks
// the last chunk, which may be empty. Each call returns the bytes to pass
// on now; a stream that wants the whole body (to inspect or rewrite it)
// returns nothing until end and then all of it. While any BodyStream holds
// the response body back, the response headers are held too, so that it
// may still change x.Header; and since it may change the body's length,
// the response carries a Content-Length only when the chain has the whole
// body before sending the headers (it came out of the streams in one
// piece, or was held to the end), and otherwise none. A chunk is only
// valid during the call: a stream that keeps bytes must copy them.
type BodyStream interface {
	Stream
	// RequestBody may answer with a local Response instead; the function
	// then reads an error and the client gets the local response, if
	// nothing was sent to it yet.
	RequestBody(x *Exchange, chunk []byte, end bool) ([]byte, *Response)
	ResponseBody(x *Exchange, chunk []byte, end bool) []byte
}

// TrailerStream is a BodyStream that also sees trailers, and may change
// them in place: the request's once its body has been read to the end
// (after the body's last chunk), in chain order; the response's once the
// function is done, in reverse order. It is called only when there are
// trailers.
type TrailerStream interface {
	BodyStream
	RequestTrailers(x *Exchange, trailers http.Header)
	ResponseTrailers(x *Exchange, trailers http.Header)
}

// Entry is a filter with its place in the chain.
type Entry struct {
	Filter   Filter
	Phase    Phase
	Priority int32
}

// Chain is an ordered list of filters, immutable once built.
type Chain struct {
	filters []Filter
}

// NewChain orders entries by phase, then by descending priority; entries
// that tie keep their given order.
func NewChain(entries []Entry) *Chain {
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b Entry) int {
		if c := cmp.Compare(a.Phase, b.Phase); c != 0 {
			return c
		}
		return cmp.Compare(b.Priority, a.Priority)
	})
	c := &Chain{filters: make([]Filter, len(sorted))}
	for i, e := range sorted {
		c.filters[i] = e.Filter
	}
	return c
}

// Len returns the number of filters in the chain; a nil Chain has none.
func (c *Chain) Len() int {
	if c == nil {
		return 0
	}
	return len(c.filters)
}

// Names returns the filters' names in the order they run.
func (c *Chain) Names() []string {
	if c == nil {
		return nil
	}
	names := make([]string, len(c.filters))
	for i, f := range c.filters {
		names[i] = f.Name()
	}
	return names
}

// Serve runs x through the chain around next, which serves the request
// that the request phase leaves in x.Request. An empty chain calls next
// directly.
func (c *Chain) Serve(w http.ResponseWriter, x *Exchange, next http.Handler) {
	if c.Len() == 0 {
		next.ServeHTTP(w, x.Request)
		return
	}
	streams := make([]Stream, 0, len(c.filters))
	for _, f := range c.filters {
		if s := f.Start(x); s != nil {
			streams = append(streams, s)
		}
	}
	defer func() {
		for i := len(streams) - 1; i >= 0; i-- {
			streams[i].Done(x)
		}
	}()
	for i, s := range streams {
		if resp := s.Request(x); resp != nil {
			writeLocal(w, x, streams[:i], resp)
			return
		}
	}
	var bodies []BodyStream
	for _, s := range streams {
		if b, ok := s.(BodyStream); ok {
			bodies = append(bodies, b)
		}
	}
	if len(bodies) == 0 {
		rw := &headerWriter{w: w, x: x, streams: streams}
		next.ServeHTTP(rw, x.Request)
		rw.finish()
		return
	}
	rw := &bodyWriter{headerWriter: headerWriter{w: w, x: x, streams: streams}, bodies: bodies}
	if r := x.Request; r.Body != nil && r.Body != http.NoBody {
		r.Body = &requestBody{body: r.Body, x: x, streams: bodies, answer: &rw.local}
		r.ContentLength = -1
		r.Header.Del("Content-Length")
	}
	next.ServeHTTP(rw, x.Request)
	rw.finish()
}

// writeLocal sends a local response, letting the filters that ran before
// the one that answered see it in their response phase (reverse order).
func writeLocal(w http.ResponseWriter, x *Exchange, before []Stream, resp *Response) {
	x.Status, x.Header = resp.Status, resp.Header
	if x.Header == nil {
		x.Header = http.Header{}
	}
	for i := len(before) - 1; i >= 0; i-- {
		if r := before[i].Response(x); r != nil {
			x.Status, x.Header, resp = r.Status, r.Header, r
			if x.Header == nil {
				x.Header = http.Header{}
			}
		}
	}
	h := w.Header()
	for k, v := range x.Header {
		h[k] = v
	}
	if x.Status == 0 {
		x.Status = http.StatusOK
	}
	w.WriteHeader(x.Status)
	_, _ = w.Write(resp.Body)
}

// Unavailable stands in for a filter that could not be loaded (its
// module did not pull or did not start). Failing open, requests pass as
// if it were absent; failing closed, they are answered 503 with reason.
func Unavailable(name string, failOpen bool, reason string) Filter {
	return &unavailable{name: name, failOpen: failOpen, reason: reason}
}

type unavailable struct {
	name     string
	failOpen bool
	reason   string
}

func (u *unavailable) Name() string { return u.name }

func (u *unavailable) Start(*Exchange) Stream {
	if u.failOpen {
		return nil
	}
	return u
}

func (u *unavailable) Request(*Exchange) *Response {
	return &Response{
		Status: http.StatusServiceUnavailable,
		Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "X-Wisp-Failure": {"filter-unavailable"}},
		Body:   []byte("filter " + u.name + " is unavailable (failStrategy FAIL_CLOSE): " + u.reason + "\n"),
	}
}

func (u *unavailable) Response(*Exchange) *Response { return nil }
func (u *unavailable) Done(*Exchange)               {}
