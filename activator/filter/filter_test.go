package filter

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// recorder is a filter that logs every call of its streams into a shared
// trace and can be told to answer in one phase.
type recorder struct {
	name     string
	trace    *[]string
	answerIn string // "request", "response" or "" (never answer)
	body     bool   // a BodyStream that upper-cases bodies, buffering them whole
}

func (f *recorder) Name() string { return f.name }

func (f *recorder) Start(*Exchange) Stream {
	if f.body {
		return &bodyRecorder{recorder: f}
	}
	return f
}

func (f *recorder) Request(x *Exchange) *Response {
	*f.trace = append(*f.trace, f.name+".request")
	x.Request.Header.Add("X-Seen", f.name)
	if f.answerIn == "request" {
		return &Response{Status: http.StatusForbidden, Header: http.Header{"X-Denied-By": {f.name}}, Body: []byte("denied by " + f.name)}
	}
	return nil
}

func (f *recorder) Response(x *Exchange) *Response {
	*f.trace = append(*f.trace, f.name+".response")
	x.Header.Add("X-Seen", f.name)
	if f.answerIn == "response" {
		return &Response{Status: http.StatusTeapot, Body: []byte("replaced by " + f.name)}
	}
	return nil
}

func (f *recorder) Done(*Exchange) { *f.trace = append(*f.trace, f.name+".done") }

type bodyRecorder struct {
	*recorder
	req, resp []byte
}

func (b *bodyRecorder) RequestBody(x *Exchange, chunk []byte, end bool) ([]byte, *Response) {
	b.req = append(b.req, chunk...)
	if !end {
		return nil, nil
	}
	if bytes.Contains(b.req, []byte("forbidden")) {
		return nil, &Response{Status: http.StatusBadRequest, Body: []byte("body refused")}
	}
	return bytes.ToUpper(b.req), nil
}

func (b *bodyRecorder) ResponseBody(x *Exchange, chunk []byte, end bool) []byte {
	b.resp = append(b.resp, chunk...)
	if !end {
		return nil
	}
	x.Header.Set("X-Body-Length", strings.Repeat("x", len(b.resp))) // headers may still change
	return bytes.ToUpper(b.resp)
}

// serve runs the chain on a real listener around fn and returns the
// response to one request with body.
func serve(t *testing.T, c *Chain, fn http.HandlerFunc, body string) (*http.Response, string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Serve(w, &Exchange{Request: r}, fn)
	}))
	t.Cleanup(srv.Close)
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	resp, err := http.Post(srv.URL+"/", "text/plain", rd)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Request-Seen", strings.Join(r.Header.Values("X-Seen"), ","))
	_, _ = w.Write(b)
}

func TestChainOrdersByPhaseThenPriority(t *testing.T) {
	var trace []string
	mk := func(name string) *recorder { return &recorder{name: name, trace: &trace} }
	c := NewChain([]Entry{
		{Filter: mk("plain"), Phase: PhaseUnspecified},
		{Filter: mk("stats"), Phase: PhaseStats},
		{Filter: mk("authz-low"), Phase: PhaseAuthZ, Priority: 1},
		{Filter: mk("authz-high"), Phase: PhaseAuthZ, Priority: 10},
		{Filter: mk("authn"), Phase: PhaseAuthN},
	})
	if got, want := strings.Join(c.Names(), " "), "authn authz-high authz-low stats plain"; got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
	resp, body := serve(t, c, echo, "hello")
	if body != "hello" {
		t.Errorf("body %q", body)
	}
	if got := resp.Header.Get("X-Request-Seen"); got != "authn,authz-high,authz-low,stats,plain" {
		t.Errorf("request phase order %q", got)
	}
	if got := strings.Join(resp.Header.Values("X-Seen"), ","); got != "plain,stats,authz-low,authz-high,authn" {
		t.Errorf("response phase order %q", got)
	}
	if n := len(trace); n != 15 || trace[14] != "authn.done" || trace[10] != "plain.done" {
		t.Errorf("trace %v", trace)
	}
}

func TestLocalResponseInRequestPhase(t *testing.T) {
	var trace []string
	called := false
	c := NewChain([]Entry{
		{Filter: &recorder{name: "a", trace: &trace}},
		{Filter: &recorder{name: "deny", trace: &trace, answerIn: "request"}},
		{Filter: &recorder{name: "c", trace: &trace}},
	})
	resp, body := serve(t, c, func(w http.ResponseWriter, r *http.Request) { called = true }, "")
	if called {
		t.Error("the function was called after a filter answered")
	}
	if resp.StatusCode != http.StatusForbidden || body != "denied by deny" || resp.Header.Get("X-Denied-By") != "deny" {
		t.Errorf("got %d %q %v", resp.StatusCode, body, resp.Header)
	}
	// Only the filter before the one that answered sees the local response.
	if got := strings.Join(resp.Header.Values("X-Seen"), ","); got != "a" {
		t.Errorf("response phase ran on %q, want only a", got)
	}
	want := "a.request deny.request a.response c.done deny.done a.done"
	if got := strings.Join(trace, " "); got != want {
		t.Errorf("trace %q, want %q", got, want)
	}
}

func TestResponsePhaseReplacesTheResponse(t *testing.T) {
	var trace []string
	c := NewChain([]Entry{
		{Filter: &recorder{name: "outer", trace: &trace}},
		{Filter: &recorder{name: "replacer", trace: &trace, answerIn: "response"}},
	})
	resp, body := serve(t, c, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-From-Function", "1")
		_, _ = io.WriteString(w, "from the function")
	}, "")
	if resp.StatusCode != http.StatusTeapot || body != "replaced by replacer" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-From-Function") != "" {
		t.Error("the function's headers leaked into the replacing response")
	}
	if got := resp.Header.Get("X-Seen"); got != "outer" {
		t.Errorf("outer filter did not see the replacing response: %q", got)
	}
}

func TestBodyStreamsRewriteBothBodies(t *testing.T) {
	var trace []string
	c := NewChain([]Entry{{Filter: &recorder{name: "upper", trace: &trace, body: true}}})
	resp, body := serve(t, c, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Length", "3") // the original length, wrong after the rewrite
		_, _ = w.Write([]byte("got " + string(b) + " and more"))
	}, strings.Repeat("ab", 40000))
	want := "GOT " + strings.Repeat("AB", 40000) + " AND MORE"
	if body != want {
		t.Errorf("body of %d bytes, want %d", len(body), len(want))
	}
	if got := len(resp.Header.Get("X-Body-Length")); got != len(want) {
		t.Errorf("header set while the body was held: %d, want %d", got, len(want))
	}
}

func TestBodyStreamAnswersWhileTheFunctionReads(t *testing.T) {
	var trace []string
	var readErr error
	c := NewChain([]Entry{{Filter: &recorder{name: "guard", trace: &trace, body: true}}})
	resp, body := serve(t, c, func(w http.ResponseWriter, r *http.Request) {
		_, readErr = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusInternalServerError)
	}, "this is forbidden")
	if resp.StatusCode != http.StatusBadRequest || body != "body refused" {
		t.Errorf("got %d %q, want the filter's 400", resp.StatusCode, body)
	}
	if readErr == nil {
		t.Error("the function read the whole body of a refused request without an error")
	}
}

func TestStreamingPassesThroughHeaderOnlyChains(t *testing.T) {
	var trace []string
	c := NewChain([]Entry{{Filter: &recorder{name: "h", trace: &trace}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Serve(w, &Exchange{Request: r}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "first\n")
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
		}))
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, line); err != nil || string(line) != "first\n" {
		t.Fatalf("first chunk %q, %v: the chain buffered a streamed response", line, err)
	}
	if resp.Header.Get("X-Seen") != "h" {
		t.Errorf("response phase did not run before the first chunk")
	}
}

func TestEmptyChainCallsNextDirectly(t *testing.T) {
	var c *Chain
	resp, body := serve(t, c, echo, "plain")
	if resp.StatusCode != 200 || body != "plain" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
}

func TestParsePhase(t *testing.T) {
	for in, want := range map[string]Phase{"AUTHN": PhaseAuthN, "authz": PhaseAuthZ, "STATS": PhaseStats, "": PhaseUnspecified, "UNSPECIFIED_PHASE": PhaseUnspecified} {
		got, err := ParsePhase(in)
		if err != nil || got != want {
			t.Errorf("ParsePhase(%q) = %v, %v", in, got, err)
		}
		if in != "" && in != "authz" && got.String() != in {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if _, err := ParsePhase("LOG"); err == nil || !strings.Contains(err.Error(), "AUTHN") {
		t.Errorf("bad phase error %v", err)
	}
}

// trailerRecorder is a TrailerStream that rewrites trailers both ways.
type trailerRecorder struct {
	bodyRecorder
}

func (tr *trailerRecorder) RequestBody(_ *Exchange, chunk []byte, _ bool) ([]byte, *Response) {
	return chunk, nil
}
func (tr *trailerRecorder) ResponseBody(_ *Exchange, chunk []byte, _ bool) []byte { return chunk }
func (tr *trailerRecorder) RequestTrailers(_ *Exchange, t http.Header) {
	t.Set("X-Req", t.Get("X-Req")+"+filtered")
}
func (tr *trailerRecorder) ResponseTrailers(_ *Exchange, t http.Header) {
	t.Set("X-Checksum", strings.ToUpper(t.Get("X-Checksum")))
	t.Set("X-Added", "by-filter")
}

type trailerFilter struct{ trace *[]string }

func (f trailerFilter) Name() string { return "trailers" }
func (f trailerFilter) Start(*Exchange) Stream {
	return &trailerRecorder{bodyRecorder{recorder: &recorder{name: "trailers", trace: f.trace}}}
}

func TestTrailerStreamsSeeAndChangeTrailers(t *testing.T) {
	var trace []string
	c := NewChain([]Entry{{Filter: trailerFilter{&trace}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Serve(w, &Exchange{Request: r}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Trailer", "X-Checksum")
			w.Header().Set("X-Request-Trailer", r.Trailer.Get("X-Req"))
			_, _ = w.Write(b)
			w.Header().Set("X-Checksum", "abc")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		}))
	}))
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL, io.MultiReader(strings.NewReader("body"))) // unknown length: chunked
	req.Trailer = http.Header{"X-Req": {"1"}}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "body" || resp.Header.Get("X-Request-Trailer") != "1+filtered" {
		t.Fatalf("body %q, the function saw request trailer %q", body, resp.Header.Get("X-Request-Trailer"))
	}
	if resp.Trailer.Get("X-Checksum") != "ABC" || resp.Trailer.Get("X-Added") != "by-filter" || resp.Trailer.Get("X-Late") != "late" {
		t.Fatalf("response trailers %v", resp.Trailer)
	}
}

// passthrough is a BodyStream that passes bodies on unchanged.
type passthrough struct{ recorder }

func (p *passthrough) RequestBody(_ *Exchange, c []byte, _ bool) ([]byte, *Response) { return c, nil }
func (p *passthrough) ResponseBody(_ *Exchange, c []byte, _ bool) []byte             { return c }

type passthroughFilter struct{ trace *[]string }

func (f passthroughFilter) Name() string { return "passthrough" }
func (f passthroughFilter) Start(*Exchange) Stream {
	return &passthrough{recorder{name: "passthrough", trace: f.trace}}
}

func TestContentLengthWhenTheWholeBodyIsKnown(t *testing.T) {
	var trace []string
	for _, c := range []struct {
		name   string
		filter Filter
		writes []string
		want   int64 // -1: no length, the body is chunked
	}{
		// Larger than net/http's 4 KiB response buffer, which would
		// otherwise compute a length for the whole body itself.
		{"one write through a passthrough", passthroughFilter{&trace}, []string{strings.Repeat("a", 10000)}, 10000},
		{"two writes through a passthrough", passthroughFilter{&trace}, []string{strings.Repeat("a", 5000), strings.Repeat("b", 5000)}, -1},
		{"a body held whole and rewritten", &recorder{name: "upper", trace: &trace, body: true}, []string{strings.Repeat("x", 5000), strings.Repeat("y", 5000)}, 10000},
	} {
		t.Run(c.name, func(t *testing.T) {
			chain := NewChain([]Entry{{Filter: c.filter}})
			resp, body := serve(t, chain, func(w http.ResponseWriter, r *http.Request) {
				total := 0
				for _, s := range c.writes {
					total += len(s)
				}
				w.Header().Set("Content-Length", strconv.Itoa(total))
				for _, s := range c.writes {
					_, _ = io.WriteString(w, s)
				}
			}, "")
			if want := strings.Join(c.writes, ""); body != want && strings.ToUpper(want) != body {
				t.Fatalf("body %q", body)
			}
			if resp.ContentLength != c.want {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, c.want)
			}
		})
	}
}
