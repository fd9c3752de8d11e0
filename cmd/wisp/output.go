package main

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"

	"github.com/wisp-faas/wisp/api"
)

// table collects rows and prints them aligned.
type table struct {
	w *tabwriter.Writer
}

func (t *table) header(cols ...string) { t.row(cols...) }

func (t *table) row(cols ...string) { fmt.Fprintln(t.w, strings.Join(cols, "\t")) }

// line prints a "Key: value" line of a describe view.
func (t *table) line(key string, value any) { fmt.Fprintf(t.w, "%s:\t%v\n", key, value) }

// print writes raw (the API's JSON answer) as JSON or YAML, or renders
// the table for -o table.
func (g *globals) print(raw []byte, render func(t *table)) error {
	switch g.output {
	case "json":
		_, err := g.out.Write(raw)
		return err
	case "yaml":
		y, err := yaml.JSONToYAML(raw)
		if err != nil {
			return fmt.Errorf("converting to YAML: %w", err)
		}
		_, err = g.out.Write(y)
		return err
	case "table", "":
		t := &table{w: tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)}
		render(t)
		return t.w.Flush()
	}
	return fmt.Errorf("-o %q: use table, json or yaml", g.output)
}

// conditionColumns renders a Ready condition as kn does: READY, REASON.
func conditionColumns(c *apis.Condition) (string, string) {
	if c == nil {
		return "Unknown", ""
	}
	return string(c.Status), c.Reason
}

// age renders a duration since t as kubectl does (5s, 3m, 2h, 4d).
func age(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

func describeFunction(t *table, f *api.Function, revs []api.Revision) {
	t.line("Name", f.Name)
	t.line("Namespace", f.Namespace)
	t.line("URL", f.Status.URL)
	if f.Status.Address != "" {
		t.line("Path URL", f.Status.Address)
	}
	t.line("Age", age(f.CreationTimestamp.Time))
	t.line("Source", sourceString(&f.Spec.Template.Spec))
	fmt.Fprintln(t.w)
	fmt.Fprintln(t.w, "Traffic:")
	for _, tr := range f.Status.Traffic {
		tag := ""
		if tr.Tag != "" {
			tag = " #" + tr.Tag
		}
		pct := int64(0)
		if tr.Percent != nil {
			pct = *tr.Percent
		}
		latest := ""
		if tr.LatestRevision != nil && *tr.LatestRevision {
			latest = " (@latest)"
		}
		fmt.Fprintf(t.w, "  %3d%%\t%s%s%s\t%s\n", pct, tr.RevisionName, latest, tag, tr.URL)
	}
	if len(f.Spec.Routes) > 0 {
		fmt.Fprintln(t.w, "Header routes (before the split):")
		for _, r := range f.Spec.Routes {
			fmt.Fprintf(t.w, "  %s\t-> %s\n", ruleConditions(r), ruleTarget(r))
		}
	}
	if p := policyLines(&f.Spec); len(p) > 0 {
		fmt.Fprintln(t.w)
		fmt.Fprintln(t.w, "Gateway policy:")
		for _, l := range p {
			fmt.Fprintln(t.w, "  "+l)
		}
	}
	fmt.Fprintln(t.w)
	fmt.Fprintln(t.w, "Revisions:")
	for i := len(revs) - 1; i >= 0; i-- {
		r := &revs[i]
		ready, reason := conditionColumns(r.Status.GetCondition(api.ConditionReady))
		fmt.Fprintf(t.w, "  %s\tready=%s %s\tinstances=%d/%d\t%s\n", r.Name, ready, reason, r.Status.ActualReplicas, r.Status.DesiredReplicas, age(r.CreationTimestamp.Time))
		if r.Status.ScaleReason != "" {
			panic := ""
			if r.Status.PanicMode {
				panic = " [panic mode]"
			}
			fmt.Fprintf(t.w, "  \tlast scaling: %s%s\n", r.Status.ScaleReason, panic)
		}
	}
	fmt.Fprintln(t.w)
	fmt.Fprintln(t.w, "Conditions:")
	for _, c := range f.Status.Conditions {
		fmt.Fprintf(t.w, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
}

func sourceString(s *api.RevisionSpec) string {
	switch {
	case s.Process != nil:
		return strings.TrimSpace("exec " + s.Process.Command + " " + strings.Join(s.Process.Args, " "))
	case s.Wasm != nil:
		return "wasm " + s.Wasm.Module
	case s.Container != nil:
		return "image " + s.Container.Image
	}
	return ""
}

func ruleConditions(r api.RouteRule) string {
	var parts []string
	for _, kind := range []struct {
		prefix string
		ms     []api.StringMatch
	}{{"header:", r.Headers}, {"query:", r.Query}} {
		for _, m := range kind.ms {
			switch {
			case m.Regex != "":
				parts = append(parts, kind.prefix+m.Name+"~="+m.Regex)
			case m.Prefix != "":
				parts = append(parts, kind.prefix+m.Name+"^="+m.Prefix)
			default:
				parts = append(parts, kind.prefix+m.Name+"="+m.Exact)
			}
		}
	}
	return strings.Join(parts, ",")
}

func ruleTarget(r api.RouteRule) string {
	switch {
	case r.Tag != "":
		return "#" + r.Tag
	case r.RevisionName != "":
		return r.RevisionName
	}
	return "@latest"
}

// policyLines sums up a Function's filters and resilience settings.
func policyLines(s *api.FunctionSpec) []string {
	var out []string
	for _, f := range s.Filters {
		kind := ""
		switch {
		case f.Headers != nil:
			kind = "headers"
		case f.RateLimit != nil:
			kind = fmt.Sprintf("rate limit %g/s burst %d key %q", f.RateLimit.RequestsPerSecond, f.RateLimit.Burst, f.RateLimit.Key)
		case f.Fault != nil:
			kind = "fault injection"
		case f.Mirror != nil:
			kind = "mirror to " + f.Mirror.RevisionName + f.Mirror.Tag
		case f.CORS != nil:
			kind = "cors " + strings.Join(f.CORS.AllowOrigins, " ")
		}
		phase := f.Phase
		if phase == "" {
			phase = "-"
		}
		out = append(out, fmt.Sprintf("filter\t%s\tphase %s priority %d", kind, phase, f.Priority))
	}
	if r := s.Retries; r != nil {
		out = append(out, fmt.Sprintf("retries\t%d attempts\ton %v, per try %s", r.Attempts, r.RetryOn, cmp.Or(r.PerTryTimeout, "unbounded")))
	}
	if cb := s.CircuitBreaker; cb != nil {
		out = append(out, fmt.Sprintf("circuit breaker\tmaxRequests %d\tmaxPendingRequests %d", cb.MaxRequests, cb.MaxPendingRequests))
	}
	if od := s.OutlierDetection; od != nil {
		out = append(out, fmt.Sprintf("outlier detection\tconsecutive5xx %d\tbaseEjectionTime %s", od.Consecutive5xx, cmp.Or(od.BaseEjectionTime, "30s")))
	}
	return out
}
