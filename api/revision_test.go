package api

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRevisionTemplateHash(t *testing.T) {
	base := validFunction().Spec.Template
	// A change to the canonical form re-cuts every Revision on upgrade:
	// update this value only on purpose.
	const golden = "8b0db837d79f9913"
	if got := base.Hash(); got != golden {
		t.Fatalf("Hash() = %q, want %q", got, golden)
	}
	before := base.DeepCopy()
	base.Hash()
	if !reflect.DeepEqual(&base, before) {
		t.Fatal("Hash() modified the template")
	}

	same := []struct {
		name   string
		mutate func(tp *RevisionTemplate)
	}{
		{"defaults spelled out", func(tp *RevisionTemplate) {
			tp.Spec.TimeoutSeconds = new(DefaultTimeoutSeconds)
			tp.Spec.ContainerConcurrency = new(DefaultContainerConcurrency)
		}},
		{"empty maps", func(tp *RevisionTemplate) { tp.Metadata.Labels = map[string]string{} }},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			tp := base.DeepCopy()
			tt.mutate(tp)
			if got := tp.Hash(); got != golden {
				t.Fatalf("Hash() = %q, want %q", got, golden)
			}
		})
	}

	changed := []struct {
		name   string
		mutate func(tp *RevisionTemplate)
	}{
		{"module", func(tp *RevisionTemplate) { tp.Spec.Wasm.Module = "oci://r.example/m:v1" }},
		{"abi", func(tp *RevisionTemplate) { tp.Spec.Wasm.ABI = ABIWagi }},
		{"env", func(tp *RevisionTemplate) { tp.Spec.Env = []EnvVar{{Name: "A", Value: "1"}} }},
		{"timeout", func(tp *RevisionTemplate) { tp.Spec.TimeoutSeconds = new(int64(10)) }},
		{"label", func(tp *RevisionTemplate) { tp.Metadata.Labels = map[string]string{"a": "b"} }},
		{"annotation", func(tp *RevisionTemplate) { tp.Metadata.Annotations = map[string]string{AnnotationMinScale: "1"} }},
		{"name", func(tp *RevisionTemplate) { tp.Metadata.Name = "hello-v2" }},
	}
	seen := map[string]string{golden: "base"}
	for _, tt := range changed {
		t.Run(tt.name, func(t *testing.T) {
			tp := base.DeepCopy()
			tt.mutate(tp)
			h := tp.Hash()
			if len(h) != 16 {
				t.Fatalf("Hash() = %q, want 16 hex digits", h)
			}
			if other, dup := seen[h]; dup {
				t.Fatalf("Hash() = %q, the same as for %s", h, other)
			}
			seen[h] = tt.name
		})
	}
}

func TestRevisionName(t *testing.T) {
	if got := RevisionName("hello", 1); got != "hello-00001" {
		t.Errorf("RevisionName(hello, 1) = %q", got)
	}
	if got := RevisionName("hello", 123456); got != "hello-123456" {
		t.Errorf("RevisionName(hello, 123456) = %q", got)
	}
}

func TestNewRevision(t *testing.T) {
	f := validFunction()
	f.Namespace = "prod"
	f.Spec.Template.Metadata = TemplateMeta{
		Name:        "hello-v1",
		Labels:      map[string]string{"track": "blue"},
		Annotations: map[string]string{AnnotationMinScale: "1"},
	}
	f.Spec.Template.Spec.Env = []EnvVar{{Name: "A", Value: "1"}}
	f.Spec.Template.Spec.Wasm.ABI = ABIHTTP

	r := NewRevision(f, "hello-v1", 3)
	want := &Revision{
		TypeMeta: metav1.TypeMeta{APIVersion: APIVersion, Kind: KindRevision},
		ObjectMeta: metav1.ObjectMeta{
			Name:      "hello-v1",
			Namespace: "prod",
			Labels:    map[string]string{"track": "blue", LabelFunction: "hello", LabelRevisionNumber: "3"},
			Annotations: map[string]string{
				AnnotationMinScale:     "1",
				AnnotationTemplateHash: f.Spec.Template.Hash(),
			},
		},
		Spec: RevisionSpec{
			Wasm:                 &WasmSource{Module: testDigest, ABI: ABIHTTP},
			Env:                  []EnvVar{{Name: "A", Value: "1"}},
			ContainerConcurrency: new(int64(0)),
			TimeoutSeconds:       new(int64(300)),
		},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("NewRevision() =\n%s\nwant\n%s", mustMarshal(r), mustMarshal(want))
	}
	if f.Spec.Template.Spec.TimeoutSeconds != nil {
		t.Error("NewRevision() defaulted the Function's template")
	}
	if err := r.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	assertNoSharing(t, reflect.ValueOf(f.Spec.Template.Spec), reflect.ValueOf(r.Spec), "spec")
	f.Spec.Template.Metadata.Labels["track"] = "green"
	f.Spec.Template.Metadata.Annotations[AnnotationMinScale] = "2"
	if r.Labels["track"] != "blue" || r.Annotations[AnnotationMinScale] != "1" {
		t.Error("the Revision's labels or annotations follow the Function's")
	}
}

func TestNewRevisionDefaultsNamespace(t *testing.T) {
	r := NewRevision(validFunction(), RevisionName("hello", 1), 1)
	if r.Namespace != DefaultNamespace || r.Name != "hello-00001" {
		t.Errorf("NewRevision() = %s/%s, want %s/hello-00001", r.Namespace, r.Name, DefaultNamespace)
	}
}
