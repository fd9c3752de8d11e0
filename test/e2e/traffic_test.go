package e2e

import (
	"encoding/json"
	"net/http"
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

// TestHeaderRoutesBeforeTheSplit: requests with a header go to the canary,
// everything else follows the split; a rule by query parameter too.
func TestHeaderRoutesBeforeTheSplit(t *testing.T) {
	b := buildAll(t)
	n := startNode(t, b, t.TempDir())
	n.mustWisp("service", "create", "echo", "--exec", b.echo, "-e", "MESSAGE=stable")
	n.mustWisp("service", "update", "echo", "-e", "MESSAGE=canary")
	n.mustWisp("service", "update", "echo", "--traffic", "echo-00001=100", "--tag", "@latest=canary",
		"--route", "header:x-env=canary->canary", "--route", "query:beta~=(1|yes)->@latest")

	host := "echo.default." + n.Domain
	get := func(header, query string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", n.Gateway+"/"+query, nil)
		req.Host = host
		if header != "" {
			req.Header.Set("X-Env", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r echoReply
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return r.Message
	}
	for range 20 {
		if m := get("", ""); m != "stable" {
			t.Fatalf("plain request went to %q, want the 100%% split to stable", m)
		}
		if m := get("canary", ""); m != "canary" {
			t.Fatalf("x-env: canary went to %q", m)
		}
	}
	if m := get("", "?beta=yes"); m != "canary" {
		t.Fatalf("?beta=yes went to %q", m)
	}
	if m := get("", "?beta=yesplease"); m != "stable" {
		t.Fatalf("?beta=yesplease went to %q: regexes are anchored", m)
	}
	// A rule naming a revision that does not exist is refused at
	// admission, naming the field; the route in force stays as it was.
	_, errOut, code := n.wisp("service", "update", "echo", "--route", "header:x-a=b->nosuchrev", "--no-wait")
	oneLine(t, "route to a missing revision", errOut, code, "spec.routes[", "revisionName", "echo-nosuchrev")
	if m := get("canary", ""); m != "canary" {
		t.Fatalf("the route in force changed while the new one could not be resolved: %q", m)
	}
	n.mustWisp("service", "update", "echo", "--clear-routes")
	if m := get("canary", ""); m != "stable" {
		t.Fatalf("after --clear-routes x-env: canary went to %q", m)
	}
}
