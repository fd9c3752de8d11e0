package activator

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
)

func TestLookupByHostAndPath(t *testing.T) {
	r := NewRoutes("example.test")
	r.Set(Route{Namespace: "ns", Function: "fn", Targets: []Target{{Revision: "fn-00002", Percent: 100}, {Revision: "fn-00001", Tag: "old"}}})
	cases := []struct {
		host, path          string
		ok                  bool
		tag, wantPath, name string
	}{
		{"fn.ns.example.test", "/a", true, "", "/a", "fn"},
		{"FN.ns.example.test:8080", "/a", true, "", "/a", "fn"},
		{"old-fn.ns.example.test", "/", true, "old", "/", "fn"},
		{"127.0.0.1:8080", "/fn/ns/fn/x/y", true, "", "/x/y", "fn"},
		{"127.0.0.1:8080", "/fn/ns/fn", true, "", "/", "fn"},
		{"127.0.0.1:8080", "/fn/ns/fn/@old/z", true, "old", "/z", "fn"},
		{"127.0.0.1:8080", "/fn/ns/other/", false, "", "", ""},
		{"other.ns.example.test", "/", false, "", "", ""},
	}
	for _, c := range cases {
		req := httptest.NewRequest("GET", "http://"+c.host+c.path, nil)
		m, ok := r.lookup(req)
		if ok != c.ok {
			t.Errorf("%s%s: found %v, want %v", c.host, c.path, ok, c.ok)
			continue
		}
		if ok && (m.tag != c.tag || m.path != c.wantPath || m.route.Function != c.name) {
			t.Errorf("%s%s: tag %q path %q fn %q", c.host, c.path, m.tag, m.path, m.route.Function)
		}
	}
	r.Delete("ns", "fn")
	if _, ok := r.lookup(httptest.NewRequest("GET", "http://fn.ns.example.test/", nil)); ok {
		t.Fatal("deleted route still matches")
	}
}

func TestPickSplitsByPercent(t *testing.T) {
	rt := &Route{Targets: []Target{{Revision: "a", Percent: 90}, {Revision: "b", Percent: 10}, {Revision: "c", Percent: 0, Tag: "c"}}}
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[string]int{}
	const n = 10000
	for range n {
		rev, ok := rt.pick("", rng.Int64N)
		if !ok {
			t.Fatal("no pick")
		}
		counts[rev]++
	}
	if pa := float64(counts["a"]) / n * 100; pa < 88 || pa > 92 || counts["c"] != 0 {
		t.Fatalf("split 90/10/0 gave %v", counts)
	}
	if rev, ok := rt.pick("c", rng.Int64N); !ok || rev != "c" {
		t.Fatalf("tag pick: %q %v", rev, ok)
	}
	if _, ok := rt.pick("nope", rng.Int64N); ok {
		t.Fatal("unknown tag picked a revision")
	}
}

func TestRouted(t *testing.T) {
	r := NewRoutes("d")
	r.Set(Route{Namespace: "ns", Function: "fn", Targets: []Target{{Revision: "fn-1", Percent: 100}}})
	if !r.Routed("ns", "fn-1") || r.Routed("ns", "fn-2") || r.Routed("other", "fn-1") {
		t.Fatal("Routed disagrees with the table")
	}
}

func TestRulesPickBeforeTheSplit(t *testing.T) {
	rt := &Route{
		Rules: []Rule{
			{Headers: []Match{{Name: "X-Env", Exact: "canary"}}, Revision: "canary"},
			{Headers: []Match{{Name: "User-Agent", Prefix: "curl/"}}, Query: []Match{{Name: "beta", Regex: regexp.MustCompile(`^(1|yes)$`)}}, Revision: "beta"},
		},
		Targets: []Target{{Revision: "stable", Percent: 100}},
	}
	req := func(h map[string]string, query string) *http.Request {
		r := httptest.NewRequest("GET", "http://x/?"+query, nil)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	cases := []struct {
		h     map[string]string
		query string
		want  string
	}{
		{map[string]string{"x-env": "canary"}, "", "canary"},
		{map[string]string{"x-env": "canary-not"}, "", ""},
		{map[string]string{"User-Agent": "curl/8"}, "beta=yes", "beta"},
		{map[string]string{"User-Agent": "curl/8"}, "beta=yesplease", ""},
		{map[string]string{"User-Agent": "Mozilla"}, "beta=1", ""},
		{nil, "", ""},
	}
	for _, c := range cases {
		got, ok := "", false
		if rl := rt.rule(req(c.h, c.query)); rl != nil {
			got, ok = rl.Revision, true
		}
		if c.want == "" && ok || c.want != "" && got != c.want {
			t.Errorf("headers %v query %q: rule picked %q (%v), want %q", c.h, c.query, got, ok, c.want)
		}
	}
}
