package activator

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wisp-faas/wisp/activator/filter"
)

// RevisionKey names a Revision in a namespace.
type RevisionKey struct {
	Namespace string
	Name      string
}

// Target is one resolved traffic target of a Route.
type Target struct {
	Revision string
	Percent  int64
	Tag      string
}

// Route is the routing entry of one Function: its rules and its traffic
// split, already resolved to Revision names.
type Route struct {
	Namespace string
	Function  string
	// Rules are tried in order before the split; the first that matches
	// picks the Revision.
	Rules   []Rule
	Targets []Target
	// Chain is the Function's filter chain; nil runs none.
	Chain *filter.Chain
	// Retry is the Function's retry policy; nil retries nothing.
	Retry *RetryPolicy

	// budget counts the Function's requests and retries in flight; Set
	// carries it over from the route it replaces.
	budget *retryBudget
}

// Rule sends the requests whose headers and query parameters all match
// to one Revision.
type Rule struct {
	Headers  []Match
	Query    []Match
	Revision string
	// Timeout, when positive, bounds the requests the rule routes.
	Timeout time.Duration
	// Retry, when set, replaces the route's retry policy.
	Retry *RetryPolicy
}

// Match tests one header or query parameter. Exactly one of Exact,
// Prefix and Regex is used (Regex when set, else Prefix when set, else
// Exact). A name that is absent never matches.
type Match struct {
	Name   string
	Exact  string
	Prefix string
	Regex  *regexp.Regexp // anchored at both ends
}

func (m *Match) matches(values []string) bool {
	for _, v := range values {
		switch {
		case m.Regex != nil:
			if m.Regex.MatchString(v) {
				return true
			}
		case m.Prefix != "":
			if strings.HasPrefix(v, m.Prefix) {
				return true
			}
		case v == m.Exact:
			return true
		}
	}
	return false
}

// rule returns the first rule the request matches, or nil.
func (r *Route) rule(req *http.Request) *Rule {
	if len(r.Rules) == 0 {
		return nil
	}
	var query url.Values
	for i := range r.Rules {
		rl := &r.Rules[i]
		ok := true
		for i := range rl.Headers {
			if ok = rl.Headers[i].matches(req.Header.Values(rl.Headers[i].Name)); !ok {
				break
			}
		}
		if ok && len(rl.Query) > 0 {
			if query == nil {
				query = req.URL.Query()
			}
			for i := range rl.Query {
				if ok = rl.Query[i].matches(query[rl.Query[i].Name]); !ok {
					break
				}
			}
		}
		if ok {
			return rl
		}
	}
	return nil
}

// pick chooses the Revision for one request. tag, when non-empty, selects
// the target with that tag; ok is false when there is no such tag or no
// target at all.
func (r *Route) pick(tag string, rnd func(n int64) int64) (string, bool) {
	if tag != "" {
		for _, t := range r.Targets {
			if t.Tag == tag {
				return t.Revision, true
			}
		}
		return "", false
	}
	var total int64
	for _, t := range r.Targets {
		total += t.Percent
	}
	if total <= 0 {
		return "", false
	}
	n := rnd(total)
	for _, t := range r.Targets {
		if n < t.Percent {
			return t.Revision, true
		}
		n -= t.Percent
	}
	return "", false
}

// table is an immutable snapshot of every route, indexed for lookups.
type table struct {
	routes map[RevisionKey]*Route // by namespace and function name
	hosts  map[string]hostEntry   // by lower-case host without port
}

type hostEntry struct {
	route *Route
	tag   string
}

// Routes is the gateway's route table. Readers never block: every change
// builds a new snapshot and swaps it in.
type Routes struct {
	domain string

	mu     sync.Mutex // serialises writers
	routes map[RevisionKey]*Route
	snap   atomic.Pointer[table]
}

// NewRoutes returns an empty route table that serves hosts under domain.
func NewRoutes(domain string) *Routes {
	r := &Routes{domain: strings.ToLower(domain), routes: map[RevisionKey]*Route{}}
	r.snap.Store(&table{routes: map[RevisionKey]*Route{}, hosts: map[string]hostEntry{}})
	return r
}

// Host returns the host name of a Function, or of one of its tags.
func (r *Routes) Host(namespace, function, tag string) string {
	return HostName(r.domain, namespace, function, tag)
}

// HostName is the host of a Function (tag empty) or of one of its tags:
// "<name>.<namespace>.<domain>" or "<tag>-<name>.<namespace>.<domain>".
func HostName(domain, namespace, function, tag string) string {
	if tag != "" {
		function = tag + "-" + function
	}
	return function + "." + namespace + "." + domain
}

// Set installs or replaces the route of a Function.
func (r *Routes) Set(route Route) {
	route.Targets = append([]Target(nil), route.Targets...)
	route.Rules = append([]Rule(nil), route.Rules...)
	r.mu.Lock()
	defer r.mu.Unlock()
	k := RevisionKey{route.Namespace, route.Function}
	if old, ok := r.routes[k]; ok {
		route.budget = old.budget
	} else {
		route.budget = &retryBudget{}
	}
	r.routes[k] = &route
	r.rebuild()
}

// Delete removes the route of a Function.
func (r *Routes) Delete(namespace, function string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.routes, RevisionKey{namespace, function})
	r.rebuild()
}

// Get returns the route of a Function.
func (r *Routes) Get(namespace, function string) (*Route, bool) {
	rt, ok := r.snap.Load().routes[RevisionKey{namespace, function}]
	return rt, ok
}

// Len is the number of Functions routed.
func (r *Routes) Len() int { return len(r.snap.Load().routes) }

// Routed reports whether any route sends traffic to, or tags, the Revision.
func (r *Routes) Routed(namespace, revision string) bool {
	for k, rt := range r.snap.Load().routes {
		if k.Namespace != namespace {
			continue
		}
		for _, t := range rt.Targets {
			if t.Revision == revision {
				return true
			}
		}
		for _, rl := range rt.Rules {
			if rl.Revision == revision {
				return true
			}
		}
	}
	return false
}

func (r *Routes) rebuild() {
	t := &table{routes: make(map[RevisionKey]*Route, len(r.routes)), hosts: make(map[string]hostEntry, len(r.routes))}
	for k, rt := range r.routes {
		t.routes[k] = rt
		t.hosts[r.Host(rt.Namespace, rt.Function, "")] = hostEntry{route: rt}
		for _, tg := range rt.Targets {
			if tg.Tag != "" {
				t.hosts[r.Host(rt.Namespace, rt.Function, tg.Tag)] = hostEntry{route: rt, tag: tg.Tag}
			}
		}
	}
	r.snap.Store(t)
}

// match is the outcome of looking a request up in the table.
type match struct {
	route *Route
	tag   string
	// path is the request path the function sees (the /fn/ns/name prefix removed).
	path string
}

// lookup finds the route for a request: by Host first, then by the path
// prefix /fn/<namespace>/<name>[/@<tag>].
func (r *Routes) lookup(req *http.Request) (match, bool) {
	t := r.snap.Load()
	host := strings.ToLower(req.Host)
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	if e, ok := t.hosts[host]; ok {
		return match{route: e.route, tag: e.tag, path: req.URL.Path}, true
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/fn/")
	if !ok {
		return match{}, false
	}
	ns, rest, _ := strings.Cut(rest, "/")
	name, rest, hasRest := strings.Cut(rest, "/")
	rt, ok := t.routes[RevisionKey{ns, name}]
	if !ok {
		return match{}, false
	}
	m := match{route: rt, path: "/"}
	if hasRest {
		m.path = "/" + rest
		if tagged, ok := strings.CutPrefix(rest, "@"); ok {
			tag, after, _ := strings.Cut(tagged, "/")
			m.tag, m.path = tag, "/"+after
		}
	}
	return m, true
}

// randInt64N is the production source of randomness for traffic splits.
func randInt64N(n int64) int64 { return rand.Int64N(n) }
