package e2e

import (
	"strings"
	"testing"
)

// TestTrafficSplitAndTags splits traffic between two revisions with kn's
// flags, reaches a tagged revision by its host and path, and moves all
// traffic back to the latest.
func TestTrafficSplitAndTags(t *testing.T) {
	b := buildAll(t)
	n := startNode(t, b, t.TempDir())
	n.mustWisp("service", "create", "echo", "--exec", b.echo, "-e", "MESSAGE=one")
	n.mustWisp("service", "update", "echo", "-e", "MESSAGE=two")
	n.mustWisp("service", "update", "echo", "--traffic", "echo-00001=50,@latest=50", "--tag", "echo-00001=old")

	host := "echo.default." + n.Domain
	seen := map[string]int{}
	for range 200 {
		seen[n.callEcho(host, "/").Revision]++
	}
	if seen["echo-00001"] < 60 || seen["echo-00002"] < 60 {
		t.Fatalf("a 50/50 split served %v", seen)
	}
	if r := n.callEcho("old-echo.default."+n.Domain, "/"); r.Revision != "echo-00001" {
		t.Fatalf("tag host served %+v", r)
	}
	if r := n.callEcho("", "/fn/default/echo/@old/x"); r.Revision != "echo-00001" || r.Path != "/x" {
		t.Fatalf("tag path served %+v", r)
	}
	out := n.mustWisp("service", "describe", "echo")
	if !strings.Contains(out, "old-echo.default.") || !strings.Contains(out, " 50%") {
		t.Fatalf("describe does not show the split and the tag URL:\n%s", out)
	}

	n.mustWisp("service", "update", "echo", "--untag", "old", "--traffic", "@latest=100")
	for range 20 {
		if r := n.callEcho(host, "/"); r.Revision != "echo-00002" {
			t.Fatalf("after moving all traffic to @latest: %+v", r)
		}
	}
	if code, _ := n.call("old-echo.default."+n.Domain, "/"); code != 404 {
		t.Fatalf("untagged host answered %d, want 404", code)
	}
	_, errOut, code := n.wisp("service", "update", "echo", "--traffic", "@latest=60")
	oneLine(t, "percent sum", errOut, code, "spec.traffic")
}
