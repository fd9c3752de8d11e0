package api

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// validFilter is the smallest valid Filter, without defaults.
func validFilter() *Filter {
	return &Filter{
		ObjectMeta: metav1.ObjectMeta{Name: "auth"},
		Spec:       FilterSpec{Source: "oci://127.0.0.1:5000/filters/auth:v1"},
	}
}

func TestFilterValidateAccepts(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	tests := []struct {
		name   string
		mutate func(f *Filter)
	}{
		{"minimal", func(*Filter) {}},
		{"defaulted", func(f *Filter) { f.SetDefaults() }},
		{"uploaded module", func(f *Filter) { f.Spec.Source = testDigest }},
		{"uploaded module with its own sha256", func(f *Filter) { f.Spec.Source, f.Spec.SHA256 = testDigest, hex }},
		{"oci pinned by manifest digest, module sha256", func(f *Filter) {
			f.Spec.Source, f.Spec.SHA256 = "oci://ghcr.io/acme/auth@"+testDigest, hex
		}},
		{"AUTHN", func(f *Filter) { f.Spec.Phase = PhaseAuthN }},
		{"AUTHZ", func(f *Filter) { f.Spec.Phase = PhaseAuthZ }},
		{"STATS", func(f *Filter) { f.Spec.Phase = PhaseStats }},
		{"UNSPECIFIED_PHASE", func(f *Filter) { f.Spec.Phase = PhaseUnspecified }},
		{"negative priority", func(f *Filter) { f.Spec.Priority = -10 }},
		{"fail open, pull always, plain HTTP", func(f *Filter) {
			f.Spec.FailStrategy, f.Spec.ImagePullPolicy, f.Spec.PlainHTTP = FailOpen, PullAlways, true
		}},
		{"object config", func(f *Filter) { f.Spec.PluginConfig = json.RawMessage(`{"header":"x-auth","allow":["a","b"]}`) }},
		{"string config", func(f *Filter) { f.Spec.PluginConfig = json.RawMessage(`"plain text"`) }},
		{"selector by names and labels", func(f *Filter) {
			f.Spec.Selector = &FilterSelector{Functions: []string{"hello", "world"}, MatchLabels: map[string]string{"app.kubernetes.io/part-of": "shop", "tier": ""}}
		}},
		{"empty selector", func(f *Filter) { f.Spec.Selector = &FilterSelector{} }},
		{"vm env", func(f *Filter) {
			f.Spec.VMConfig = &FilterVMConfig{Env: []FilterEnvVar{{Name: "MODE", Value: "strict"}, {Name: "HOSTNAME", ValueFrom: EnvHost}, {Name: "X", ValueFrom: EnvInline}}}
		}},
		{"namespace", func(f *Filter) { f.Namespace = "team-a" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := validFilter()
			tt.mutate(f)
			if err := f.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestFilterValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(f *Filter)
		paths  []string // the field paths the error must name
		says   string   // a piece of the message
	}{
		{"no name", func(f *Filter) { f.Name = "" }, []string{"metadata.name"}, "missing field"},
		{"name not a DNS label", func(f *Filter) { f.Name = "Auth_Filter" }, []string{"metadata.name"}, "invalid value"},
		{"bad namespace", func(f *Filter) { f.Namespace = "Team A" }, []string{"metadata.namespace"}, "invalid value"},
		{"wrong kind", func(f *Filter) { f.Kind = KindFunction }, []string{"kind"}, `want "Filter"`},
		{"wrong apiVersion", func(f *Filter) { f.APIVersion = "extensions.istio.io/v1alpha1" }, []string{"apiVersion"}, "wisp.dev/v1alpha1"},
		{"no source", func(f *Filter) { f.Spec.Source = "" }, []string{"spec.source"}, "missing field"},
		{"source a local path", func(f *Filter) { f.Spec.Source = "./auth.wasm" }, []string{"spec.source"}, "--source FILE uploads"},
		{"source https URL", func(f *Filter) { f.Spec.Source = "https://example.com/auth.wasm" }, []string{"spec.source"}, "oci://"},
		{"source digest too short", func(f *Filter) { f.Spec.Source = "sha256:abc" }, []string{"spec.source"}, "64 lower-case hex"},
		{"source digest upper case", func(f *Filter) { f.Spec.Source = strings.ToUpper(testDigest) }, []string{"spec.source"}, "oci://"},
		{"oci reference without repository", func(f *Filter) { f.Spec.Source = "oci://ghcr.io" }, []string{"spec.source"}, "oci://<registry>/<repository>"},
		{"sha256 not 64 hex", func(f *Filter) { f.Spec.SHA256 = "abc" }, []string{"spec.sha256"}, "64 lower-case hex"},
		{"sha256 with prefix", func(f *Filter) { f.Spec.SHA256 = testDigest }, []string{"spec.sha256"}, "without a sha256: prefix"},
		{"sha256 against an uploaded digest", func(f *Filter) {
			f.Spec.Source, f.Spec.SHA256 = testDigest, strings.Repeat("cd", 32)
		}, []string{"spec.source", "spec.sha256"}, "differs"},
		{"bad phase", func(f *Filter) { f.Spec.Phase = "AUTH" }, []string{"spec.phase"}, "want AUTHN, AUTHZ, STATS"},
		{"lower-case phase", func(f *Filter) { f.Spec.Phase = "authn" }, []string{"spec.phase"}, "invalid value"},
		{"bad failStrategy", func(f *Filter) { f.Spec.FailStrategy = "open" }, []string{"spec.failStrategy"}, "FAIL_OPEN"},
		{"FAIL_RELOAD is Istio's, not ours", func(f *Filter) { f.Spec.FailStrategy = "FAIL_RELOAD" }, []string{"spec.failStrategy"}, "FAIL_CLOSE"},
		{"bad imagePullPolicy", func(f *Filter) { f.Spec.ImagePullPolicy = "Never" }, []string{"spec.imagePullPolicy"}, "IfNotPresent"},
		{"pluginConfig not JSON", func(f *Filter) { f.Spec.PluginConfig = json.RawMessage(`{header: x}`) }, []string{"spec.pluginConfig"}, "not valid JSON"},
		{"selector function not a name", func(f *Filter) {
			f.Spec.Selector = &FilterSelector{Functions: []string{"ok", "Not_OK"}}
		}, []string{"spec.selector.functions[1]"}, "invalid value"},
		{"selector duplicate function", func(f *Filter) {
			f.Spec.Selector = &FilterSelector{Functions: []string{"a", "b", "a"}}
		}, []string{"spec.selector.functions[0]", "spec.selector.functions[2]"}, "duplicate"},
		{"selector bad label key", func(f *Filter) {
			f.Spec.Selector = &FilterSelector{MatchLabels: map[string]string{"bad key": "v"}}
		}, []string{"spec.selector.matchLabels"}, "invalid key name"},
		{"selector bad label value", func(f *Filter) {
			f.Spec.Selector = &FilterSelector{MatchLabels: map[string]string{"tier": "not ok!"}}
		}, []string{"spec.selector.matchLabels[tier]"}, "invalid value"},
		{"vm env without name", func(f *Filter) {
			f.Spec.VMConfig = &FilterVMConfig{Env: []FilterEnvVar{{Value: "x"}}}
		}, []string{"spec.vmConfig.env[0].name"}, "missing field"},
		{"vm env bad valueFrom", func(f *Filter) {
			f.Spec.VMConfig = &FilterVMConfig{Env: []FilterEnvVar{{Name: "A", ValueFrom: "SECRET"}}}
		}, []string{"spec.vmConfig.env[0].valueFrom"}, "INLINE"},
		{"vm env HOST with a value", func(f *Filter) {
			f.Spec.VMConfig = &FilterVMConfig{Env: []FilterEnvVar{{Name: "A", ValueFrom: EnvHost, Value: "x"}}}
		}, []string{"spec.vmConfig.env[0].value"}, "must be empty"},
		{"vm env duplicate", func(f *Filter) {
			f.Spec.VMConfig = &FilterVMConfig{Env: []FilterEnvVar{{Name: "A"}, {Name: "A"}}}
		}, []string{"spec.vmConfig.env[0].name", "spec.vmConfig.env[1].name"}, "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := validFilter()
			tt.mutate(f)
			err := f.Validate()
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			var paths []string
			for _, e := range err.WrappedErrors() {
				paths = append(paths, e.Paths...)
			}
			for _, p := range tt.paths {
				if !slices.Contains(paths, p) {
					t.Errorf("error names %q, want it to name %q (error: %v)", paths, p, err)
				}
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("Validate() = %q, want it to say %q", err, tt.says)
			}
		})
	}
}

func TestFilterValidateUpdate(t *testing.T) {
	old := validFilter()
	old.SetDefaults()
	next := old.DeepCopy()
	next.Spec.Phase = PhaseAuthZ
	if err := next.ValidateUpdate(old); err != nil {
		t.Errorf("changing the phase: %v", err)
	}
	next.Namespace = "other"
	err := next.ValidateUpdate(old)
	if err == nil || !strings.Contains(err.Error(), "metadata.namespace") || !strings.Contains(err.Error(), "immutable") {
		t.Errorf("moving namespaces: %v, want metadata.namespace immutable", err)
	}
}

func TestFilterSetDefaults(t *testing.T) {
	f := validFilter()
	f.SetDefaults()
	want := FilterSpec{Source: validFilter().Spec.Source, FailStrategy: FailClose, ImagePullPolicy: PullIfNotPresent}
	if !reflect.DeepEqual(f.Spec, want) {
		t.Errorf("spec = %+v, want %+v", f.Spec, want)
	}
	if f.APIVersion != APIVersion || f.Kind != KindFilter || f.Namespace != DefaultNamespace {
		t.Errorf("type and namespace = %s %s %s", f.APIVersion, f.Kind, f.Namespace)
	}
	f.Spec.FailStrategy, f.Spec.ImagePullPolicy = FailOpen, PullAlways
	f.Spec.PluginConfig = json.RawMessage("{\n  \"a\": [1, 2]\n}")
	f.SetDefaults()
	if string(f.Spec.PluginConfig) != `{"a":[1,2]}` {
		t.Errorf("pluginConfig = %s, want it compacted", f.Spec.PluginConfig)
	}
	if f.Spec.FailStrategy != FailOpen || f.Spec.ImagePullPolicy != PullAlways {
		t.Errorf("SetDefaults overwrote set values: %+v", f.Spec)
	}
}

func TestFilterSelectorSelects(t *testing.T) {
	labels := map[string]string{"tier": "web", "team": "a"}
	tests := []struct {
		name string
		sel  *FilterSelector
		fn   string
		want bool
	}{
		{"nil selects all", nil, "x", true},
		{"empty selects all", &FilterSelector{}, "x", true},
		{"named", &FilterSelector{Functions: []string{"a", "x"}}, "x", true},
		{"not named", &FilterSelector{Functions: []string{"a"}}, "x", false},
		{"labels match", &FilterSelector{MatchLabels: map[string]string{"tier": "web"}}, "x", true},
		{"label value differs", &FilterSelector{MatchLabels: map[string]string{"tier": "db"}}, "x", false},
		{"label missing", &FilterSelector{MatchLabels: map[string]string{"env": ""}}, "x", false},
		{"named and labels match", &FilterSelector{Functions: []string{"x"}, MatchLabels: map[string]string{"team": "a"}}, "x", true},
		{"named but labels differ", &FilterSelector{Functions: []string{"x"}, MatchLabels: map[string]string{"team": "b"}}, "x", false},
	}
	for _, tt := range tests {
		if got := tt.sel.Selects(tt.fn, labels); got != tt.want {
			t.Errorf("%s: Selects = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestFilterPluginConfigBytes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"null", ""},
		{`{"a":1}`, `{"a":1}`},
		{`"allow \"all\""`, `allow "all"`},
		{`[1,2]`, `[1,2]`},
	} {
		s := FilterSpec{PluginConfig: json.RawMessage(c.in)}
		if got := string(s.PluginConfigBytes()); got != c.want {
			t.Errorf("PluginConfigBytes(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFilterDeepCopy(t *testing.T) {
	orig := new(Filter)
	fill(reflect.ValueOf(orig).Elem(), 0)
	got := orig.DeepCopy()
	if !reflect.DeepEqual(got, orig) {
		t.Fatalf("DeepCopy() =\n%s\nwant\n%s", mustMarshal(got), mustMarshal(orig))
	}
	assertNoSharing(t, reflect.ValueOf(orig), reflect.ValueOf(got), "Filter")
	if (*Filter)(nil).DeepCopy() != nil {
		t.Error("DeepCopy of nil is not nil")
	}
}

func TestDecodeFilter(t *testing.T) {
	const doc = `apiVersion: wisp.dev/v1alpha1
kind: Filter
metadata:
  name: auth
  namespace: shop
spec:
  source: oci://127.0.0.1:5000/filters/auth:v1
  phase: AUTHN
  priority: 10
  pluginConfig:
    header: x-api-key
    keys: [a, b]
  selector:
    matchLabels: {tier: web}
`
	objs, err := Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	f, ok := objs[0].(*Filter)
	if len(objs) != 1 || !ok {
		t.Fatalf("Decode() = %#v, want one *Filter", objs)
	}
	f.SetDefaults()
	if err := f.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if f.Namespace != "shop" || f.Spec.Phase != PhaseAuthN || f.Spec.Priority != 10 || f.Spec.Selector.MatchLabels["tier"] != "web" {
		t.Errorf("decoded %+v", f)
	}
	if got := string(f.Spec.PluginConfig); got != `{"header":"x-api-key","keys":["a","b"]}` {
		t.Errorf("pluginConfig = %s, want the YAML as JSON", got)
	}
	if gvk := f.GroupVersionKind(); gvk.Kind != KindFilter || gvk.GroupVersion().String() != APIVersion {
		t.Errorf("GroupVersionKind() = %v", gvk)
	}

	_, err = Decode([]byte(strings.Replace(doc, "phase:", "phaze:", 1)))
	if err == nil || !strings.Contains(err.Error(), `unknown field "spec.phaze"`) {
		t.Errorf("unknown field: %v, want it named", err)
	}
}

func TestCompareFilters(t *testing.T) {
	mk := func(ns, name, phase string, prio int32) *Filter {
		return &Filter{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: FilterSpec{Phase: phase, Priority: prio}}
	}
	want := []*Filter{
		mk("a", "authn-high", PhaseAuthN, 10),
		mk("a", "authn-low", PhaseAuthN, -1),
		mk("a", "authz", PhaseAuthZ, 0),
		mk("a", "stats", PhaseStats, 100),
		mk("a", "b-unspecified", "", 5),
		mk("a", "a-unspecified", PhaseUnspecified, 0),
		mk("a", "b-unspecified-0", "", 0),
		mk("b", "a-unspecified-0", "", 0),
	}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, CompareFilters)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("position %d: %s/%s, want %s/%s", i, got[i].Namespace, got[i].Name, want[i].Namespace, want[i].Name)
		}
	}
}
