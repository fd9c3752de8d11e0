package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
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
}
