package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/wisp-faas/wisp/api"
)

// latestRef is how kn names the latest ready revision in traffic flags.
const latestRef = "@latest"

// editTraffic applies kn's traffic flags to a function's spec.traffic:
// --untag TAG, then --tag REV=TAG (REV may be @latest), then --traffic
// REF=PERCENT where REF is a revision, a tag or @latest. Targets left with
// 0% and no tag are dropped. The API checks that the percents sum to 100.
func editTraffic(traffic []api.TrafficTarget, fn string, tags, untags, shares []string) ([]api.TrafficTarget, error) {
	out := make([]api.TrafficTarget, 0, len(traffic)+len(tags))
	for _, t := range traffic {
		t.URL = ""
		out = append(out, t)
	}
	isLatest := func(t api.TrafficTarget) bool { return t.LatestRevision != nil && *t.LatestRevision }
	refers := func(t api.TrafficTarget, rev string) bool {
		if rev == latestRef {
			return isLatest(t)
		}
		return !isLatest(t) && t.RevisionName == rev
	}

	for _, tag := range untags {
		i := slices.IndexFunc(out, func(t api.TrafficTarget) bool { return t.Tag == tag })
		if i < 0 {
			return nil, fmt.Errorf("--untag %s: no traffic target has that tag", tag)
		}
		out[i].Tag = ""
	}
	for _, kv := range tags {
		rev, tag, ok := strings.Cut(kv, "=")
		if !ok || rev == "" || tag == "" {
			return nil, fmt.Errorf("--tag %q: want REVISION=TAG or @latest=TAG", kv)
		}
		rev = qualify(fn, rev)
		if slices.ContainsFunc(out, func(t api.TrafficTarget) bool { return t.Tag == tag }) {
			return nil, fmt.Errorf("--tag %s: tag %q is already used; --untag it first", kv, tag)
		}
		if i := slices.IndexFunc(out, func(t api.TrafficTarget) bool { return refers(t, rev) && t.Tag == "" }); i >= 0 {
			out[i].Tag = tag
			continue
		}
		out = append(out, newTarget(rev, tag, 0))
	}
	if len(shares) > 0 {
		for i := range out {
			out[i].Percent = new(int64(0))
		}
		for _, kv := range shares {
			ref, pct, ok := strings.Cut(kv, "=")
			n, err := strconv.ParseInt(pct, 10, 64)
			if !ok || ref == "" || err != nil || n < 0 || n > 100 {
				return nil, fmt.Errorf("--traffic %q: want REF=PERCENT with REF a revision, a tag or @latest and PERCENT 0..100", kv)
			}
			if i := slices.IndexFunc(out, func(t api.TrafficTarget) bool { return t.Tag == ref }); i >= 0 {
				out[i].Percent = &n
				continue
			}
			rev := qualify(fn, ref)
			if i := slices.IndexFunc(out, func(t api.TrafficTarget) bool { return refers(t, rev) }); i >= 0 {
				out[i].Percent = &n
				continue
			}
			out = append(out, newTarget(rev, "", n))
		}
	}
	return slices.DeleteFunc(out, func(t api.TrafficTarget) bool {
		return t.Tag == "" && (t.Percent == nil || *t.Percent == 0)
	}), nil
}

// qualify accepts a revision's short name ("00002" or "v2") as kn does
// for --revision-name, prefixing it with "<function>-".
func qualify(fn, rev string) string {
	if rev == latestRef || strings.HasPrefix(rev, fn+"-") {
		return rev
	}
	return fn + "-" + rev
}

func newTarget(rev, tag string, pct int64) api.TrafficTarget {
	t := api.TrafficTarget{Tag: tag, Percent: &pct}
	if rev == latestRef {
		t.LatestRevision = new(true)
	} else {
		t.RevisionName, t.LatestRevision = rev, new(false)
	}
	return t
}

// parseRoute reads one --route rule: "header:NAME=VALUE->TARGET" (also
// NAME^=PREFIX and NAME~=REGEX, and query: instead of header:; several
// conditions joined with ","), TARGET a revision, a tag or @latest.
func parseRoute(fn, s string, traffic []api.TrafficTarget) (api.RouteRule, error) {
	var r api.RouteRule
	conds, target, ok := strings.Cut(s, "->")
	if !ok || target == "" || conds == "" {
		return r, fmt.Errorf("--route %q: want header:NAME=VALUE->TARGET or query:NAME=VALUE->TARGET", s)
	}
	for _, c := range strings.Split(conds, ",") {
		kind, expr, ok := strings.Cut(c, ":")
		if !ok {
			return r, fmt.Errorf("--route %q: condition %q needs header: or query:", s, c)
		}
		var m api.StringMatch
		switch {
		case strings.Contains(expr, "~="):
			m.Name, m.Regex, _ = strings.Cut(expr, "~=")
		case strings.Contains(expr, "^="):
			m.Name, m.Prefix, _ = strings.Cut(expr, "^=")
		case strings.Contains(expr, "="):
			m.Name, m.Exact, _ = strings.Cut(expr, "=")
		default:
			return r, fmt.Errorf("--route %q: condition %q: want NAME=VALUE, NAME^=PREFIX or NAME~=REGEX", s, c)
		}
		switch kind {
		case "header":
			r.Headers = append(r.Headers, m)
		case "query":
			r.Query = append(r.Query, m)
		default:
			return r, fmt.Errorf("--route %q: %q is not header: or query:", s, kind+":")
		}
	}
	switch {
	case target == latestRef:
		r.LatestRevision = new(true)
	case slices.ContainsFunc(traffic, func(t api.TrafficTarget) bool { return t.Tag == target }):
		r.Tag = target
	default:
		r.RevisionName = qualify(fn, target)
	}
	return r, nil
}
