package builtin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/api"
)

// serveChain serves the filters given by specs around fn on a real
// listener and returns its URL.
func serveChain(t *testing.T, env Env, fn http.HandlerFunc, specs ...api.GatewayFilter) string {
	t.Helper()
	var entries []filter.Entry
	for _, s := range specs {
		if err := s.Validate([]api.TrafficTarget{{Tag: "canary"}}); err != nil {
			t.Fatalf("test spec invalid: %v", err)
		}
		e, err := New(s, "fn-00002", env)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	chain := filter.NewChain(entries)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chain.Serve(w, &filter.Exchange{Request: r, Namespace: "ns", Function: "fn", Revision: "fn-00001"}, fn)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func ok(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

func TestHeadersEditBothWays(t *testing.T) {
	url := serveChain(t, Env{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "function/1.0")
		w.Header().Set("X-Tier", "gold")
		io.WriteString(w, r.Header.Get("X-Env")+"|"+strings.Join(r.Header.Values("X-Tag"), ",")+"|"+r.Header.Get("Cookie"))
	}, api.GatewayFilter{Headers: &api.HeadersFilter{
		Request:  api.HeaderEdits{Set: map[string]string{"x-env": "prod"}, Add: map[string]string{"X-Tag": "wisp"}, Remove: []string{"cookie"}},
		Response: api.HeaderEdits{Set: map[string]string{"X-Tier": "silver"}, Add: map[string]string{"X-Served-By": "wisp"}, Remove: []string{"server"}},
	}})
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Env", "dev")
	req.Header.Set("X-Tag", "client")
	req.Header.Set("Cookie", "secret=1")
	resp, body := get(t, req)
	if body != "prod|client,wisp|" {
		t.Errorf("the function saw %q", body)
	}
	if resp.Header.Get("Server") != "" || resp.Header.Get("X-Tier") != "silver" || resp.Header.Get("X-Served-By") != "wisp" {
		t.Errorf("response headers %v", resp.Header)
	}
}

func TestRateLimitAnswers429AtTheConfiguredRate(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	url := serveChain(t, Env{Now: clock}, ok,
		api.GatewayFilter{RateLimit: &api.RateLimitFilter{RequestsPerSecond: 10, Burst: 5, Key: "header:X-Api-Key"}})
	call := func(key string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Api-Key", key)
		resp, _ := get(t, req)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for i := range 5 {
		if code, _ := call("a"); code != 200 {
			t.Fatalf("request %d within the burst: %d", i, code)
		}
	}
	if code, retry := call("a"); code != 429 || retry != "1" {
		t.Fatalf("past the burst: %d Retry-After %q, want 429 and 1", code, retry)
	}
	if code, _ := call("b"); code != 200 {
		t.Fatalf("another key has its own bucket: %d", code)
	}
	// One second later ten tokens came back, but the bucket holds five.
	now.Add(int64(time.Second))
	admitted := 0
	for range 10 {
		if code, _ := call("a"); code == 200 {
			admitted++
		}
	}
	if admitted != 5 {
		t.Fatalf("after 1s at 10/s with burst 5: %d admitted, want 5", admitted)
	}
	// 100ms brings back exactly one token.
	now.Add(int64(100 * time.Millisecond))
	if code, _ := call("a"); code != 200 {
		t.Fatalf("one token after 100ms at 10/s: %d", code)
	}
	if code, _ := call("a"); code != 429 {
		t.Fatalf("second request after 100ms: %d, want 429", code)
	}
}

func TestRateLimitAtRealRate(t *testing.T) {
	url := serveChain(t, Env{}, ok, api.GatewayFilter{RateLimit: &api.RateLimitFilter{RequestsPerSecond: 50, Burst: 1}})
	deadline := time.Now().Add(time.Second)
	admitted := 0
	for time.Now().Before(deadline) {
		if resp, _ := get(t, mustRequest("GET", url)); resp.StatusCode == 200 {
			admitted++
		}
	}
	// 1 from the burst plus 50 over the second; loopback jitter allows a little.
	if admitted < 40 || admitted > 55 {
		t.Fatalf("%d requests admitted in 1s at 50/s", admitted)
	}
}

func mustRequest(method, url string) *http.Request {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		panic(err)
	}
	return req
}

func TestFaultAbortsAndDelaysTheConfiguredShare(t *testing.T) {
	var called atomic.Int64
	url := serveChain(t, Env{}, func(w http.ResponseWriter, r *http.Request) { called.Add(1) },
		api.GatewayFilter{Fault: &api.FaultFilter{Abort: &api.FaultAbort{Percentage: 30, HTTPStatus: 418}}})
	const n = 2000
	aborted := 0
	for range n {
		resp, _ := get(t, mustRequest("GET", url))
		if resp.StatusCode == 418 && resp.Header.Get("X-Wisp-Fault") == "abort" {
			aborted++
		}
	}
	// 30% of 2000 is 600; three standard deviations are ±62.
	if aborted < 538 || aborted > 662 {
		t.Fatalf("%d of %d aborted, want 30%%", aborted, n)
	}
	if int(called.Load()) != n-aborted {
		t.Fatalf("the function was called %d times, want %d (aborted requests never reach it)", called.Load(), n-aborted)
	}

	url = serveChain(t, Env{Percent: func() float64 { return 49.9 }}, ok,
		api.GatewayFilter{Fault: &api.FaultFilter{Delay: &api.FaultDelay{Percentage: 50, FixedDelay: "150ms"}}})
	begin := time.Now()
	if resp, _ := get(t, mustRequest("GET", url)); resp.StatusCode != 200 || time.Since(begin) < 150*time.Millisecond {
		t.Fatalf("a delayed request: %d after %v", resp.StatusCode, time.Since(begin))
	}
}

func TestMirrorSendsCopiesAndIgnoresTheirAnswers(t *testing.T) {
	var mu sync.Mutex
	var copies []string
	got := make(chan struct{}, 10)
	shadow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		copies = append(copies, r.Method+" "+r.Host+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		w.WriteHeader(500) // ignored
		got <- struct{}{}
	})
	env := Env{Mirror: func(rev string) http.Handler {
		if rev != "fn-00002" {
			t.Errorf("mirror to %q", rev)
		}
		return shadow
	}}
	url := serveChain(t, env, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "original got "+string(b))
	}, api.GatewayFilter{Mirror: &api.MirrorFilter{Tag: "canary"}})
	for range 3 {
		req, _ := http.NewRequest("POST", url+"/orders", strings.NewReader("order-1"))
		req.Host = "fn.ns.example.test"
		resp, body := get(t, req)
		if resp.StatusCode != 200 || body != "original got order-1" {
			t.Fatalf("original: %d %q", resp.StatusCode, body)
		}
	}
	for range 3 {
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("a copy never arrived")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range copies {
		if c != "POST fn.ns.example.test-shadow /orders order-1" {
			t.Errorf("copy %q", c)
		}
	}
}

func TestCORS(t *testing.T) {
	called := false
	url := serveChain(t, Env{}, func(w http.ResponseWriter, r *http.Request) { called = true; io.WriteString(w, "ok") },
		api.GatewayFilter{CORS: &api.CORSFilter{AllowOrigins: []string{"https://app.example"}, AllowMethods: []string{"GET", "PUT"},
			ExposeHeaders: []string{"X-Total"}, MaxAgeSeconds: 600, AllowCredentials: true}})
	pre := mustRequest("OPTIONS", url)
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "PUT")
	pre.Header.Set("Access-Control-Request-Headers", "X-Custom")
	resp, _ := get(t, pre)
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example" || h.Get("Access-Control-Allow-Methods") != "GET, PUT" ||
		h.Get("Access-Control-Allow-Headers") != "X-Custom" || h.Get("Access-Control-Max-Age") != "600" || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}
	if called {
		t.Fatal("a preflight reached the function")
	}
	req := mustRequest("GET", url)
	req.Header.Set("Origin", "https://app.example")
	resp, body := get(t, req)
	if body != "ok" || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || resp.Header.Get("Access-Control-Expose-Headers") != "X-Total" {
		t.Fatalf("simple request: %q %v", body, resp.Header)
	}
	req = mustRequest("GET", url)
	req.Header.Set("Origin", "https://evil.example")
	if resp, _ := get(t, req); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("a foreign origin was allowed")
	}
	pre.Header.Set("Origin", "https://evil.example")
	if resp, _ := get(t, pre); resp.StatusCode != 403 {
		t.Fatalf("foreign preflight: %d", resp.StatusCode)
	}
}
