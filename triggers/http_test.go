package triggers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
)

func post(t *testing.T, h http.Handler, path string, header http.Header, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestIngress publishes CloudEvents sent to /events/<subject> in binary
// and structured mode, and refuses what is not one.
func TestIngress(t *testing.T) {
	got := make(chan *http.Request, 4)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		got <- r
	}))
	defer sink.Close()
	e := newEnv(t, "http://127.0.0.1:1")
	e.create(sinkTrigger("ingress", sink.URL))
	gateway := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	h := e.m.Handler(gateway)

	binary := http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"b1"}, "Ce-Type": {"order.created"}, "Ce-Source": {"/shop"}, "Content-Type": {"application/json"}}
	if rec := post(t, h, "/events/orders.eu", binary, `{"n":1}`); rec.Code != http.StatusAccepted {
		t.Fatalf("binary: %d %s", rec.Code, rec.Body)
	}
	if r := <-got; r.Header.Get("Ce-Id") != "b1" || r.Header.Get("Ce-Type") != "order.created" {
		t.Fatalf("binary event delivered as %v", r.Header)
	}
	structured := `{"specversion":"1.0","id":"s1","type":"order.paid","source":"/shop","datacontenttype":"application/json","data":{"n":2}}`
	if rec := post(t, h, "/events/orders.eu", http.Header{"Content-Type": {"application/cloudevents+json"}}, structured); rec.Code != http.StatusAccepted {
		t.Fatalf("structured: %d %s", rec.Code, rec.Body)
	}
	if r := <-got; r.Header.Get("Ce-Id") != "s1" || r.Header.Get("Ce-Type") != "order.paid" {
		t.Fatalf("structured event delivered as %v", r.Header)
	}
	for _, tc := range []struct {
		name, path string
		header     http.Header
		code       int
	}{
		{"not an event", "/events/orders.eu", http.Header{"Content-Type": {"application/json"}}, http.StatusBadRequest},
		{"no type", "/events/orders.eu", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"x"}, "Ce-Source": {"/s"}}, http.StatusBadRequest},
		{"wildcard", "/events/orders.*", binary, http.StatusBadRequest},
		{"no stream", "/events/nowhere.x", binary, http.StatusNotFound},
	} {
		if rec := post(t, h, tc.path, tc.header, "{}"); rec.Code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.code)
		}
	}
	get := httptest.NewRecorder()
	h.ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/events/orders.eu", nil))
	if get.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", get.Code)
	}
	// A function's own /events/ path on its host is the function's.
	fn := httptest.NewRequest(http.MethodPost, "/events/x", nil)
	fn.Host = "hello.default.wisp.test:8080"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, fn)
	if rec.Code != 299 {
		t.Errorf("request to a function host: %d, want the gateway's 299", rec.Code)
	}
}

// TestAsyncCallWithCallback stores a call, answers 202, retries the
// function's 503s and posts the result to the callback.
func TestAsyncCallWithCallback(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s?%s %s call=%s", r.Method, r.URL.Path, r.URL.RawQuery, b, r.Header.Get(HeaderCallID))
	}))
	defer gateway.Close()
	type cb struct {
		header http.Header
		body   string
	}
	callbacks := make(chan cb, 2)
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		callbacks <- cb{r.Header, string(b)}
	}))
	defer callback.Close()
	e := newEnv(t, gateway.URL)
	fns := store.NewTyped[api.Function](e.st, store.Functions)
	f := &api.Function{}
	f.Name, f.Namespace = "hello", "default"
	if _, err := fns.Create(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	h := e.m.Handler(http.NotFoundHandler())

	rec := post(t, h, "/async/default/nope", nil, "x")
	if rec.Code != http.StatusNotFound {
		t.Fatalf("unknown function: %d %s", rec.Code, rec.Body)
	}
	rec = post(t, h, "/async/default/hello/greet?name=wisp", http.Header{HeaderCallbackURL: {callback.URL}}, "payload")
	if rec.Code != http.StatusAccepted {
		t.Fatalf("async: %d %s", rec.Code, rec.Body)
	}
	id := rec.Header().Get(HeaderCallID)
	var answer struct{ CallID string }
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || answer.CallID != id || id == "" {
		t.Fatalf("answer %s, header %q", rec.Body, id)
	}
	select {
	case c := <-callbacks:
		if want := "POST /fn/default/hello/greet?name=wisp payload call=" + id; c.body != want {
			t.Errorf("callback body %q, want %q", c.body, want)
		}
		for k, want := range map[string]string{HeaderCallID: id, HeaderStatus: "200", HeaderFunction: "hello.default", HeaderRetry: "2", HeaderRetryMax: "3", "Content-Type": "text/plain"} {
			if v := c.header.Get(k); v != want {
				t.Errorf("callback %s = %q, want %q", k, v, want)
			}
		}
		if c.header.Get(HeaderDuration) == "" {
			t.Error("no duration header")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no callback")
	}
	if rec := post(t, h, "/async/default/hello", http.Header{HeaderCallbackURL: {"ftp://x"}}, ""); rec.Code != http.StatusBadRequest {
		t.Errorf("bad callback URL: %d", rec.Code)
	}
	var buf bytes.Buffer
	if err := writeMetric(e, &buf, "wisp_async_calls_total"); err != nil || !strings.Contains(buf.String(), `outcome="retried"} 2`) || !strings.Contains(buf.String(), `outcome="succeeded"} 1`) {
		t.Errorf("async metrics: %s %v", buf.String(), err)
	}
}

// writeMetric writes the samples of one metric family.
func writeMetric(e *env, w io.Writer, name string) error {
	mfs, err := e.reg.Gather()
	if err != nil {
		return err
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				fmt.Fprintf(w, "%s{%s} %g\n", name, strings.Join(labels, ","), m.GetCounter().GetValue())
			}
		}
	}
	return nil
}
