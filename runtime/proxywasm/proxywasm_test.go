package proxywasm

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wisp-faas/wisp/activator/filter"
)

// sharedCache is one compilation cache for the whole run, so that each
// test filter is compiled once.
var sharedCache = sync.OnceValue(func() string {
	dir, err := os.MkdirTemp("", "wisp-proxywasm-cache-")
	if err != nil {
		panic(err)
	}
	return dir
})

// newHost starts a Host for one test.
func newHost(t testing.TB, opts HostOptions) *Host {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = sharedCache()
	}
	h, err := NewHost(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

// load loads the test filter named spec.Name (unless spec.Wasm is set).
func load(t testing.TB, h *Host, spec PluginSpec) *Plugin {
	t.Helper()
	if spec.Wasm == nil {
		spec.Wasm = filterWasm(t, spec.Name)
	}
	p, err := h.Load(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// echo answers with what it received: each request header as a response
// header "Echo-<name>", the method and path as Echo-Method and Echo-Path,
// the body as the body; it also sets X-Internal, which filters may strip.
type echo struct{ calls atomic.Int32 }

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	for k, v := range r.Header {
		w.Header()["Echo-"+k] = v
	}
	w.Header().Set("Echo-Method", r.Method)
	w.Header().Set("Echo-Path", r.URL.RequestURI())
	w.Header().Set("X-Internal", "secret")
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(body)
}

// gateway serves next behind a chain of filters on 127.0.0.1.
func gateway(t testing.TB, next http.Handler, filters ...filter.Filter) *httptest.Server {
	t.Helper()
	var entries []filter.Entry
	for _, f := range filters {
		entries = append(entries, filter.Entry{Filter: f})
	}
	chain := filter.NewChain(entries)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := &filter.Exchange{Request: r, Namespace: "default", Function: "hello", Revision: "hello-00001", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
		chain.Serve(w, x, next)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request and returns the response with its body read.
func do(t testing.TB, method, url string, body io.Reader, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
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

func get(t testing.TB, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	return do(t, http.MethodGet, url, nil, header)
}

func TestHeadersBothWays(t *testing.T) {
	h := newHost(t, HostOptions{})
	srv := gateway(t, &echo{}, load(t, h, PluginSpec{Name: "headers", PoolSize: 1}))
	resp, _ := get(t, srv.URL+"/x", http.Header{"X-Replace": {"original"}, "X-Remove-Me": {"1"}, "X-Keep": {"kept"}})
	want := map[string]string{
		"Echo-X-Wisp-Filter": "headers",
		"Echo-X-Replace":     "replaced",
		"Echo-X-Remove-Me":   "",
		"Echo-X-Keep":        "kept",
		"X-Response-Filter":  "yes",
		"X-Internal":         "",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// TestHeaderMapRoundTrip has the guest read every request header as one
// serialized map and write the map back, through the SDK's own
// serialization, with odd values: empty, UTF-8, repeated.
func TestHeaderMapRoundTrip(t *testing.T) {
	h := newHost(t, HostOptions{})
	srv := gateway(t, &echo{}, load(t, h, PluginSpec{Name: "headers", PoolSize: 1}))
	in := http.Header{
		"X-Roundtrip": {"1"},
		"X-Empty":     {""},
		"X-Utf8":      {"héllo wörld ☃"},
		"X-Multi":     {"a", "b"},
	}
	resp, _ := get(t, srv.URL+"/rt?q=1", in)
	if got := resp.Header.Values("Echo-X-Multi"); strings.Join(got, "|") != "a|b" {
		t.Errorf("X-Multi came back as %q", got)
	}
	if got := resp.Header.Get("Echo-X-Utf8"); got != "héllo wörld ☃" {
		t.Errorf("X-Utf8 came back as %q", got)
	}
	if got, ok := resp.Header["Echo-X-Empty"]; !ok || got[0] != "" {
		t.Errorf("X-Empty came back as %q (present %v)", got, ok)
	}
	if got := resp.Header.Get("Echo-Path"); got != "/rt?q=1" {
		t.Errorf("path after the round trip = %q", got)
	}
	// 4 pseudo-headers, Accept-Encoding, User-Agent, the five values
	// above, and x-wisp-filter added before the round trip.
	if got := resp.Header.Get("Echo-X-Pairs"); got != "12" {
		t.Errorf("the guest read %s pairs, want 12", got)
	}
}

func TestLocalResponse(t *testing.T) {
	h := newHost(t, HostOptions{})
	up := &echo{}
	srv := gateway(t, up, load(t, h, PluginSpec{Name: "deny", PoolSize: 1}))
	resp, body := get(t, srv.URL+"/", http.Header{"X-Deny": {"no entry"}})
	if resp.StatusCode != http.StatusForbidden || body != "denied: no entry\n" || resp.Header.Get("X-Denied-By") != "deny" {
		t.Errorf("denied request: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if n := up.calls.Load(); n != 0 {
		t.Errorf("the function was called %d times for a denied request", n)
	}
	resp, _ = get(t, srv.URL+"/", nil)
	if resp.StatusCode != http.StatusOK || up.calls.Load() != 1 {
		t.Errorf("allowed request: %d, function calls %d", resp.StatusCode, up.calls.Load())
	}
}

func TestBodyRewriteWithBuffering(t *testing.T) {
	h := newHost(t, HostOptions{})
	srv := gateway(t, &echo{}, load(t, h, PluginSpec{Name: "body", PoolSize: 1}))
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("hello "))
		time.Sleep(50 * time.Millisecond) // let the first chunk arrive alone
		_, _ = pw.Write([]byte("world"))
		_ = pw.Close()
	}()
	resp, body := do(t, http.MethodPost, srv.URL+"/", pr, nil)
	if body != "[HELLO WORLD]" {
		t.Errorf("body = %q, want the upper-cased request body in brackets", body)
	}
	if resp.ContentLength != -1 && resp.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length %d for a body of %d bytes", resp.ContentLength, len(body))
	}
	sizes := strings.Split(resp.Header.Get("X-Request-Body-Sizes"), ",")
	if len(sizes) < 2 || sizes[0] != "6" || sizes[len(sizes)-1] != "11" {
		t.Errorf("the guest was shown body sizes %v, want 6 first, growing to 11", sizes)
	}
	// A body that fits one read.
	_, body = do(t, http.MethodPost, srv.URL+"/", strings.NewReader("abc"), nil)
	if body != "[ABC]" {
		t.Errorf("body = %q, want [ABC]", body)
	}
}

// TestResponseHeadersPause: a pause on the response headers does not
// stall a response written in several flushed parts: the body callbacks
// go on, and a header the guest adds at the end of the body still
// reaches the client, because the headers are held until then.
func TestResponseHeadersPause(t *testing.T) {
	h := newHost(t, HostOptions{})
	srv := gateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "part one, ")
		http.NewResponseController(w).Flush()
		time.Sleep(20 * time.Millisecond)
		_, _ = io.WriteString(w, "part two")
	}), load(t, h, PluginSpec{Name: "body", PoolSize: 1}))
	resp, body := get(t, srv.URL+"/", http.Header{"X-Hold": {"1"}})
	if resp.Header.Get("X-Held") != "released" || body != "[part one, part two]" {
		t.Errorf("held response: x-held %q, body %q", resp.Header.Get("X-Held"), body)
	}
}

func TestConfiguration(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	h := newHost(t, HostOptions{Logger: log})
	p := load(t, h, PluginSpec{Name: "config", PoolSize: 2, PluginConfig: []byte("x-cfg=value1"), VMConfig: []byte("vm-settings")})
	srv := gateway(t, &echo{}, p)
	resp, _ := get(t, srv.URL+"/", nil)
	if got := resp.Header.Get("Echo-X-Cfg"); got != "value1" {
		t.Errorf("header from the plugin configuration = %q", got)
	}
	if got := resp.Header.Get("X-Vm-Config"); got != "vm-settings" {
		t.Errorf("VM configuration seen by the guest = %q", got)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if n := strings.Count(out, `msg="configured: x-cfg=value1" plugin=config`); n != 2 {
		t.Errorf("want the guest's configure log once per VM (2), got %d in:\n%s", n, out)
	}

	_, err := h.Load(context.Background(), PluginSpec{Name: "config", Wasm: filterWasm(t, "config"), PluginConfig: []byte("nonsense")})
	if err == nil || !strings.Contains(err.Error(), "proxy_on_configure returned false") {
		t.Errorf("loading with a refused configuration: %v", err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestProperties(t *testing.T) {
	h := newHost(t, HostOptions{})
	p := load(t, h, PluginSpec{Name: "props", RootID: "props-root", PoolSize: 1})
	srv := gateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(&echo{}).ServeHTTP(w, r)
	}), p)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /p/a%20b?q=1 HTTP/1.1\r\nHost: props.test\r\nX-Custom: c\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	local := conn.LocalAddr().(*net.TCPAddr)
	want := map[string]string{
		"Echo-X-Prop-Path":           "/p/a%20b?q=1",
		"Echo-X-Prop-Url-Path":       "/p/a%20b",
		"Echo-X-Prop-Method":         "GET",
		"Echo-X-Prop-Host":           "props.test",
		"Echo-X-Prop-Query":          "q=1",
		"Echo-X-Prop-Scheme":         "http",
		"Echo-X-Prop-Protocol":       "HTTP/1.1",
		"Echo-X-Prop-Source-Address": local.String(),
		"Echo-X-Prop-Source-Port":    strconv.Itoa(local.Port),
		"Echo-X-Prop-Plugin-Name":    "props",
		"Echo-X-Prop-Plugin-Root-Id": "props-root",
		"Echo-X-Prop-Function":       "hello",
		"Echo-X-Prop-Namespace":      "default",
		"Echo-X-Prop-Revision":       "hello-00001",
		"Echo-X-Prop-Unknown":        "notfound",
		"Echo-X-Prop-Size":           "0",
		"Echo-X-Prop-Header-Names":   ":authority,:method,:path,:scheme,content-length,x-custom",
		"X-Prop-Response-Code":       "200",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestTick(t *testing.T) {
	h := newHost(t, HostOptions{})
	srv := gateway(t, &echo{}, load(t, h, PluginSpec{Name: "tick", PoolSize: 1}))
	ticks := func() int {
		resp, _ := get(t, srv.URL+"/", nil)
		n, err := strconv.Atoi(resp.Header.Get("Echo-X-Ticks"))
		if err != nil {
			t.Fatalf("x-ticks: %v", err)
		}
		return n
	}
	time.Sleep(150 * time.Millisecond)
	first := ticks()
	if first < 3 {
		t.Errorf("%d ticks after 150ms at a 10ms period, want at least 3", first)
	}
	time.Sleep(100 * time.Millisecond)
	if second := ticks(); second <= first {
		t.Errorf("ticks stopped: %d, then %d", first, second)
	}
}

func TestSharedDataAndQueue(t *testing.T) {
	h := newHost(t, HostOptions{})
	// Two VMs: the count is shared across them, not per VM.
	srv := gateway(t, &echo{}, load(t, h, PluginSpec{Name: "shared", PoolSize: 2}))
	for i := 1; i <= 4; i++ {
		resp, _ := get(t, srv.URL+"/r"+strconv.Itoa(i), nil)
		if got := resp.Header.Get("Echo-X-Hits"); got != strconv.Itoa(i) {
			t.Errorf("request %d: x-hits = %q", i, got)
		}
		wantCAS := "mismatch"
		if i == 1 {
			wantCAS = "accepted"
		}
		if got := resp.Header.Get("Echo-X-Stale-Cas"); got != wantCAS {
			t.Errorf("request %d: a stale CAS was %q, want %q", i, got, wantCAS)
		}
	}
	resp, body := get(t, srv.URL+"/drain", nil)
	if resp.StatusCode != http.StatusOK || body != "/r1\n/r2\n/r3\n/r4" {
		t.Errorf("drained queue: %d %q", resp.StatusCode, body)
	}
	// Another plugin with the same VM id shares the data; one with its
	// own does not.
	same := gateway(t, &echo{}, load(t, h, PluginSpec{Name: "shared", VMID: "shared", PoolSize: 1}))
	if resp, _ := get(t, same.URL+"/", nil); resp.Header.Get("Echo-X-Hits") != "5" {
		t.Errorf("same VM id: x-hits = %q, want 5", resp.Header.Get("Echo-X-Hits"))
	}
	other := gateway(t, &echo{}, load(t, h, PluginSpec{Name: "shared", VMID: "elsewhere", PoolSize: 1}))
	if resp, _ := get(t, other.URL+"/", nil); resp.Header.Get("Echo-X-Hits") != "1" {
		t.Errorf("other VM id: x-hits = %q, want 1", resp.Header.Get("Echo-X-Hits"))
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHost(t, HostOptions{Metrics: reg})
	srv := gateway(t, &echo{}, load(t, h, PluginSpec{Name: "metrics", PoolSize: 2}))
	for i := 1; i <= 3; i++ {
		resp, _ := get(t, srv.URL+"/", http.Header{"X-Payload": {strings.Repeat("x", 10*i)}})
		if got := resp.Header.Get("Echo-X-Count"); got != strconv.Itoa(i) {
			t.Errorf("request %d: the counter read %q", i, got)
		}
	}
	want := `
# HELP proxywasm_filter_test_inflight proxy-wasm metric filter_test.inflight.
# TYPE proxywasm_filter_test_inflight gauge
proxywasm_filter_test_inflight{plugin="metrics"} 0
# HELP proxywasm_filter_test_requests proxy-wasm metric filter_test.requests.
# TYPE proxywasm_filter_test_requests counter
proxywasm_filter_test_requests{plugin="metrics"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "proxywasm_filter_test_requests", "proxywasm_filter_test_inflight"); err != nil {
		t.Error(err)
	}
	n, err := testutil.GatherAndCount(reg, "proxywasm_filter_test_payload_bytes")
	if err != nil || n != 1 {
		t.Fatalf("histogram series: %d, %v", n, err)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "proxywasm_filter_test_payload_bytes" {
			hist := mf.GetMetric()[0].GetHistogram()
			if hist.GetSampleCount() != 3 || hist.GetSampleSum() != 60 {
				t.Errorf("histogram: %d samples summing to %v, want 3 and 60", hist.GetSampleCount(), hist.GetSampleSum())
			}
		}
	}
}

// authz answers 200 with X-User to the token "good", 401 to others.
var authz = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Token") != "good" || r.URL.Query().Get("token") != "good" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("X-User", "alice")
	_, _ = io.WriteString(w, "ok")
})

func TestHTTPCallAuthorizes(t *testing.T) {
	external := httptest.NewServer(authz)
	defer external.Close()
	functions := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "authz.default.example.test" {
			http.NotFound(w, r)
			return
		}
		authz.ServeHTTP(w, r)
	})
	h := newHost(t, HostOptions{Functions: functions, FunctionDomain: "example.test"})
	for _, upstream := range []string{"fn:default/authz", external.URL} {
		t.Run(upstream, func(t *testing.T) {
			up := &echo{}
			srv := gateway(t, up, load(t, h, PluginSpec{Name: "auth", PoolSize: 1, PluginConfig: []byte(upstream)}))
			resp, _ := get(t, srv.URL+"/private", http.Header{"X-Token": {"good"}})
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Echo-X-Auth-User") != "alice" || resp.Header.Get("Echo-X-Auth-Body") != "ok" {
				t.Errorf("authorized request: %d, user %q, body %q", resp.StatusCode, resp.Header.Get("Echo-X-Auth-User"), resp.Header.Get("Echo-X-Auth-Body"))
			}
			resp, body := get(t, srv.URL+"/private", http.Header{"X-Token": {"bad"}})
			if resp.StatusCode != http.StatusForbidden || body != "auth: forbidden\n" || resp.Header.Get("X-Authz-Status") != "401" {
				t.Errorf("refused request: %d %q %v", resp.StatusCode, body, resp.Header)
			}
			if n := up.calls.Load(); n != 1 {
				t.Errorf("the function was called %d times, want 1", n)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		dead := httptest.NewServer(authz)
		dead.Close()
		srv := gateway(t, &echo{}, load(t, h, PluginSpec{Name: "auth", PoolSize: 1, PluginConfig: []byte(dead.URL)}))
		resp, body := get(t, srv.URL+"/", http.Header{"X-Token": {"good"}})
		if resp.StatusCode != http.StatusServiceUnavailable || body != "auth: call failed\n" {
			t.Errorf("call to a closed server: %d %q", resp.StatusCode, body)
		}
	})
}

func TestTrapFailOpen(t *testing.T) {
	h := newHost(t, HostOptions{})
	p := load(t, h, PluginSpec{Name: "trap", PoolSize: 1, FailOpen: true})
	up := &echo{}
	srv := gateway(t, up, p)
	resp, _ := get(t, srv.URL+"/", http.Header{"X-Trap": {"1"}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Echo-X-Trap-Ok") != "" || up.calls.Load() != 1 {
		t.Errorf("trapping request under FAIL_OPEN: %d, x-trap-ok %q, function calls %d", resp.StatusCode, resp.Header.Get("Echo-X-Trap-Ok"), up.calls.Load())
	}
	waitFor(t, "the VM to be recreated", func() bool { return p.pick() != nil })
	resp, _ = get(t, srv.URL+"/", nil)
	if resp.Header.Get("Echo-X-Trap-Ok") != "1" {
		t.Errorf("the recreated VM did not filter the next request: %v", resp.Header)
	}
	if err := p.Health(); err != nil {
		t.Errorf("health after one crash: %v", err)
	}
}

func TestTrapFailClose(t *testing.T) {
	h := newHost(t, HostOptions{CrashLoopRestarts: 2, CrashLoopWindow: time.Minute})
	p := load(t, h, PluginSpec{Name: "trap", PoolSize: 1})
	up := &echo{}
	srv := gateway(t, up, p)
	resp, body := get(t, srv.URL+"/", http.Header{"X-Trap": {"1"}})
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "plugin trap") || up.calls.Load() != 0 {
		t.Errorf("trap in the request phase under FAIL_CLOSE: %d %q, function calls %d", resp.StatusCode, body, up.calls.Load())
	}
	waitFor(t, "the VM to be recreated", func() bool { return p.pick() != nil })
	resp, body = get(t, srv.URL+"/", http.Header{"X-Trap-Response": {"1"}})
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "plugin trap") || resp.Header.Get("X-Internal") != "" {
		t.Errorf("trap in the response phase under FAIL_CLOSE: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	// The third crash within the window exceeds 2 restarts: the plugin
	// is unhealthy and, its only VM down, answers 503 at once.
	waitFor(t, "the VM to be recreated", func() bool { return p.pick() != nil })
	get(t, srv.URL+"/", http.Header{"X-Trap": {"1"}})
	waitFor(t, "the plugin to report its crash loop", func() bool { return p.Health() != nil })
	if err := p.Health(); !strings.Contains(err.Error(), "crash-looping") {
		t.Errorf("health: %v", err)
	}
	calls := up.calls.Load()
	resp, _ = get(t, srv.URL+"/", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || up.calls.Load() != calls {
		t.Errorf("crash-looping FAIL_CLOSE plugin: %d, function called", resp.StatusCode)
	}
}

// TestRunawayGuestIsStopped: a guest spinning in a loop is stopped after
// CallTimeout, its VM recreated, and its request failed closed; the node
// (and Go's garbage collector) keeps running meanwhile.
func TestRunawayGuestIsStopped(t *testing.T) {
	h := newHost(t, HostOptions{CallTimeout: 200 * time.Millisecond})
	p := load(t, h, PluginSpec{Name: "trap", PoolSize: 1})
	srv := gateway(t, &echo{}, p)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-done:
				return
			default:
				runtime.GC() // would stop the world for good if the guest could not be preempted
				time.Sleep(time.Millisecond)
			}
		}
	}()
	start := time.Now()
	resp, body := get(t, srv.URL+"/", http.Header{"X-Loop": {"1"}})
	done <- struct{}{}
	<-done
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "plugin trap") {
		t.Errorf("runaway guest under FAIL_CLOSE: %d %q", resp.StatusCode, body)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the runaway guest ran for %s", took)
	}
	waitFor(t, "the VM to be recreated", func() bool { return p.pick() != nil })
	if resp, _ := get(t, srv.URL+"/", nil); resp.Header.Get("Echo-X-Trap-Ok") != "1" {
		t.Errorf("after the runaway: %v", resp.Header)
	}
}

func TestLoadFailure(t *testing.T) {
	h := newHost(t, HostOptions{})
	_, err := h.Load(context.Background(), PluginSpec{Name: "junk", Wasm: []byte("\x00asm\x01\x00\x00\x00")})
	if err == nil || !strings.Contains(err.Error(), "proxy_abi_version") {
		t.Fatalf("loading a module without the ABI: %v", err)
	}
	up := &echo{}
	open := gateway(t, up, filter.Unavailable("junk", true, err.Error()))
	if resp, _ := get(t, open.URL+"/", nil); resp.StatusCode != http.StatusOK || up.calls.Load() != 1 {
		t.Errorf("FAIL_OPEN with an unloadable plugin: %d", resp.StatusCode)
	}
	closed := gateway(t, up, filter.Unavailable("junk", false, err.Error()))
	if resp, body := get(t, closed.URL+"/", nil); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "junk") {
		t.Errorf("FAIL_CLOSE with an unloadable plugin: %d %q", resp.StatusCode, body)
	}
}

// TestUnimplementedCalls: calls wisp does not serve answer with the
// spec's statuses instead of failing the guest, and a guest with only the
// required exports (no _initialize, no proxy_on_vm_start...) runs.
func TestUnimplementedCalls(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h := newHost(t, HostOptions{Logger: log})
	srv := gateway(t, &echo{}, load(t, h, PluginSpec{Name: "unimplemented", Wasm: watWasm(t, "unimplemented"), PoolSize: 1}))
	resp, _ := get(t, srv.URL+"/", nil)
	want := map[string]string{
		"Echo-X-Grpc-Call":  "12", // UNIMPLEMENTED
		"Echo-X-Get-Status": "12",
		"Echo-X-Foreign":    "01", // NOT_FOUND: no foreign functions
		"Echo-X-Log-Level":  "02", // info
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestRefusedModules(t *testing.T) {
	h := newHost(t, HostOptions{})
	for name, want := range map[string]string{
		"abi010":    "ABI v0.1.0",
		"badimport": "proxy_no_such_call",
	} {
		_, err := h.Load(context.Background(), PluginSpec{Name: name, Wasm: watWasm(t, name), PoolSize: 1})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error mentioning %q", name, err, want)
		}
	}
}

// TestHotReload loads a second version while the first serves, swaps it
// in, and closes the first.
func TestHotReload(t *testing.T) {
	h := newHost(t, HostOptions{})
	v1 := load(t, h, PluginSpec{Name: "config", PoolSize: 1, PluginConfig: []byte("x-version=1")})
	var current atomic.Pointer[filter.Chain]
	current.Store(filter.NewChain([]filter.Entry{{Filter: v1}}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().Serve(w, &filter.Exchange{Request: r}, &echo{})
	}))
	defer srv.Close()
	if resp, _ := get(t, srv.URL+"/", nil); resp.Header.Get("Echo-X-Version") != "1" {
		t.Fatalf("v1 not serving: %v", resp.Header)
	}
	v2 := load(t, h, PluginSpec{Name: "config", PoolSize: 1, PluginConfig: []byte("x-version=2")})
	if v1.Digest() != v2.Digest() {
		t.Errorf("same module, different digests %s and %s", v1.Digest(), v2.Digest())
	}
	current.Store(filter.NewChain([]filter.Entry{{Filter: v2}}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := v1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, srv.URL+"/", nil); resp.Header.Get("Echo-X-Version") != "2" {
		t.Errorf("v2 not serving after the swap: %v", resp.Header)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// TestTrailersBothWays: the guest reads and edits the request trailers
// before the function sees them, and the response trailers before the
// client does.
func TestTrailersBothWays(t *testing.T) {
	h := newHost(t, HostOptions{})
	fn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("X-Request-Trailer", r.Trailer.Get("X-Req"))
		_, _ = io.WriteString(w, "ok")
		w.Header().Set("X-Checksum", "abc123")
	})
	srv := gateway(t, fn, load(t, h, PluginSpec{Name: "trailers", Wasm: filterWasm(t, "trailers"), PoolSize: 1}))
	req, _ := http.NewRequest("POST", srv.URL+"/", io.MultiReader(strings.NewReader("payload")))
	req.Trailer = http.Header{"X-Req": {"1"}}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("X-Request-Trailer"); got != "1+filtered" {
		t.Errorf("the function saw request trailer x-req %q, want 1+filtered", got)
	}
	if resp.Trailer.Get("X-Checksum") != "ABC123" || resp.Trailer.Get("X-Filter-Trailer") != "yes" {
		t.Errorf("response trailers %v", resp.Trailer)
	}
}
