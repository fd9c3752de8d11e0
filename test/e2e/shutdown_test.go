package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// sendQueued sends n requests to a function that is still starting and
// returns a channel of their outcomes (status, or -1 for a transport
// error) and how long each took.
func sendQueued(n *node, count int) <-chan [2]int64 {
	out := make(chan [2]int64, count)
	client := &http.Client{Timeout: 60 * time.Second}
	var wg sync.WaitGroup
	for range count {
		wg.Go(func() {
			begin := time.Now()
			resp, err := client.Get(n.Gateway + "/fn/default/slow/")
			code := int64(-1)
			if err == nil {
				resp.Body.Close()
				code = int64(resp.StatusCode)
			}
			out <- [2]int64{code, int64(time.Since(begin))}
		})
	}
	go func() { wg.Wait(); close(out) }()
	return out
}

// TestQueuedRequestsOnNodeStop: requests waiting for a starting instance
// are answered when the node is stopped gracefully, and fail fast — never
// hang — when the node is killed.
func TestQueuedRequestsOnNodeStop(t *testing.T) {
	b := buildAll(t)

	n := startNode(t, b, t.TempDir())
	n.mustWisp("service", "create", "slow", "--no-wait", "--exec", b.echo, "-e", "START_DELAY=2s")
	waitRevision(t, n, "slow-00001")
	results := sendQueued(n, 20)
	time.Sleep(500 * time.Millisecond) // all queued, the instance still starting
	n.stop()
	for r := range results {
		if r[0] != http.StatusOK {
			t.Fatalf("a queued request got %d on a graceful stop, want 200", r[0])
		}
	}

	n = startNode(t, b, t.TempDir())
	n.mustWisp("service", "create", "slow", "--no-wait", "--exec", b.echo, "-e", "START_DELAY=5s")
	waitRevision(t, n, "slow-00001")
	results = sendQueued(n, 20)
	time.Sleep(500 * time.Millisecond)
	n.kill()
	for r := range results {
		if took := time.Duration(r[1]); took > 5*time.Second {
			t.Fatalf("a queued request hung for %v after the node was killed", took)
		}
		if r[0] == http.StatusOK {
			t.Fatalf("a request to a function that never started was answered 200")
		}
	}
}

// waitRevision waits until the controller has cut a revision.
func waitRevision(t *testing.T, n *node, name string) {
	t.Helper()
	eventually(t, 10*time.Second, func() string {
		if _, _, code := n.wisp("revision", "describe", name); code != 0 {
			return "revision " + name + " was never cut"
		}
		return ""
	})
}
