package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// revisionInstances returns a revision's desired and ready instances.
func (n *node) revisionInstances(name string) (desired, actual int) {
	n.t.Helper()
	var r struct {
		Status struct{ DesiredReplicas, ActualReplicas int }
	}
	if err := json.Unmarshal([]byte(n.mustWisp("revision", "describe", name, "-o", "json")), &r); err != nil {
		n.t.Fatal(err)
	}
	return r.Status.DesiredReplicas, r.Status.ActualReplicas
}

// TestScaleToZeroAndBackWithNothingLost: an idle function reaches zero
// instances after the stable window and the grace period, and 200
// requests arriving together at zero are all answered.
func TestScaleToZeroAndBackWithNothingLost(t *testing.T) {
	b := buildAll(t)
	dataDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "autoscaler.yaml")
	if err := os.WriteFile(cfg, []byte("stable-window: 6s\nscale-to-zero-grace-period: 2s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, b, dataDir, "--autoscaler-config", cfg)
	n.mustWisp("service", "create", "echo", "--exec", b.echo, "--concurrency-limit", "10")
	if r := n.callEcho("echo.default."+n.Domain, "/"); r.Revision != "echo-00001" {
		t.Fatalf("first call: %+v", r)
	}

	idleSince := time.Now()
	eventually(t, 30*time.Second, func() string {
		if d, a := n.revisionInstances("echo-00001"); d != 0 || a != 0 {
			return "never scaled to zero"
		}
		return ""
	})
	if took := time.Since(idleSince); took < 6*time.Second {
		t.Fatalf("scaled to zero after %v, before the 6s stable window passed", took)
	}

	// A restarted node leaves an idle function at zero: nothing starts.
	n.stop()
	n = startNode(t, b, dataDir, "--autoscaler-config", cfg)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if out, err := exec.Command("pgrep", "-f", "^"+b.echo).Output(); err == nil {
			t.Fatalf("a restarted node started the idle function: %s", out)
		}
	}

	var wg sync.WaitGroup
	codes := make(chan int, 200)
	for range 200 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", n.Gateway+"/fn/default/echo/", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- -1
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	bad := map[int]int{}
	for c := range codes {
		if c != http.StatusOK {
			bad[c]++
		}
	}
	if len(bad) > 0 {
		t.Fatalf("requests at zero not answered 200: %v", bad)
	}
	if d, _ := n.revisionInstances("echo-00001"); d < 1 {
		t.Fatalf("desired %d after a burst from zero", d)
	}

	// What happened is visible: the revision's last decision, and the cold
	// starts in the metrics.
	if out := n.mustWisp("revision", "describe", "echo-00001"); !strings.Contains(out, "Last scaling") {
		t.Fatalf("describe does not show the last scaling decision:\n%s", out)
	}
	resp, err := http.Get(n.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`wisp_revision_cold_start_seconds_count\{namespace="default",revision="echo-00001"\} (\d+)`).FindSubmatch(body)
	if m == nil || string(m[1]) == "0" {
		t.Fatalf("no cold starts in the metrics:\n%s", body)
	}
	for _, name := range []string{"wisp_revision_desired_instances", "wisp_revision_ready_instances", "wisp_revision_panic_mode", "wisp_revision_queue_depth", "wisp_gateway_requests_total"} {
		if !strings.Contains(string(body), name+"{") {
			t.Errorf("metric %s missing", name)
		}
	}
}
