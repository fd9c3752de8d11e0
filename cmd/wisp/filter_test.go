package main

import (
	"bytes"
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
