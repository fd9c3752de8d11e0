package api_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/internal/kubetest"
)

var wasmPluginGVR = schema.GroupVersionResource{Group: "extensions.istio.io", Version: "v1alpha1", Resource: "wasmplugins"}

// installIstioCRD installs Istio's own WasmPlugin CRD (testdata, from
// istio.io/api v1.32.0) and waits until the apiserver serves it.
func installIstioCRD(t *testing.T, c *kubetest.Cluster) {
	t.Helper()
	ctx := t.Context()
	if err := c.Apply(ctx, "testdata/istio-wasmplugin-crd.yaml"); err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.Admin())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := dc.ServerResourcesForGroupVersion(wasmPluginGVR.GroupVersion().String())
		if err == nil {
			for _, r := range res.APIResources {
				if r.Name == wasmPluginGVR.Resource {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the apiserver does not serve %s after 30s (%v)", wasmPluginGVR, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func toUnstructured(t *testing.T, v any) *unstructured.Unstructured {
	t.Helper()
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestWasmPluginOnAPIServer checks the WasmPlugins wisp writes against
// Istio's real CRD schema (structural schema and CEL rules) on a real
// kube-apiserver, and that what the apiserver stores converts back.
func TestWasmPluginOnAPIServer(t *testing.T) {
	c := kubetest.Start(t)
	installIstioCRD(t, c)
	ctx := t.Context()
	if err := c.CreateNamespaces(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(c.Admin())
	if err != nil {
		t.Fatal(err)
	}
	plugins := dc.Resource(wasmPluginGVR).Namespace("shop")

	digest := "sha256:" + strings.Repeat("5e", 32)
	f := &api.Filter{
		ObjectMeta: metav1.ObjectMeta{Name: "api-key", Namespace: "shop", Labels: map[string]string{"team": "edge"}},
		Spec: api.FilterSpec{
			Source:       "oci://ghcr.io/acme/filters/api-key:v1",
			SHA256:       strings.Repeat("cd", 32),
			PluginName:   "api_key",
			PluginConfig: json.RawMessage(`{"header":"x-api-key","keys":["k1","k2"],"limits":{"rps":10}}`),
			VMConfig:     &api.FilterVMConfig{Env: []api.FilterEnvVar{{Name: "MODE", Value: "strict"}, {Name: "HOSTNAME", ValueFrom: api.EnvHost}}},
			Phase:        api.PhaseAuthN,
			Priority:     10,
			Selector:     &api.FilterSelector{Functions: []string{"cart"}, MatchLabels: map[string]string{"tier": "web"}},
			FailStrategy: api.FailOpen,
			PlainHTTP:    true,
		},
	}
	f.SetDefaults()
	wp, err := api.FilterToWasmPlugin(f, digest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plugins.Create(ctx, toUnstructured(t, wp), metav1.CreateOptions{}); err != nil {
		t.Fatalf("the apiserver refused the WasmPlugin: %v", err)
	}

	got, err := plugins.Get(ctx, "api-key", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	js, err := got.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var read api.WasmPlugin
	if err := json.Unmarshal(js, &read); err != nil {
		t.Fatal(err)
	}
	s := read.Spec
	pinned := "oci://ghcr.io/acme/filters/api-key:v1@" + digest
	if s.URL != pinned || "sha256:"+s.SHA256 != digest {
		t.Errorf("read back url %q sha256 %q, want %q pinned", s.URL, s.SHA256, pinned)
	}
	wantSel := map[string]string{"serving.knative.dev/service": "cart", "tier": "web"}
	if s.Selector == nil || !reflect.DeepEqual(s.Selector.MatchLabels, wantSel) {
		t.Errorf("read back selector %+v, want %v", s.Selector, wantSel)
	}
	if s.Phase != api.PhaseAuthN || s.Priority == nil || *s.Priority != 10 || s.FailStrategy != api.FailOpen {
		t.Errorf("read back phase %q priority %v failStrategy %q", s.Phase, s.Priority, s.FailStrategy)
	}
	var cfg map[string]any
	if err := json.Unmarshal(s.PluginConfig, &cfg); err != nil || cfg["header"] != "x-api-key" {
		t.Errorf("read back pluginConfig %s (%v): pruned?", s.PluginConfig, err)
	}

	// Round trip: what the apiserver stored is the Filter again, pinned.
	back, err := api.FromWasmPlugin(&read)
	if err != nil {
		t.Fatal(err)
	}
	back.SetDefaults()
	if err := back.Validate(); err != nil {
		t.Fatalf("the Filter read back is invalid: %v", err)
	}
	want := f.DeepCopy()
	want.Spec.Source = pinned
	if !reflect.DeepEqual(back.Spec, want.Spec) || !reflect.DeepEqual(back.Labels, want.Labels) || back.Name != f.Name || back.Namespace != f.Namespace {
		t.Errorf("round trip:\n got %+v %v\nwant %+v %v", back.Spec, back.Labels, want.Spec, want.Labels)
	}
	// ... and exporting it again gives the same WasmPlugin spec.
	again, err := api.FilterToWasmPlugin(back, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Spec, wp.Spec) {
		t.Errorf("exported again:\n got %+v\nwant %+v", again.Spec, wp.Spec)
	}

	// The schema is the real one: documents it forbids are refused.
	for _, c := range []struct {
		name   string
		mutate func(*api.WasmPluginSpec)
		says   string
	}{
		{"phase outside the enum", func(s *api.WasmPluginSpec) { s.Phase = "LATE" }, "spec.phase"},
		{"sha256 with a prefix", func(s *api.WasmPluginSpec) { s.SHA256 = "sha256:" + strings.Repeat("a", 64) }, "spec.sha256"},
		{"url scheme", func(s *api.WasmPluginSpec) { s.URL = "ftp://r.io/a.wasm" }, "url must have schema one of"},
		{"selector and targetRefs", func(s *api.WasmPluginSpec) {
			s.TargetRefs = []api.WasmPluginTargetRef{{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "gw"}}
		}, "only one of targetRefs or selector"},
		{"HOST with a value", func(s *api.WasmPluginSpec) {
			s.VMConfig = &api.FilterVMConfig{Env: []api.FilterEnvVar{{Name: "H", ValueFrom: api.EnvHost, Value: "x"}}}
		}, "value may only be set when valueFrom is INLINE"},
		{"pluginConfig not an object", func(s *api.WasmPluginSpec) { s.PluginConfig = json.RawMessage(`"text"`) }, "spec.pluginConfig"},
	} {
		bad := *wp
		bad.Name = "bad"
		bad.Spec.Selector = &api.WasmPluginSelector{MatchLabels: map[string]string{"tier": "web"}}
		c.mutate(&bad.Spec)
		_, err := plugins.Create(ctx, toUnstructured(t, &bad), metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: Create = %v, want Invalid saying %q", c.name, err, c.says)
		}
	}

	// Istio accepts an https:// URL, which wisp refuses by name.
	web := *wp
	web.Name = "from-the-web"
	web.Spec.URL, web.Spec.SHA256 = "https://example.com/api-key.wasm", ""
	if _, err := plugins.Create(ctx, toUnstructured(t, &web), metav1.CreateOptions{}); err != nil {
		t.Fatalf("the apiserver refused an https WasmPlugin: %v", err)
	}
	got, err = plugins.Get(ctx, "from-the-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	js, _ = got.MarshalJSON()
	if _, err := api.Decode(js); err == nil || !strings.Contains(err.Error(), "spec.url") {
		t.Errorf("Decode of an https WasmPlugin read from the apiserver = %v, want an error naming spec.url", err)
	}
}
