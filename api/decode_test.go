package api

import (
	"errors"
	"os"
	"strings"
	"testing"

	"knative.dev/pkg/apis"
)

func TestDecodeFile(t *testing.T) {
	data, err := os.ReadFile("testdata/functions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(data)
	if err != nil {
		t.Fatalf("Decode() error = %v", err)
	}
	if len(objs) != 3 {
		t.Fatalf("Decode() returned %d objects, want 3", len(objs))
	}
	want := []struct{ name, namespace string }{{"hello", ""}, {"json-fn", "tools"}, {"kn", ""}}
	for i, o := range objs {
		f, ok := o.(*Function)
		if !ok {
			t.Fatalf("object %d is %T, want *Function", i, o)
		}
		if f.Name != want[i].name || f.Namespace != want[i].namespace {
			t.Errorf("object %d is %s/%s, want %s/%s", i, f.Namespace, f.Name, want[i].namespace, want[i].name)
		}
		if gvk := o.GroupVersionKind(); gvk.GroupVersion().String() != APIVersion || gvk.Kind != KindFunction {
			t.Errorf("object %d has %v", i, gvk)
		}
		o.SetDefaults()
		if err := o.Validate(); err != nil {
			t.Errorf("object %d: Validate() = %v", i, err)
		}
	}
	if w := objs[0].(*Function).Spec.Template.Spec; w.Wasm.Module != "oci://localhost:5000/fn/hello:v1" || w.Wasm.ABI != ABIHTTP ||
		len(w.Env) != 1 || w.Env[0] != (EnvVar{Name: "GREETING", Value: "hi"}) {
		t.Errorf("hello's spec = %s", mustMarshal(w))
	}
	if p := objs[1].(*Function).Spec.Template.Spec.Process; p.Command != "/usr/bin/tool" || len(p.Args) != 1 || p.Args[0] != "serve" {
		t.Errorf("json-fn's process = %+v", p)
	}
	if c := objs[2].(*Function).Spec.Template.Spec.Container; c.Image != "ghcr.io/knative/helloworld-go:latest" {
		t.Errorf("kn's container = %+v", c)
	}
}

func TestDecodeAccepts(t *testing.T) {
	const fn = "apiVersion: wisp.dev/v1alpha1\nkind: Function\nmetadata:\n  name: %s\nspec:\n  template:\n    spec:\n      wasm:\n        module: " + "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
	one := strings.Replace(fn, "%s", "one", 1)
	two := strings.Replace(fn, "%s", "two", 1)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty input", "", nil},
		{"only comments", "# nothing\n---\n\n# still nothing\n", nil},
		{"null document", "---\nnull\n---\n" + one, []string{"one"}},
		{"two documents", one + "---\n" + two, []string{"one", "two"}},
		{"separator with a comment and trailing spaces", one + "---  # next\n" + two + "--- \n", []string{"one", "two"}},
		{"CRLF line endings", strings.ReplaceAll(one+"---\n"+two, "\n", "\r\n"), []string{"one", "two"}},
		{"tab-indented JSON", "{\n\t\"apiVersion\": \"wisp.dev/v1alpha1\",\n\t\"kind\": \"Function\",\n\t\"metadata\": {\"name\": \"one\"}\n}\n", []string{"one"}},
		{"YAML flow mapping", "{apiVersion: wisp.dev/v1alpha1, kind: Function, metadata: {name: one}}", []string{"one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode() error = %v", err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetName())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("Decode() names = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	const head = "apiVersion: wisp.dev/v1alpha1\nkind: Function\nmetadata:\n  name: ok\n"
	tests := []struct {
		name     string
		in       string
		doc      int
		line     int
		want     []string
		knErrors bool // the cause is Knative's *apis.FieldError
	}{
		{"unknown field in the second document", head + "---\n# the broken one\n" + head + "spec:\n  template:\n    spec:\n      wasm: {modul: x}\n",
			2, 7, []string{`document 2 (line 7): unknown field "spec.template.spec.wasm.modul"`}, false},
		{"wrong type", head + "spec:\n  template:\n    spec:\n      timeoutSeconds: ten\n", 1, 1,
			[]string{"cannot unmarshal string into Go struct field", "timeoutSeconds of type int64"}, false},
		{"field names are case-sensitive", head + "Spec: {}\n", 1, 1, []string{`unknown field "Spec"`}, false},
		{"duplicate key", head + "  name: again\n", 1, 1, []string{"line 5:", `key "name" already set`}, false},
		{"malformed YAML, line counted in the input", head + "---\n\n\n" + head + "  labels: [a\n", 2, 8, []string{"document 2 (line 8): yaml: line 12: did not find expected ',' or ']'"}, false},
		{"tab indentation", head + "spec:\n\ttemplate: {}\n", 1, 1, []string{"yaml: line 6: found character that cannot start any token"}, false},
		{"malformed JSON", "\n{\"apiVersion\": \"wisp.dev/v1alpha1\",\n\"kind\": \"Function\"\n\"metadata\": {}}", 1, 2, []string{"yaml: line 3: did not find expected ',' or '}'"}, false},
		{"Knative Route", "apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata:\n  name: r\n", 1, 1,
			[]string{`unsupported apiVersion "serving.knative.dev/v1" kind "Route": want apiVersion "wisp.dev/v1alpha1" kind "Function", "Filter" or "Trigger", apiVersion "serving.knative.dev/v1" kind "Service", or apiVersion "extensions.istio.io/v1alpha1" kind "WasmPlugin"`}, false},
		{"wisp Revision", "apiVersion: wisp.dev/v1alpha1\nkind: Revision\n", 1, 1, []string{`unsupported apiVersion "wisp.dev/v1alpha1" kind "Revision"`}, false},
		{"no apiVersion", "kind: Function\n", 1, 1, []string{`unsupported apiVersion "" kind "Function"`}, false},
		{"scalar document", "  # lead\nhello\n", 1, 2, []string{"not a resource (an object with apiVersion and kind)"}, false},
		{"list document", "- a\n", 1, 1, []string{"not a resource"}, false},
		{"unknown field in a Knative Service", "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  template:\n    spec:\n      containers:\n        - image: x\n          imag: y\n",
			1, 1, []string{`unknown field "spec.template.spec.containers[0].imag"`}, false},
		{"invalid Knative Service", "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  template:\n    spec:\n      containers:\n        - name: x\n",
			1, 1, []string{`invalid Knative Service "s": missing field(s): spec.template.spec.containers[0].image`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode() = %d objects, want an error", len(objs))
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode() error %T is not a *DecodeError", err)
			}
			if de.Document != tt.doc || de.Line != tt.line {
				t.Errorf("error names document %d line %d, want document %d line %d", de.Document, de.Line, tt.doc, tt.line)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Decode() error = %q\nwant it to contain %q", err, w)
				}
			}
			var fe *apis.FieldError
			if errors.As(err, &fe) != tt.knErrors {
				t.Errorf("errors.As(err, *apis.FieldError) = %v, want %v", !tt.knErrors, tt.knErrors)
			}
		})
	}
}
