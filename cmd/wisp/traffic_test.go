package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wisp-faas/wisp/api"
)

func render(ts []api.TrafficTarget) string {
	var parts []string
	for _, t := range ts {
		ref := t.RevisionName
		if t.LatestRevision != nil && *t.LatestRevision {
			ref = "@latest"
		}
		s := ref
		if t.Tag != "" {
			s += "#" + t.Tag
		}
		if t.Percent != nil {
			s += "=" + strconv.FormatInt(*t.Percent, 10)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ",")
}

func TestEditTraffic(t *testing.T) {
	latest := []api.TrafficTarget{{LatestRevision: new(true), Percent: new(int64(100))}}
	cases := []struct {
		name                 string
		in                   []api.TrafficTarget
		tags, untags, shares []string
		want                 string
		err                  string
	}{
		{name: "canary split", in: latest, shares: []string{"hello-00001=90", "@latest=10"}, want: "@latest=10,hello-00001=90"},
		{name: "short names", in: latest, shares: []string{"00001=50", "@latest=50"}, want: "@latest=50,hello-00001=50"},
		{name: "tag a revision not routed", in: latest, tags: []string{"00001=old"}, want: "@latest=100,hello-00001#old=0"},
		{name: "tag latest in place", in: latest, tags: []string{"@latest=current"}, want: "@latest#current=100"},
		{name: "traffic by tag", in: []api.TrafficTarget{{LatestRevision: new(true), Percent: new(int64(100))}, {RevisionName: "hello-00001", LatestRevision: new(false), Tag: "old", Percent: new(int64(0))}},
			shares: []string{"old=20", "@latest=80"}, want: "@latest=80,hello-00001#old=20"},
		{name: "untag drops a 0% target", in: []api.TrafficTarget{{LatestRevision: new(true), Percent: new(int64(100))}, {RevisionName: "hello-00001", LatestRevision: new(false), Tag: "old", Percent: new(int64(0))}},
			untags: []string{"old"}, want: "@latest=100"},
		{name: "unknown untag", in: latest, untags: []string{"nope"}, err: "no traffic target has that tag"},
		{name: "tag in use", in: []api.TrafficTarget{{LatestRevision: new(true), Percent: new(int64(100)), Tag: "x"}}, tags: []string{"00001=x"}, err: "already used"},
		{name: "bad percent", in: latest, shares: []string{"@latest=abc"}, err: "REF=PERCENT"},
	}
	for _, c := range cases {
		got, err := editTraffic(c.in, "hello", c.tags, c.untags, c.shares)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if r := render(got); r != c.want {
			t.Errorf("%s: got %s, want %s", c.name, r, c.want)
		}
	}
}

// kn puts autoscaling annotations on the revision template only.
func TestAutoscalingAnnotationsStayOffTheFunction(t *testing.T) {
	got := functionAnnotationEdits([]string{"autoscaling.knative.dev/window=6s", "team=shop", "autoscaling.knative.dev/min-scale-", "owner-"})
	if want := []string{"team=shop", "owner-"}; !slices.Equal(got, want) {
		t.Fatalf("function annotation edits %q; want %q", got, want)
	}
}
