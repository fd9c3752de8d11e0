package api

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
)

// fullFilter sets every field a WasmPlugin carries, its source pinned.
func fullFilter() *Filter {
	return &Filter{
		TypeMeta: metav1.TypeMeta{APIVersion: APIVersion, Kind: KindFilter},
		ObjectMeta: metav1.ObjectMeta{
			Name: "api-key", Namespace: "shop",
			Labels:      map[string]string{"team": "edge"},
			Annotations: map[string]string{"owner": "ops"},
		},
		Spec: FilterSpec{
			Source:          "oci://127.0.0.1:5000/filters/api-key:v1@" + testDigest,
			SHA256:          strings.Repeat("cd", 32),
			PluginName:      "api_key",
			PluginConfig:    json.RawMessage(`{"header":"x-api-key","keys":["k1","k2"]}`),
			VMConfig:        &FilterVMConfig{Env: []FilterEnvVar{{Name: "MODE", Value: "strict"}, {Name: "HOSTNAME", ValueFrom: EnvHost}}},
			Phase:           PhaseAuthN,
			Priority:        10,
			Selector:        &FilterSelector{Functions: []string{"cart"}, MatchLabels: map[string]string{"tier": "web"}},
			FailStrategy:    FailOpen,
			ImagePullPolicy: PullAlways,
			PlainHTTP:       true,
		},
	}
}

func TestFilterToWasmPlugin(t *testing.T) {
	f := fullFilter()
	wp, err := FilterToWasmPlugin(f, "")
	if err != nil {
		t.Fatal(err)
	}
	s := wp.Spec
	if wp.APIVersion != WasmPluginAPIVersion || wp.Kind != KindWasmPlugin || wp.Name != "api-key" || wp.Namespace != "shop" {
		t.Errorf("type and object meta: %+v %+v", wp.TypeMeta, wp.ObjectMeta)
	}
	if s.URL != f.Spec.Source || s.SHA256 != strings.TrimPrefix(testDigest, "sha256:") {
		t.Errorf("url %q sha256 %q: want the pinned source and its manifest digest", s.URL, s.SHA256)
	}
	wantAnn := map[string]string{"owner": "ops", AnnotationModuleSHA256: f.Spec.SHA256, AnnotationPlainHTTP: "true"}
	if !reflect.DeepEqual(wp.Annotations, wantAnn) {
		t.Errorf("annotations = %v, want %v", wp.Annotations, wantAnn)
	}
	wantSel := map[string]string{"tier": "web", "serving.knative.dev/service": "cart"}
	if s.Selector == nil || !reflect.DeepEqual(s.Selector.MatchLabels, wantSel) {
		t.Errorf("selector = %+v, want matchLabels %v", s.Selector, wantSel)
	}
	if s.Phase != PhaseAuthN || s.Priority == nil || *s.Priority != 10 || s.FailStrategy != FailOpen ||
		s.ImagePullPolicy != PullAlways || s.PluginName != "api_key" || s.Type != "" {
		t.Errorf("spec = %+v", s)
	}
	if string(s.PluginConfig) != string(f.Spec.PluginConfig) || !reflect.DeepEqual(s.VMConfig, f.Spec.VMConfig) {
		t.Errorf("pluginConfig %s vmConfig %+v", s.PluginConfig, s.VMConfig)
	}
	// The conversion copies: editing the WasmPlugin leaves the Filter alone.
	s.VMConfig.Env[0].Value = "lax"
	wp.Labels["team"] = "x"
	if f.Spec.VMConfig.Env[0].Value != "strict" || f.Labels["team"] != "edge" {
		t.Error("the WasmPlugin shares memory with the Filter")
	}

	js, err := json.Marshal(wp)
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{`"status"`, `"targetRefs"`, `"match"`, `"type"`, `"imagePullSecret"`} {
		if strings.Contains(string(js), absent) {
			t.Errorf("JSON holds %s: %s", absent, js)
		}
	}
}

func TestFilterToWasmPluginPins(t *testing.T) {
	other := "sha256:" + strings.Repeat("12", 32)
	for _, c := range []struct {
		name, source, digest, wantURL string
	}{
		{"tag pinned", "oci://ghcr.io/acme/auth:v1", testDigest, "oci://ghcr.io/acme/auth:v1@" + testDigest},
		{"no tag pinned", "oci://127.0.0.1:5000/auth", testDigest, "oci://127.0.0.1:5000/auth@" + testDigest},
		{"already pinned", "oci://ghcr.io/acme/auth@" + testDigest, "", "oci://ghcr.io/acme/auth@" + testDigest},
		{"already pinned, same digest given", "oci://ghcr.io/acme/auth:v1@" + testDigest, testDigest, "oci://ghcr.io/acme/auth:v1@" + testDigest},
	} {
		f := validFilter()
		f.Spec.Source = c.source
		wp, err := FilterToWasmPlugin(f, c.digest)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if wp.Spec.URL != c.wantURL || "sha256:"+wp.Spec.SHA256 != testDigest {
			t.Errorf("%s: url %q sha256 %q, want %q", c.name, wp.Spec.URL, wp.Spec.SHA256, c.wantURL)
		}
	}

	for _, c := range []struct {
		name   string
		mutate func(*Filter)
		digest string
		paths  []string
		msg    string
	}{
		{"unpinned tag", func(*Filter) {}, "", []string{"spec.source"}, "names no fixed module"},
		{"pinned elsewhere", func(f *Filter) { f.Spec.Source = "oci://ghcr.io/acme/auth@" + testDigest }, other, []string{"spec.source"}, "pinned to " + testDigest},
		{"bad digest", func(*Filter) {}, "sha256:abc", []string{"spec.source"}, "64 lower-case hex"},
		{"uploaded module", func(f *Filter) { f.Spec.Source = testDigest }, "", []string{"spec.source"}, "Istio cannot fetch it"},
		{"several functions", func(f *Filter) { f.Spec.Selector = &FilterSelector{Functions: []string{"a", "b"}} }, testDigest,
			[]string{"spec.selector.functions"}, "at most one function"},
		{"function and a contrary service label", func(f *Filter) {
			f.Spec.Selector = &FilterSelector{Functions: []string{"a"}, MatchLabels: map[string]string{"serving.knative.dev/service": "b"}}
		}, testDigest, []string{"spec.selector.functions", "spec.selector.matchLabels"}, "selects nothing"},
		{"string config", func(f *Filter) { f.Spec.PluginConfig = json.RawMessage(`"plain text"`) }, testDigest, []string{"spec.pluginConfig"}, "JSON object"},
		{"array config", func(f *Filter) { f.Spec.PluginConfig = json.RawMessage(`[1]`) }, testDigest, []string{"spec.pluginConfig"}, "JSON object"},
		{"invalid spec", func(f *Filter) { f.Spec.Phase = "LATE" }, testDigest, []string{"spec.phase"}, "invalid value"},
	} {
		f := validFilter()
		c.mutate(f)
		_, err := FilterToWasmPlugin(f, c.digest)
		checkFieldError(t, c.name, err, c.paths, c.msg)
	}
}

// checkFieldError checks that err wraps an *apis.FieldError naming paths
// and saying msg.
func checkFieldError(t *testing.T, name string, err error, paths []string, msg string) {
	t.Helper()
	var fe *apis.FieldError
	if !errors.As(err, &fe) {
		t.Errorf("%s: error %v, want an *apis.FieldError", name, err)
		return
	}
	// A merged FieldError keeps its paths in the errors it merged, sorted.
	if want := ": " + strings.Join(slices.Sorted(slices.Values(paths)), ", "); !strings.Contains(err.Error(), want+"\n") && !strings.HasSuffix(err.Error(), want) {
		t.Errorf("%s: %q does not name the paths %v", name, err, paths)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("%s: %q does not say %q", name, err, msg)
	}
}

func TestWasmPluginRoundTrip(t *testing.T) {
	f := fullFilter()
	wp, err := FilterToWasmPlugin(f, "")
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromWasmPlugin(wp)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, f) {
		t.Errorf("Filter → WasmPlugin → Filter:\n got %+v\nwant %+v", back, f)
	}
	again, err := FilterToWasmPlugin(back, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, wp) {
		t.Errorf("WasmPlugin → Filter → WasmPlugin:\n got %+v\nwant %+v", again, wp)
	}

	// The smallest Filter: no selector, no annotations, no config.
	min := validFilter()
	min.Spec.Source += "@" + testDigest
	min.TypeMeta = metav1.TypeMeta{APIVersion: APIVersion, Kind: KindFilter}
	wp, err = FilterToWasmPlugin(min, "")
	if err != nil {
		t.Fatal(err)
	}
	if wp.Spec.Selector != nil || wp.Annotations != nil || wp.Spec.Priority != nil || wp.Spec.PluginConfig != nil {
		t.Errorf("minimal WasmPlugin %+v", wp)
	}
	if back, err = FromWasmPlugin(wp); err != nil || !reflect.DeepEqual(back, min) {
		t.Errorf("minimal round trip: %+v, %v; want %+v", back, err, min)
	}
}

func TestFromWasmPlugin(t *testing.T) {
	hex := strings.TrimPrefix(testDigest, "sha256:")
	for _, c := range []struct {
		name   string
		mutate func(*WasmPluginSpec)
		check  func(*FilterSpec) bool
	}{
		{"no scheme is oci://", func(s *WasmPluginSpec) { s.URL = "ghcr.io/acme/auth:v1" },
			func(f *FilterSpec) bool { return f.Source == "oci://ghcr.io/acme/auth:v1" && f.ImagePullPolicy == "" }},
		{"sha256 pins the tag", func(s *WasmPluginSpec) { s.SHA256 = hex },
			func(f *FilterSpec) bool {
				return f.Source == "oci://ghcr.io/acme/auth:v1@"+testDigest && f.SHA256 != hex // the manifest digest is not the module's
			}},
		{"sha256 equal to the url's digest", func(s *WasmPluginSpec) { s.URL, s.SHA256 = "oci://ghcr.io/acme/auth@"+testDigest, hex },
			func(f *FilterSpec) bool { return f.Source == "oci://ghcr.io/acme/auth@"+testDigest }},
		{"latest by default is pulled always", func(s *WasmPluginSpec) { s.URL = "oci://127.0.0.1:5000/acme/auth" },
			func(f *FilterSpec) bool { return f.ImagePullPolicy == PullAlways }},
		{"latest with a pull policy keeps it", func(s *WasmPluginSpec) { s.URL, s.ImagePullPolicy = "oci://ghcr.io/acme/auth:latest", PullIfNotPresent },
			func(f *FilterSpec) bool { return f.ImagePullPolicy == PullIfNotPresent }},
		{"latest pinned keeps the default", func(s *WasmPluginSpec) {
			s.URL, s.ImagePullPolicy = "oci://ghcr.io/acme/auth:latest@"+testDigest, PullUnspecified
		},
			func(f *FilterSpec) bool { return f.ImagePullPolicy == "" }},
		{"FAIL_RELOAD is FAIL_CLOSE", func(s *WasmPluginSpec) { s.FailStrategy = FailReload },
			func(f *FilterSpec) bool { return f.FailStrategy == FailClose }},
		{"UNSPECIFIED_PHASE is empty", func(s *WasmPluginSpec) { s.Phase = PhaseUnspecified },
			func(f *FilterSpec) bool { return f.Phase == "" }},
		{"type HTTP", func(s *WasmPluginSpec) { s.Type = PluginTypeHTTP }, func(*FilterSpec) bool { return true }},
		{"imagePullSecret and verificationKey are ignored", func(s *WasmPluginSpec) { s.ImagePullSecret, s.VerificationKey = "pull", "key" },
			func(f *FilterSpec) bool { return f.Source == "oci://ghcr.io/acme/auth:v1" }},
		{"service label alone", func(s *WasmPluginSpec) {
			s.Selector = &WasmPluginSelector{MatchLabels: map[string]string{"serving.knative.dev/service": "cart"}}
		}, func(f *FilterSpec) bool {
			return f.Selector != nil && reflect.DeepEqual(f.Selector.Functions, []string{"cart"}) && f.Selector.MatchLabels == nil
		}},
		{"empty selector", func(s *WasmPluginSpec) { s.Selector = &WasmPluginSelector{} },
			func(f *FilterSpec) bool { return f.Selector == nil }},
		{"the module sha256 annotation is the spec's", func(s *WasmPluginSpec) {}, func(f *FilterSpec) bool { return f.SHA256 == strings.Repeat("cd", 32) }},
	} {
		wp := &WasmPlugin{
			ObjectMeta: metav1.ObjectMeta{Name: "auth", Annotations: map[string]string{
				AnnotationModuleSHA256:                             strings.Repeat("cd", 32),
				"kubectl.kubernetes.io/last-applied-configuration": `{"kind":"WasmPlugin"}`,
			}},
			Spec: WasmPluginSpec{URL: "oci://ghcr.io/acme/auth:v1"},
		}
		c.mutate(&wp.Spec)
		f, err := FromWasmPlugin(wp)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if f.Annotations != nil {
			t.Errorf("%s: annotations %v, want those of the WasmPlugin's spec and kubectl's dropped", c.name, f.Annotations)
		}
		if !c.check(&f.Spec) {
			t.Errorf("%s: spec %+v", c.name, f.Spec)
		}
		f.SetDefaults()
		if err := f.Validate(); err != nil {
			t.Errorf("%s: the Filter is invalid: %v", c.name, err)
		}
	}
}

func TestFromWasmPluginRefuses(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(*WasmPlugin)
		paths  []string
		msg    string
	}{
		{"no url", func(wp *WasmPlugin) { wp.Spec.URL = "" }, []string{"spec.url"}, "missing field"},
		{"http", func(wp *WasmPlugin) { wp.Spec.URL = "http://example.com/auth.wasm" }, []string{"spec.url"}, "http:// URL"},
		{"https", func(wp *WasmPlugin) { wp.Spec.URL = "https://example.com/auth.wasm" }, []string{"spec.url"}, "OCI registries only"},
		{"file", func(wp *WasmPlugin) { wp.Spec.URL = "file:///opt/auth.wasm" }, []string{"spec.url"}, "file:// URL"},
		{"other scheme", func(wp *WasmPlugin) { wp.Spec.URL = "ftp://x/y" }, []string{"spec.url"}, "want oci://"},
		{"no registry", func(wp *WasmPlugin) { wp.Spec.URL = "oci://auth" }, []string{"spec.url"}, "with the registry"},
		{"bad sha256", func(wp *WasmPlugin) { wp.Spec.SHA256 = "sha256:" + strings.Repeat("a", 64) }, []string{"spec.sha256"}, "64 lower-case hex"},
		{"sha256 differs from the url's digest", func(wp *WasmPlugin) {
			wp.Spec.URL, wp.Spec.SHA256 = "oci://ghcr.io/acme/auth@"+testDigest, strings.Repeat("0", 64)
		}, []string{"spec.url", "spec.sha256"}, "Istio requires them equal"},
		{"targetRefs", func(wp *WasmPlugin) {
			wp.Spec.TargetRefs = []WasmPluginTargetRef{{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "gw"}}
		}, []string{"spec.targetRefs"}, "not supported by wisp: targetRefs"},
		{"targetRef", func(wp *WasmPlugin) { wp.Spec.TargetRef = &WasmPluginTargetRef{Kind: "Service", Name: "cart"} }, []string{"spec.targetRef"}, "by its selector"},
		{"match", func(wp *WasmPlugin) {
			wp.Spec.Match = []WasmPluginTrafficSelector{{Mode: "SERVER", Ports: []WasmPluginPortSelector{{Number: 8080}}}}
		}, []string{"spec.match"}, "direction or port"},
		{"NETWORK", func(wp *WasmPlugin) { wp.Spec.Type = PluginTypeNetwork }, []string{"spec.type"}, "HTTP (layer-7) filters only"},
		{"array config", func(wp *WasmPlugin) { wp.Spec.PluginConfig = json.RawMessage(`["a"]`) }, []string{"spec.pluginConfig"}, "JSON object"},
		{"bad phase", func(wp *WasmPlugin) { wp.Spec.Phase = "LATE" }, []string{"spec.phase"}, "want AUTHN"},
		{"bad fail strategy", func(wp *WasmPlugin) { wp.Spec.FailStrategy = "FAIL_SLOWLY" }, []string{"spec.failStrategy"}, "FAIL_RELOAD"},
		{"bad pull policy", func(wp *WasmPlugin) { wp.Spec.ImagePullPolicy = "Never" }, []string{"spec.imagePullPolicy"}, "UNSPECIFIED_POLICY"},
		{"bad module sha256 annotation", func(wp *WasmPlugin) { wp.Annotations = map[string]string{AnnotationModuleSHA256: "x"} },
			[]string{"metadata.annotations[wisp.dev/module-sha256]"}, "module's sha256"},
		{"bad plain-http annotation", func(wp *WasmPlugin) { wp.Annotations = map[string]string{AnnotationPlainHTTP: "yes"} },
			[]string{"metadata.annotations[wisp.dev/plain-http]"}, `"true"`},
	} {
		wp := &WasmPlugin{ObjectMeta: metav1.ObjectMeta{Name: "auth"}, Spec: WasmPluginSpec{URL: "oci://ghcr.io/acme/auth:v1"}}
		c.mutate(wp)
		_, err := FromWasmPlugin(wp)
		checkFieldError(t, c.name, err, c.paths, c.msg)
		if err != nil && !strings.Contains(err.Error(), `WasmPlugin "auth"`) {
			t.Errorf("%s: %q does not name the WasmPlugin", c.name, err)
		}
	}
}

func TestDecodeWasmPlugin(t *testing.T) {
	data, err := os.ReadFile("testdata/wasmplugin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("%d objects, want 1", len(objs))
	}
	f, ok := objs[0].(*Filter)
	if !ok {
		t.Fatalf("decoded a %T, want *Filter", objs[0])
	}
	hex := "5b1ed2e2bc4fdd9a8f3c2d7e6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a"
	want := &Filter{
		TypeMeta:   metav1.TypeMeta{APIVersion: APIVersion, Kind: KindFilter},
		ObjectMeta: metav1.ObjectMeta{Name: "api-key", Namespace: "shop", Labels: map[string]string{"team": "edge"}},
		Spec: FilterSpec{
			Source:          "oci://ghcr.io/acme/filters/api-key:v1@sha256:" + hex,
			ImagePullPolicy: PullIfNotPresent,
			Phase:           PhaseAuthN,
			Priority:        10,
			PluginName:      "api_key",
			PluginConfig:    json.RawMessage(`{"header":"x-api-key","keys":["k1","k2"]}`),
			FailStrategy:    FailOpen,
			VMConfig:        &FilterVMConfig{Env: []FilterEnvVar{{Name: "MODE", Value: "strict"}, {Name: "HOSTNAME", ValueFrom: EnvHost}}},
			Selector:        &FilterSelector{Functions: []string{"cart"}, MatchLabels: map[string]string{"tier": "web"}},
		},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("decoded\n %+v\nwant\n %+v", f, want)
	}
	f.SetDefaults()
	if err := f.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}

	// Decoding is as strict as for wisp's own kinds, and refusals name
	// the document and the WasmPlugin's field.
	head := "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: w\nspec:\n"
	for _, c := range []struct{ doc, want string }{
		{head + "  url: oci://r.io/a:v1\n  urll: x\n", `unknown field "spec.urll"`},
		{head + "  url: https://r.io/a.wasm\n", "document 1 (line 1): converting Istio WasmPlugin \"w\": not supported by wisp: a https:// URL"},
		{head + "  url: oci://r.io/a:v1\n  priority: high\n", "cannot unmarshal string"},
	} {
		_, err := Decode([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Decode(%q) = %v, want %q", c.doc, err, c.want)
		}
	}
}
