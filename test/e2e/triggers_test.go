package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var eventsinkBin struct {
	once sync.Once
	path string
	err  error
}

// buildEventsink builds testdata/eventsink once per run.
func buildEventsink(t *testing.T) string {
	t.Helper()
	eventsinkBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "wisp-e2e-eventsink")
		if err != nil {
			eventsinkBin.err = err
			return
		}
		eventsinkBin.path = filepath.Join(dir, "eventsink")
		if out, err := exec.Command("go", "build", "-o", eventsinkBin.path, "./testdata/eventsink").CombinedOutput(); err != nil {
			eventsinkBin.err = fmt.Errorf("go build eventsink: %v\n%s", err, out)
		}
	})
	if eventsinkBin.err != nil {
		t.Fatal(eventsinkBin.err)
	}
	return eventsinkBin.path
}

// collector counts the deliveries the eventsink function reports, by event id.
type collector struct {
	*httptest.Server
	mu    sync.Mutex
	seen  map[string]int
	types map[string]string
	first map[string]time.Time
}

func newCollector(t *testing.T) *collector {
	c := &collector{seen: map[string]int{}, types: map[string]string{}, first: map[string]time.Time{}}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		id, typ, _ := strings.Cut(string(b), " ")
		c.mu.Lock()
		if c.seen[id] == 0 {
			c.first[id] = time.Now()
		}
		c.seen[id]++
		c.types[id] = typ
		c.mu.Unlock()
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[id]
}

// zeroInitialScale is an autoscaler config under which new functions
// start at zero instances.
func zeroInitialScale(t testing.TB) string {
	cfg := filepath.Join(t.TempDir(), "autoscaler.yaml")
	if err := os.WriteFile(cfg, []byte("allow-zero-initial-scale: true\ninitial-scale: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// sendEvent posts a binary-mode CloudEvent to the gateway's ingress and
// returns the status.
func sendEvent(gateway, subject, id, typ string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, gateway+"/events/"+subject, strings.NewReader(`{"id":"`+id+`"}`))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Ce-Source", "/e2e")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestTriggersEndToEnd drives triggers with the real binary and a real
// process function: the first event wakes the function from zero, filters
// hold, async calls answer 202 or 404 and call back, and a node killed in
// the middle of a stream delivers every event after its restart.
func TestTriggersEndToEnd(t *testing.T) {
	b := buildAll(t)
	sinkBin := buildEventsink(t)
	col := newCollector(t)
	cfg := zeroInitialScale(t)
	dataDir := t.TempDir()
	n := startNode(t, b, dataDir, "--autoscaler-config", cfg)
	// At zero instances from the start, a function is never ready: do not wait.
	n.mustWisp("service", "create", "sink", "--exec", sinkBin, "-e", "COLLECT_URL="+col.URL, "--no-wait")
	eventually(t, 10*time.Second, func() string {
		if _, _, code := n.wisp("revision", "describe", "sink-00001"); code != 0 {
			return "no revision sink-00001"
		}
		return ""
	})
	if d, a := n.revisionInstances("sink-00001"); d != 0 || a != 0 {
		t.Fatalf("the function starts with %d/%d instances, want 0", d, a)
	}

	// Bad input: one line, non-zero exit.
	if _, errOut, code := n.wisp("trigger", "create", "bad", "--subject", "orders.>", "--sink", "fn:sink", "--backoff", "random"); code == 0 || !strings.Contains(errOut, "spec.delivery.backoffPolicy") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("bad backoff: exit %d, stderr %q", code, errOut)
	}
	out := n.mustWisp("trigger", "create", "orders", "--subject", "orders.>", "--sink", "fn:sink",
		"--filter", "type=order.created", "--retry", "5", "--backoff", "exponential", "--backoff-delay", "100ms",
		"--dead-letter", "orders.dlq", "--timeout", "2s")
	if !strings.Contains(out, "is ready") {
		t.Fatalf("trigger create: %s", out)
	}

	// Wake from zero: the first event waits for the function instead of failing.
	begin := time.Now()
	n.mustWisp("event", "send", "orders.eu", "--type", "order.other", "--id", "filtered")
	n.mustWisp("event", "send", "orders.eu", "--type", "order.created", "--source", "/shop", "--id", "first")
	eventually(t, 15*time.Second, func() string {
		if col.count("first") == 0 {
			return "the first event never reached the function at zero"
		}
		return ""
	})
	t.Logf("first event delivered %s after the CLI started sending it (function at zero)", time.Since(begin).Round(time.Millisecond))
	if col.count("filtered") != 0 {
		t.Fatal("an event of another type passed the filter")
	}

	// Async: 404 for an unknown function, 202 and a callback otherwise.
	callbacks := make(chan http.Header, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Header.Set("X-Body", string(body))
		callbacks <- r.Header
	}))
	defer cb.Close()
	if code, _ := postAsync(t, n.Gateway+"/async/default/nope", cb.URL); code != http.StatusNotFound {
		t.Fatalf("async to an unknown function: %d, want 404", code)
	}
	code, id := postAsync(t, n.Gateway+"/async/default/sink/work", cb.URL)
	if code != http.StatusAccepted || id == "" {
		t.Fatalf("async: %d, call id %q", code, id)
	}
	select {
	case h := <-callbacks:
		if h.Get("X-Call-Id") != id || h.Get("X-Function-Status") != "200" || h.Get("X-Body") != "async body" || h.Get("X-Duration-Seconds") == "" {
			t.Fatalf("callback headers %v", h)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no callback")
	}

	// Kill the node in the middle of a stream; the restarted node delivers the rest.
	const total = 600
	for i := range total {
		if i == total/2 {
			n.kill()
			n = startNode(t, b, dataDir, "--autoscaler-config", cfg)
		}
		id := fmt.Sprintf("e%d", i)
		eventually(t, 10*time.Second, func() string {
			code, err := sendEvent(n.Gateway, "orders.eu", id, "order.created")
			if err != nil || code != http.StatusAccepted {
				return fmt.Sprintf("send %s: %d %v", id, code, err)
			}
			return ""
		})
	}
	eventually(t, 30*time.Second, func() string {
		for i := range total {
			if col.count(fmt.Sprintf("e%d", i)) == 0 {
				return fmt.Sprintf("event e%d never delivered", i)
			}
		}
		return ""
	})
	dups := 0
	for i := range total {
		dups += col.count(fmt.Sprintf("e%d", i)) - 1
	}
	t.Logf("node killed after %d of %d events: all delivered, %d duplicates", total/2, total, dups)

	eventually(t, 10*time.Second, func() string {
		out := n.mustWisp("trigger", "describe", "orders")
		if !strings.Contains(out, "Pending:        0") || !strings.Contains(out, "True") {
			return "describe: " + out
		}
		return ""
	})
	if out := n.mustWisp("trigger", "list"); !strings.Contains(out, "orders.>") || !strings.Contains(out, "fn:sink") {
		t.Fatalf("trigger list: %s", out)
	}
	n.mustWisp("trigger", "delete", "orders")
	if _, _, code := n.wisp("trigger", "describe", "orders"); code == 0 {
		t.Fatal("the deleted trigger is still there")
	}
}

// postAsync posts to an /async/ URL with a callback and returns the status
// and call id.
func postAsync(t *testing.T, url, callback string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader("async body"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Callback-Url", callback)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Call-Id")
}

// TestTriggersWithExternalNATS runs a trigger on a node whose NATS is an
// external server given by --nats-url.
func TestTriggersWithExternalNATS(t *testing.T) {
	b := buildAll(t)
	sinkBin := buildEventsink(t)
	col := newCollector(t)
	n := startNode(t, b, t.TempDir(), "--nats-url", startExternalNATS(t), "--autoscaler-config", zeroInitialScale(t))
	n.mustWisp("service", "create", "sink", "--exec", sinkBin, "-e", "COLLECT_URL="+col.URL, "--no-wait")
	n.mustWisp("trigger", "create", "orders", "--subject", "orders.>", "--sink", "fn:sink")
	for i := range 20 {
		n.mustWisp("event", "send", "orders.x", "--type", "order.created", "--id", fmt.Sprintf("x%d", i))
	}
	eventually(t, 20*time.Second, func() string {
		for i := range 20 {
			if col.count(fmt.Sprintf("x%d", i)) == 0 {
				return fmt.Sprintf("event x%d never delivered", i)
			}
		}
		return ""
	})
	if code, _ := postAsync(t, n.Gateway+"/async/default/nope", col.URL); code != http.StatusNotFound {
		t.Fatalf("async to an unknown function: %d, want 404", code)
	}
}
