package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/functions/oci"
)

// editFilter runs filterFlags.apply on f with the command-line args.
func editFilter(t *testing.T, f *api.Filter, args ...string) error {
	t.Helper()
	var ff filterFlags
	c := &cobra.Command{}
	ff.register(c.Flags())
	if err := c.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	return ff.apply(c.Flags(), f, ff.source)
}

func TestFilterFlagsEditOnlyWhatIsGiven(t *testing.T) {
	f := &api.Filter{Spec: api.FilterSpec{
		Source: "oci://r.io/a:v1", Phase: api.PhaseAuthN, Priority: 3, FailStrategy: api.FailClose,
		Selector: &api.FilterSelector{Functions: []string{"a", "b"}, MatchLabels: map[string]string{"tier": "web"}},
		VMConfig: &api.FilterVMConfig{Env: []api.FilterEnvVar{{Name: "H", ValueFrom: api.EnvHost}, {Name: "A", Value: "1"}}},
	}}
	err := editFilter(t, f, "--function", "b-", "--function", "c", "--selector", "tier-", "--fail-strategy", "open",
		"--phase", "unspecified", "--env", "A-", "--env", "B=2", "--sha256", "sha256:"+strings.Repeat("a", 64))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Spec
	if s.Source != "oci://r.io/a:v1" || s.Priority != 3 {
		t.Errorf("flags not given changed the spec: %+v", s)
	}
	if strings.Join(s.Selector.Functions, ",") != "a,c" || len(s.Selector.MatchLabels) != 0 {
		t.Errorf("selector = %+v, want functions a,c and no labels", s.Selector)
	}
	if s.FailStrategy != api.FailOpen || s.Phase != "" || s.SHA256 != strings.Repeat("a", 64) {
		t.Errorf("failStrategy %q phase %q sha256 %q", s.FailStrategy, s.Phase, s.SHA256)
	}
	want := []api.FilterEnvVar{{Name: "H", ValueFrom: api.EnvHost}, {Name: "B", Value: "2"}}
	if len(s.VMConfig.Env) != 2 || s.VMConfig.Env[0] != want[0] || s.VMConfig.Env[1] != want[1] {
		t.Errorf("env = %+v, want %+v (HOST kept)", s.VMConfig.Env, want)
	}

	// Removing the last criterion leaves no selector: every function.
	if err := editFilter(t, f, "--function", "a-", "--function", "c-"); err != nil || f.Spec.Selector != nil {
		t.Errorf("empty selector = %+v, %v; want nil", f.Spec.Selector, err)
	}
	for _, bad := range [][]string{{"--phase", "auth"}, {"--fail-strategy", "maybe"}, {"--pull-policy", "never"}, {"--config", "{x}"}, {"--selector", "novalue"}} {
		if err := editFilter(t, f, bad...); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: %v, want an error naming %s", bad, err, bad[0])
		}
	}
}

func TestReadConfig(t *testing.T) {
	yamlFile := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(yamlFile, []byte("header: x-key\nkeys: [a, b]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, want string }{
		{`{"a": 1}`, `{"a": 1}`},
		{`"plain"`, `"plain"`},
		{"@" + yamlFile, `{"header":"x-key","keys":["a","b"]}`},
		{"", ""},
	} {
		got, err := readConfig(c.in)
		if err != nil || string(got) != c.want {
			t.Errorf("readConfig(%q) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	if _, err := readConfig("@/no/such/file"); err == nil {
		t.Error("a missing @FILE is not an error")
	}
}

func TestProgressBars(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressBars(&buf)
	d := "sha256:" + strings.Repeat("ab", 32)
	p.report(oci.ProgressEvent{Digest: d, MediaType: "application/wasm", Done: 0, Total: 2048})
	p.report(oci.ProgressEvent{Digest: d, MediaType: "application/wasm", Done: 1024, Total: 2048}) // within 100ms: not drawn
	p.report(oci.ProgressEvent{Digest: d, MediaType: "application/wasm", Done: 2048, Total: 2048})
	p.report(oci.ProgressEvent{Digest: d, MediaType: "application/wasm", Done: 2048, Total: 2048}) // already complete
	got := buf.String()
	if strings.Count(got, "\r") != 2 || strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
		t.Errorf("drawn %q; want two draws and one ended line", got)
	}
	if !strings.Contains(got, "abababababab [") || !strings.Contains(got, "100% 2.0KiB/2.0KiB  application/wasm") || !strings.Contains(got, "  0% 0B/2.0KiB") {
		t.Errorf("bars %q", got)
	}
}

func TestIstioReads(t *testing.T) {
	two := []oci.Descriptor{{}, {}}
	for _, c := range []struct {
		info oci.Info
		want string
	}{
		{oci.Info{Format: oci.FormatModule, Layers: two}, "yes"},
		{oci.Info{Format: oci.FormatImage}, "yes, as an image"},
		{oci.Info{Format: oci.FormatModule, Layers: two[:1]}, "no: 1 layers, Istio wants exactly 2"},
		{oci.Info{Format: oci.FormatWasm, Layers: two[:1]}, "no: Istio reads"},
		{oci.Info{Format: oci.FormatRaw, Layers: two[:1]}, "no: Istio reads"},
	} {
		if got := istioReads(c.info); !strings.HasPrefix(got, c.want) {
			t.Errorf("istioReads(%s, %d layers) = %q, want %q...", c.info.Format, len(c.info.Layers), got, c.want)
		}
	}
}

func TestExportFilter(t *testing.T) {
	manifest := "sha256:" + strings.Repeat("5e", 32)
	stored := func() *api.Filter {
		f := &api.Filter{Spec: api.FilterSpec{
			Source: "oci://127.0.0.1:5000/filters/auth:v1", Phase: api.PhaseAuthN, PlainHTTP: true,
			Selector: &api.FilterSelector{Functions: []string{"cart"}},
		}}
		f.Name, f.Namespace, f.ResourceVersion, f.UID = "auth", "shop", "7", "u-1"
		f.Status.MarkReady("sha256:" + strings.Repeat("cd", 32))
		f.SetDefaults()
		return f
	}
	var asked []string
	inspect := func(info oci.Info, err error) inspectFunc {
		return func(_ context.Context, ref string, plainHTTP bool) (oci.Info, error) {
			asked = append(asked, fmt.Sprintf("%s plain=%v", ref, plainHTTP))
			return info, err
		}
	}
	two := []oci.Descriptor{{}, {}}
	istioLayout := oci.Info{ManifestDigest: manifest, Format: oci.FormatModule, Layers: two}

	// wisp: the Filter without status or server-set metadata.
	obj, err := exportFilter(t.Context(), stored(), "wisp", inspect(istioLayout, nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	out, err := renderManifest(obj, "yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"status", "resourceVersion", "uid", "creationTimestamp"} {
		if strings.Contains(string(out), absent) {
			t.Errorf("wisp export holds %s:\n%s", absent, out)
		}
	}
	if objs, err := api.Decode(out); err != nil || len(objs) != 1 || objs[0].(*api.Filter).Spec.Source != stored().Spec.Source {
		t.Errorf("the wisp export does not decode to the Filter: %v, %v", objs, err)
	}
	if len(asked) != 0 {
		t.Errorf("the wisp export asked the registry: %v", asked)
	}

	// istio: pinned to the digest the registry gives, over plain HTTP as the Filter says.
	var warn bytes.Buffer
	obj, err = exportFilter(t.Context(), stored(), "istio", inspect(istioLayout, nil), &warn)
	if err != nil {
		t.Fatal(err)
	}
	wp := obj.(*api.WasmPlugin)
	if want := "oci://127.0.0.1:5000/filters/auth:v1@" + manifest; wp.Spec.URL != want {
		t.Errorf("url = %q, want %q", wp.Spec.URL, want)
	}
	if len(asked) != 1 || asked[0] != "oci://127.0.0.1:5000/filters/auth:v1 plain=true" || warn.Len() != 0 {
		t.Errorf("asked %v, warned %q", asked, warn.String())
	}
	out, err = renderManifest(obj, "yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"apiVersion: extensions.istio.io/v1alpha1\n", "kind: WasmPlugin\n", "serving.knative.dev/service: cart", "phase: AUTHN", "wisp.dev/plain-http: \"true\""} {
		if !strings.Contains(string(out), want) {
			t.Errorf("istio export lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "status") || strings.Contains(string(out), "creationTimestamp") {
		t.Errorf("istio export holds status or creationTimestamp:\n%s", out)
	}
	// ... and wisp apply reads it back as the pinned Filter.
	objs, err := api.Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	if back := objs[0].(*api.Filter); back.Spec.Source != wp.Spec.URL || !back.Spec.PlainHTTP || back.Name != "auth" || back.Namespace != "shop" {
		t.Errorf("read back %+v", back)
	}
	js, err := renderManifest(obj, "json")
	if err != nil || !json.Valid(js) {
		t.Errorf("json export %s, %v", js, err)
	}

	// A pinned source needs no registry.
	asked = nil
	f := stored()
	f.Spec.Source += "@" + manifest
	if _, err := exportFilter(t.Context(), f, "istio", inspect(oci.Info{}, errors.New("unreachable")), io.Discard); err != nil || len(asked) != 0 {
		t.Errorf("pinned source: %v, asked %v", err, asked)
	}

	// An index of one manifest pins to that manifest; of two, refused.
	child := "sha256:" + strings.Repeat("77", 32)
	obj, err = exportFilter(t.Context(), stored(), "istio", inspect(oci.Info{ManifestDigest: manifest, Manifests: []oci.Descriptor{{Digest: child}}}, nil), io.Discard)
	if err != nil || !strings.HasSuffix(obj.(*api.WasmPlugin).Spec.URL, "@"+child) {
		t.Errorf("index of one: %v, %v", obj, err)
	}
	for _, c := range []struct {
		name   string
		f      func() *api.Filter
		format string
		info   oci.Info
		err    error
		want   string
	}{
		{"index of two", stored, "istio", oci.Info{ManifestDigest: manifest, Manifests: []oci.Descriptor{{}, {}}}, nil, "image index of 2 manifests"},
		{"registry error", stored, "istio", oci.Info{}, errors.New("connection refused"), "pinning filter auth's source oci://127.0.0.1:5000/filters/auth:v1 to a digest: connection refused"},
		{"uploaded module", func() *api.Filter { f := stored(); f.Spec.Source = "sha256:" + strings.Repeat("cd", 32); return f }, "istio", istioLayout, nil, "wisp plugin push"},
		{"several functions", func() *api.Filter {
			f := stored()
			f.Spec.Selector.Functions = []string{"a", "b"}
			return f
		}, "istio", istioLayout, nil, "spec.selector.functions"},
		{"unknown format", stored, "envoy", istioLayout, nil, `--format "envoy"`},
	} {
		if _, err := exportFilter(t.Context(), c.f(), c.format, inspect(c.info, c.err), io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}

	// A layout Istio cannot read is exported, with a warning.
	warn.Reset()
	raw := oci.Info{ManifestDigest: manifest, Format: oci.FormatWasm, Layers: two[:1]}
	if _, err := exportFilter(t.Context(), stored(), "istio", inspect(raw, nil), &warn); err != nil || !strings.Contains(warn.String(), "Warning: Istio cannot read") {
		t.Errorf("wasm layout: %v, warned %q", err, warn.String())
	}
}
