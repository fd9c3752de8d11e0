package e2e

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestFunctionLifecycle is the user's path through a node: create a
// process function, call it by Host and by path, update it (a new
// revision answers), restart the node gracefully and after a crash (state
// kept), and delete it (404 after).
func TestFunctionLifecycle(t *testing.T) {
	b := buildAll(t)
	dataDir := t.TempDir()
	n := startNode(t, b, dataDir)

	out := n.mustWisp("service", "create", "echo", "--exec", b.echo, "-e", "MESSAGE=one")
	if !strings.Contains(out, "echo-00001") || !strings.Contains(out, "ready") {
		t.Fatalf("create output does not name the ready revision: %q", out)
	}
	host := "echo.default." + n.Domain

	r := n.callEcho(host, "/hello?x=1")
	if r.Revision != "echo-00001" || r.Message != "one" || r.Service != "echo" || r.Path != "/hello" {
		t.Fatalf("by host: %+v", r)
	}
	// What the instance wrote is the function's log.
	eventually(t, 5*time.Second, func() string {
		if out := n.mustWisp("logs", "echo"); !strings.Contains(out, "echo-00001") || !strings.Contains(out, "stderr: served /hello") {
			return "wisp logs does not show the function's output: " + out
		}
		return ""
	})

	r = n.callEcho("", "/fn/default/echo/a/b")
	if r.Revision != "echo-00001" || r.Path != "/a/b" || r.Prefix != "/fn/default/echo" {
		t.Fatalf("by path: %+v", r)
	}

	n.mustWisp("service", "update", "echo", "-e", "MESSAGE=two")
	r = n.callEcho(host, "/")
	if r.Revision != "echo-00002" || r.Message != "two" {
		t.Fatalf("after update: %+v", r)
	}

	var revs struct {
		Items []struct {
			Metadata struct{ Name string }
		}
	}
	if err := json.Unmarshal([]byte(n.mustWisp("revision", "list", "echo", "-o", "json")), &revs); err != nil {
		t.Fatal(err)
	}
	if len(revs.Items) != 2 {
		t.Fatalf("want 2 revisions, got %+v", revs.Items)
	}

	// Graceful restart: same state, the process is started again.
	n.stop()
	n = startNode(t, b, dataDir)
	if r := n.callEcho(host, "/"); r.Revision != "echo-00002" || r.Message != "two" {
		t.Fatalf("after restart: %+v", r)
	}

	// A killed node takes its function processes with it, and comes back
	// with the same state.
	n.kill()
	eventually(t, 5*time.Second, func() string {
		if out, err := exec.Command("pgrep", "-f", "^"+b.echo).Output(); err == nil {
			return "function processes outlived the killed node: " + string(out)
		}
		return ""
	})
	n = startNode(t, b, dataDir)
	if r := n.callEcho(host, "/"); r.Revision != "echo-00002" {
		t.Fatalf("after kill -9 and restart: %+v", r)
	}
	out = n.mustWisp("service", "list")
	if !strings.Contains(out, "echo") || !strings.Contains(out, "True") {
		t.Fatalf("service list after restart: %q", out)
	}

	n.mustWisp("service", "delete", "echo")
	if code, body := n.call(host, "/"); code != http.StatusNotFound {
		t.Fatalf("after delete: status %d %s, want 404", code, body)
	}
	if code, _ := n.call("", "/fn/default/echo/"); code != http.StatusNotFound {
		t.Fatalf("after delete by path: status %d, want 404", code)
	}
	eventually(t, 10*time.Second, func() string {
		if out := n.mustWisp("revision", "list", "-o", "json"); strings.Contains(out, "echo-0000") {
			return "revisions left after delete: " + out
		}
		return ""
	})
}
