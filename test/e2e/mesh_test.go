package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// applyFunction applies a Function running the echo process, with spec
// lines (YAML under spec:, indented two spaces) after its template.
func (n *node) applyFunction(b bins, name, env, spec string) {
	n.t.Helper()
	doc := fmt.Sprintf(`apiVersion: wisp.dev/v1alpha1
kind: Function
metadata:
  name: %s
spec:
  template:
    spec:
      process:
        command: %s
      env: [%s]
%s`, name, b.echo, env, spec)
	p := filepath.Join(n.t.TempDir(), name+".yaml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		n.t.Fatal(err)
	}
	n.mustWisp("apply", "-f", p)
}

// request sends one request through the gateway to a function's host.
func (n *node) request(method, host, path string, header http.Header) (*http.Response, string) {
	n.t.Helper()
	req, err := http.NewRequest(method, n.Gateway+path, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestRetriesCircuitBreakerAndOutliers: retries turn a flaky revision's
// 503s into successes; a circuit breaker refuses what exceeds its bounds
// at once and admits again after; outlier detection stops sending to an
// instance that keeps failing.
func TestRetriesCircuitBreakerAndOutliers(t *testing.T) {
	b := buildAll(t)
	n := startNode(t, b, t.TempDir())
	host := func(fn string) string { return fn + ".default." + n.Domain }

	n.applyFunction(b, "flaky", "{name: FAIL_EVERY, value: '2'}", "")
	failed := 0
	for range 10 {
		if resp, _ := n.request("GET", host("flaky"), "/", nil); resp.StatusCode != 200 {
			failed++
		}
	}
	if failed != 5 {
		t.Fatalf("without retries %d of 10 requests failed, want 5", failed)
	}
	n.applyFunction(b, "flaky", "{name: FAIL_EVERY, value: '2'}", "  retries: {attempts: 2, retryOn: [5xx]}\n")
	for i := range 30 {
		if resp, body := n.request("GET", host("flaky"), "/", nil); resp.StatusCode != 200 {
			t.Fatalf("request %d with retries: %d %s", i, resp.StatusCode, body)
		}
	}

	n.applyFunction(b, "guarded", "", "  circuitBreaker: {maxRequests: 2, maxPendingRequests: 1}\n")
	n.callEcho(host("guarded"), "/") // started
	codes := make(chan string, 6)
	for range 6 {
		go func() {
			resp, _ := n.request("GET", host("guarded"), "/?sleep=1s", nil)
			codes <- fmt.Sprint(resp.StatusCode, " ", resp.Header.Get("X-Wisp-Failure"))
		}()
	}
	got := map[string]int{}
	for range 6 {
		got[<-codes]++
	}
	if got["200 "] != 3 || got["503 overloaded"] != 3 {
		t.Fatalf("6 concurrent requests against maxRequests 2 + maxPendingRequests 1: %v", got)
	}
	for range 3 {
		n.callEcho(host("guarded"), "/") // closed again
	}

	n.applyFunction(b, "outlier", "", `    metadata:
      annotations: {autoscaling.knative.dev/min-scale: "2"}
  outlierDetection: {consecutive5xx: 3, baseEjectionTime: 1m}
`)
	eventually(t, 30*time.Second, func() string {
		if d, a := n.revisionInstances("outlier-00001"); a != 2 || d != 2 {
			return fmt.Sprintf("outlier-00001: desired %d, actual %d; want 2 ready", d, a)
		}
		return ""
	})
	n.request("GET", host("outlier"), "/break", nil) // one of the two now answers 503
	failed = 0
	for range 60 {
		if resp, _ := n.request("GET", host("outlier"), "/", nil); resp.StatusCode != 200 {
			failed++
		}
	}
	if failed != 3 {
		t.Fatalf("%d of 60 requests failed; want exactly 3 before the broken instance is ejected", failed)
	}
}

// TestBuiltinFilters: header edits, a rate limit, CORS, fault injection
// at its rate and a mirror, all configured on Functions and applied by
// the gateway.
func TestBuiltinFilters(t *testing.T) {
	b := buildAll(t)
	n := startNode(t, b, t.TempDir())
	host := func(fn string) string { return fn + ".default." + n.Domain }

	n.applyFunction(b, "edge", "", `  filters:
  - headers:
      request: {set: {X-Test: from-filter}}
      response: {add: {X-Mesh: "yes"}}
  - phase: AUTHZ
    rateLimit: {requestsPerSecond: 1, burst: 5}
  - phase: AUTHN
    cors: {allowOrigins: ["https://app.example"], allowMethods: [GET]}
`)
	if out := n.mustWisp("service", "describe", "edge"); !strings.Contains(out, "Gateway policy:") || !strings.Contains(out, `rate limit 1/s burst 5`) {
		t.Fatalf("describe does not show the filters:\n%s", out)
	}
	resp, body := n.request("GET", host("edge"), "/", http.Header{"X-Test": {"from-client"}})
	var r echoReply
	_ = json.Unmarshal([]byte(body), &r)
	if resp.StatusCode != 200 || r.Test != "from-filter" || resp.Header.Get("X-Mesh") != "yes" {
		t.Fatalf("header filter: %d %q, X-Mesh %q", resp.StatusCode, body, resp.Header.Get("X-Mesh"))
	}
	// CORS runs first (AUTHN): a preflight never spends a token.
	pre := http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"GET"}}
	if resp, _ := n.request("OPTIONS", host("edge"), "/", pre); resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	admitted, limited := 1, 0
	for range 20 {
		resp, _ := n.request("GET", host("edge"), "/", nil)
		switch {
		case resp.StatusCode == 200:
			admitted++
		case resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "":
			limited++
		default:
			t.Fatalf("rate-limited function answered %d", resp.StatusCode)
		}
	}
	if admitted < 5 || admitted > 6 || limited != 21-admitted {
		t.Fatalf("burst 5 at 1/s: %d admitted, %d limited of 21", admitted, limited)
	}

	n.applyFunction(b, "faulty", "", "  filters:\n  - fault: {abort: {percentage: 25, httpStatus: 418}}\n")
	aborted := 0
	const calls = 800
	for range calls {
		if resp, _ := n.request("GET", host("faulty"), "/", nil); resp.StatusCode == 418 {
			aborted++
		}
	}
	// 25% of 800 is 200; three standard deviations are ±37.
	if aborted < 163 || aborted > 237 {
		t.Fatalf("%d of %d aborted with 25%% fault injection", aborted, calls)
	}
	// The gateway's metrics count each answer by code, and the function
	// had none in flight once all were answered.
	metrics := n.metrics()
	for code, want := range map[string]int{"418": aborted, "200": calls - aborted} {
		re := regexp.MustCompile(`wisp_gateway_requests_total\{code="` + code + `",function="faulty",namespace="default",revision="faulty-00001"\} (\d+)`)
		if m := re.FindStringSubmatch(metrics); m == nil || m[1] != strconv.Itoa(want) {
			t.Errorf("wisp_gateway_requests_total for code %s: %v, want %d", code, m, want)
		}
	}
	if !strings.Contains(metrics, `wisp_gateway_requests_in_flight{function="faulty",namespace="default"} 0`) ||
		!strings.Contains(metrics, `wisp_gateway_request_duration_seconds_count{function="faulty",namespace="default",revision="faulty-00001"} `+strconv.Itoa(calls)) {
		t.Errorf("in-flight gauge or latency histogram of faulty wrong")
	}

	n.applyFunction(b, "mirrored", "{name: MESSAGE, value: stable}", "")
	n.applyFunction(b, "mirrored", "{name: MESSAGE, value: canary}", `  traffic:
  - {revisionName: mirrored-00001, percent: 100}
  - {latestRevision: true, percent: 0, tag: canary}
  filters:
  - mirror: {tag: canary}
`)
	for range 10 {
		if r := n.callEcho(host("mirrored"), "/"); r.Message != "stable" {
			t.Fatalf("mirrored function answered from %+v; the mirror's answer must never reach the client", r)
		}
	}
	eventually(t, 10*time.Second, func() string {
		_, body := n.request("GET", host("canary-mirrored"), "/stats", nil)
		var st struct{ Shadow int }
		_ = json.Unmarshal([]byte(body), &st)
		if st.Shadow != 10 {
			return fmt.Sprintf("the canary saw %d mirror copies, want 10 (%s)", st.Shadow, body)
		}
		return ""
	})
}

// TestCanaryRolloutAndSplitAccuracy moves traffic from one revision to
// the next in steps under constant load, with no failed request, and
// checks that a split holds within 2 points over 10,000 requests.
func TestCanaryRolloutAndSplitAccuracy(t *testing.T) {
	b := buildAll(t)
	n := startNode(t, b, t.TempDir())
	n.mustWisp("service", "create", "roll", "--exec", b.echo, "-e", "MESSAGE=one")
	n.mustWisp("service", "update", "roll", "--traffic", "roll-00001=100")
	n.mustWisp("service", "update", "roll", "-e", "MESSAGE=two")
	host := "roll.default." + n.Domain

	var stop atomic.Bool
	var sent, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				req, _ := http.NewRequest("GET", n.Gateway+"/", nil)
				req.Host = host
				resp, err := http.DefaultClient.Do(req)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprint(resp.StatusCode, " ", string(b)))
					mu.Unlock()
				}
			}
		})
	}
	for _, step := range []string{"roll-00001=90,roll-00002=10", "roll-00001=50,roll-00002=50", "roll-00001=10,roll-00002=90", "roll-00002=100"} {
		n.mustWisp("service", "update", "roll", "--traffic", step)
		time.Sleep(300 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 || sent.Load() < 100 {
		t.Fatalf("%d of %d requests failed during the rollout: %v", failed.Load(), sent.Load(), failures)
	}
	for range 10 {
		if r := n.callEcho(host, "/"); r.Revision != "roll-00002" {
			t.Fatalf("after the rollout: %+v", r)
		}
	}

	n.mustWisp("service", "update", "roll", "--traffic", "roll-00001=30,roll-00002=70")
	const total = 10000
	var second atomic.Int64
	var next atomic.Int64
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= total {
				if r := n.callEcho(host, "/"); r.Revision == "roll-00002" {
					second.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if share := float64(second.Load()) / total * 100; share < 68 || share > 72 {
		t.Fatalf("a 30/70 split sent %.2f%% of %d requests to roll-00002", share, total)
	}
}

// TestOTLPTracesReachTheCollector: with --otlp-endpoint the gateway
// exports a span per request over OTLP/HTTP, in the client's trace.
func TestOTLPTracesReachTheCollector(t *testing.T) {
	b := buildAll(t)
	var mu sync.Mutex
	spans := map[string]string{} // trace id → span name
	collector := http.NewServeMux()
	collector.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans[fmt.Sprintf("%x", s.TraceId)] = s.Name
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	})
	srv := startHTTP(t, collector)
	n := startNode(t, b, t.TempDir(), "--otlp-endpoint", srv)
	n.mustWisp("service", "create", "traced", "--exec", b.echo)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp, body := n.request("GET", "traced.default."+n.Domain, "/", http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}})
	var r echoReply
	_ = json.Unmarshal([]byte(body), &r)
	if resp.StatusCode != 200 || !strings.HasPrefix(r.Trace, "00-"+traceID+"-") || strings.Contains(r.Trace, "00f067aa0ba902b7") {
		t.Fatalf("function got traceparent %q; want the client's trace with the gateway's span as parent", r.Trace)
	}
	n.stop() // flushes the batch
	mu.Lock()
	defer mu.Unlock()
	if spans[traceID] != "default/traced" {
		t.Fatalf("collector got spans %v; want one named default/traced in trace %s", spans, traceID)
	}
}

// startHTTP serves h on a free port of 127.0.0.1 until the test ends and
// returns its URL.
func startHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// metrics returns the node's Prometheus exposition.
func (n *node) metrics() string {
	n.t.Helper()
	resp, err := http.Get(n.Admin + "/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
