package api

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var testDigest = "sha256:" + strings.Repeat("ab", 32)

// validFunction is the smallest valid Function, without defaults.
func validFunction() *Function {
	return &Function{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: FunctionSpec{Template: RevisionTemplate{Spec: RevisionSpec{
			Wasm: &WasmSource{Module: testDigest},
		}}},
	}
}

func TestFunctionValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(f *Function)
	}{
		{"minimal", func(*Function) {}},
		{"defaulted", func(f *Function) { f.SetDefaults() }},
		{"name of 57 characters", func(f *Function) { f.Name = "a" + strings.Repeat("b", 56) }},
		{"oci module with tag", func(f *Function) { f.Spec.Template.Spec.Wasm.Module = "oci://localhost:5000/fn/hello:v1" }},
		{"oci module with digest", func(f *Function) {
			f.Spec.Template.Spec.Wasm.Module = "oci://ghcr.io/acme/fns/hello-world@" + testDigest
		}},
		{"oci module on IPv6 registry", func(f *Function) { f.Spec.Template.Spec.Wasm.Module = "oci://[::1]:5000/hello:v1" }},
		{"abi wagi", func(f *Function) { f.Spec.Template.Spec.Wasm.ABI = ABIWagi }},
		{"abi http", func(f *Function) { f.Spec.Template.Spec.Wasm.ABI = ABIHTTP }},
		{"process with bare command", func(f *Function) {
			f.Spec.Template.Spec = RevisionSpec{Process: &ProcessSource{Command: "server", ReadinessPath: "/healthz"}}
		}},
		{"process with absolute command", func(f *Function) {
			f.Spec.Template.Spec = RevisionSpec{Process: &ProcessSource{Command: "/usr/bin/server"}}
		}},
		{"container", func(f *Function) {
			f.Spec.Template.Spec = RevisionSpec{Container: &ContainerSource{Image: "nginx", Port: 80}}
		}},
		{"env", func(f *Function) {
			f.Spec.Template.Spec.Env = []EnvVar{{Name: "_A1", Value: "x"}, {Name: "TARGET"}, {Name: "K_OTHER"}}
		}},
		{"limits at their bounds", func(f *Function) {
			f.Spec.Template.Spec.ContainerConcurrency = new(int64(1000))
			f.Spec.Template.Spec.TimeoutSeconds = new(int64(600))
		}},
		{"autoscaling annotations", func(f *Function) {
			f.Spec.Template.Metadata.Annotations = map[string]string{
				AnnotationMinScale: "2", AnnotationMaxScale: "2", AnnotationInitialScale: "0",
				AnnotationTarget: "0.5", AnnotationMetric: MetricConcurrency, AnnotationWindow: "6s",
				"autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
			}
		}},
		{"min-scale above an unbounded max-scale", func(f *Function) {
			f.Spec.Template.Metadata.Annotations = map[string]string{AnnotationMinScale: "5", AnnotationMaxScale: "0", AnnotationWindow: "1h", AnnotationMetric: MetricRPS}
		}},
		{"template name", func(f *Function) { f.Spec.Template.Metadata.Name = "hello-v2" }},
		{"traffic split with a tagged 0% target", func(f *Function) {
			f.Spec.Traffic = []TrafficTarget{
				{RevisionName: "hello-00001", Percent: new(int64(60))},
				{LatestRevision: new(true), Percent: new(int64(40))},
				{Tag: "canary", RevisionName: "hello-00002", LatestRevision: new(false), Percent: new(int64(0))},
			}
		}},
		{"tag that fits a host label", func(f *Function) {
			f.Name = "a" + strings.Repeat("b", 56)
			f.Spec.Traffic = []TrafficTarget{{Tag: "abcde", Percent: new(int64(100))}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := validFunction()
			tt.mutate(f)
			if err := f.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestFunctionValidateRejects(t *testing.T) {
	long57 := "a" + strings.Repeat("b", 56)
	spec := func(f *Function) *RevisionSpec { return &f.Spec.Template.Spec }
	ann := func(kv ...string) func(f *Function) {
		return func(f *Function) {
			f.Spec.Template.Metadata.Annotations = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				f.Spec.Template.Metadata.Annotations[kv[i]] = kv[i+1]
			}
		}
	}
	traffic := func(tts ...TrafficTarget) func(f *Function) {
		return func(f *Function) { f.Spec.Traffic = tts }
	}
	const annPath = "spec.template.metadata.annotations.[autoscaling.knative.dev/"
	tests := []struct {
		name   string
		mutate func(f *Function)
		want   []string
	}{
		{"missing name", func(f *Function) { f.Name = "" }, []string{"missing field(s): metadata.name"}},
		{"name not a DNS-1035 label", func(f *Function) { f.Name = "1hello" }, []string{"invalid value: 1hello: metadata.name"}},
		{"name too long for revision names", func(f *Function) { f.Name = long57 + "c" },
			[]string{"invalid value: " + long57 + "c: metadata.name", "no more than 57 characters"}},
		{"bad namespace", func(f *Function) { f.Namespace = "Prod_1" }, []string{"invalid value: Prod_1: metadata.namespace"}},
		{"wrong apiVersion", func(f *Function) { f.APIVersion = "wisp.dev/v2" }, []string{`invalid value: wisp.dev/v2: apiVersion`, `want "wisp.dev/v1alpha1"`}},
		{"wrong kind", func(f *Function) { f.Kind = "Revision" }, []string{`invalid value: Revision: kind`, `want "Function"`}},
		{"autoscaling annotation on the function", func(f *Function) { f.Annotations = map[string]string{AnnotationMinScale: "1"} },
			[]string{`invalid key name "autoscaling.knative.dev/min-scale": metadata.annotations`, "spec.template.metadata.annotations"}},
		{"no source", func(f *Function) { spec(f).Wasm = nil },
			[]string{"expected exactly one, got neither: spec.template.spec.container, spec.template.spec.process, spec.template.spec.wasm"}},
		{"two sources", func(f *Function) { spec(f).Container = &ContainerSource{Image: "nginx"} },
			[]string{"expected exactly one, got both: spec.template.spec.container, spec.template.spec.wasm"}},
		{"missing module", func(f *Function) { spec(f).Wasm.Module = "" }, []string{"missing field(s): spec.template.spec.wasm.module"}},
		{"short digest", func(f *Function) { spec(f).Wasm.Module = "sha256:abc" }, []string{"invalid value: sha256:abc: spec.template.spec.wasm.module"}},
		{"uppercase digest", func(f *Function) { spec(f).Wasm.Module = "sha256:" + strings.ToUpper(testDigest[7:]) },
			[]string{"spec.template.spec.wasm.module", "want sha256: and 64 lowercase hex digits"}},
		{"bare digest", func(f *Function) { spec(f).Wasm.Module = testDigest[7:] },
			[]string{"spec.template.spec.wasm.module", `want "sha256:<hex>" or "oci://`}},
		{"oci without repository", func(f *Function) { spec(f).Wasm.Module = "oci://hello" }, []string{"invalid value: oci://hello: spec.template.spec.wasm.module"}},
		{"oci with uppercase repository", func(f *Function) { spec(f).Wasm.Module = "oci://ghcr.io/Acme/fn" }, []string{"invalid value: oci://ghcr.io/Acme/fn: spec.template.spec.wasm.module"}},
		{"oci with bad tag", func(f *Function) { spec(f).Wasm.Module = "oci://ghcr.io/acme/fn:-v1" }, []string{"invalid value: oci://ghcr.io/acme/fn:-v1: spec.template.spec.wasm.module"}},
		{"http module", func(f *Function) { spec(f).Wasm.Module = "https://example.com/f.wasm" }, []string{"invalid value: https://example.com/f.wasm: spec.template.spec.wasm.module"}},
		{"unknown abi", func(f *Function) { spec(f).Wasm.ABI = "wasi" }, []string{"invalid value: wasi: spec.template.spec.wasm.abi"}},
		{"missing command", func(f *Function) { *spec(f) = RevisionSpec{Process: &ProcessSource{}} }, []string{"missing field(s): spec.template.spec.process.command"}},
		{"relative command", func(f *Function) { *spec(f) = RevisionSpec{Process: &ProcessSource{Command: "bin/server"}} },
			[]string{"invalid value: bin/server: spec.template.spec.process.command"}},
		{"relative readiness path", func(f *Function) {
			*spec(f) = RevisionSpec{Process: &ProcessSource{Command: "s", ReadinessPath: "healthz"}}
		},
			[]string{"invalid value: healthz: spec.template.spec.process.readinessPath"}},
		{"missing image", func(f *Function) { *spec(f) = RevisionSpec{Container: &ContainerSource{}} }, []string{"missing field(s): spec.template.spec.container.image"}},
		{"port out of range", func(f *Function) { *spec(f) = RevisionSpec{Container: &ContainerSource{Image: "x", Port: 70000}} },
			[]string{"expected 1 <= 70000 <= 65535: spec.template.spec.container.port"}},
		{"env name missing", func(f *Function) { spec(f).Env = []EnvVar{{Value: "x"}} }, []string{"missing field(s): spec.template.spec.env[0].name"}},
		{"env name starts with a digit", func(f *Function) { spec(f).Env = []EnvVar{{Name: "1X"}} }, []string{"invalid value: 1X: spec.template.spec.env[0].name"}},
		{"env name with =", func(f *Function) { spec(f).Env = []EnvVar{{Name: "A"}, {Name: "A=B"}} }, []string{"invalid value: A=B: spec.template.spec.env[1].name"}},
		{"env PORT", func(f *Function) { spec(f).Env = []EnvVar{{Name: "PORT", Value: "1"}} },
			[]string{"invalid value: PORT: spec.template.spec.env[0].name", "reserved: wisp sets PORT, K_SERVICE, K_CONFIGURATION, K_REVISION itself"}},
		{"env K_SERVICE", func(f *Function) { spec(f).Env = []EnvVar{{Name: "K_SERVICE"}} }, []string{"invalid value: K_SERVICE: spec.template.spec.env[0].name", "reserved"}},
		{"env K_REVISION", func(f *Function) { spec(f).Env = []EnvVar{{Name: "K_REVISION"}} }, []string{"invalid value: K_REVISION: spec.template.spec.env[0].name", "reserved"}},
		{"env K_CONFIGURATION", func(f *Function) { spec(f).Env = []EnvVar{{Name: "K_CONFIGURATION"}} }, []string{"invalid value: K_CONFIGURATION: spec.template.spec.env[0].name", "reserved"}},
		{"env duplicate", func(f *Function) { spec(f).Env = []EnvVar{{Name: "A"}, {Name: "B"}, {Name: "A"}} },
			[]string{`duplicate environment variable "A": spec.template.spec.env[0].name, spec.template.spec.env[2].name`}},
		{"negative concurrency", func(f *Function) { spec(f).ContainerConcurrency = new(int64(-1)) },
			[]string{"expected 0 <= -1 <= 1000: spec.template.spec.containerConcurrency"}},
		{"concurrency above 1000", func(f *Function) { spec(f).ContainerConcurrency = new(int64(1001)) },
			[]string{"expected 0 <= 1001 <= 1000: spec.template.spec.containerConcurrency"}},
		{"zero timeout", func(f *Function) { spec(f).TimeoutSeconds = new(int64(0)) }, []string{"expected 1 <= 0 <= 600: spec.template.spec.timeoutSeconds"}},
		{"timeout above 600", func(f *Function) { spec(f).TimeoutSeconds = new(int64(601)) }, []string{"expected 1 <= 601 <= 600: spec.template.spec.timeoutSeconds"}},
		{"negative min-scale", ann(AnnotationMinScale, "-1"), []string{"invalid value: -1: " + annPath + "min-scale]", "want an integer >= 0"}},
		{"fractional max-scale", ann(AnnotationMaxScale, "1.5"), []string{"invalid value: 1.5: " + annPath + "max-scale]"}},
		{"word initial-scale", ann(AnnotationInitialScale, "two"), []string{"invalid value: two: " + annPath + "initial-scale]"}},
		{"min-scale above max-scale", ann(AnnotationMinScale, "5", AnnotationMaxScale, "3"),
			[]string{"min-scale 5 is greater than max-scale 3: " + annPath + "max-scale], " + annPath + "min-scale]"}},
		{"unknown metric", ann(AnnotationMetric, "cpu"), []string{"invalid value: cpu: " + annPath + "metric]", `want "concurrency" or "rps"`}},
		{"window too short", ann(AnnotationWindow, "5s"), []string{"invalid value: 5s: " + annPath + "window]", "between 6s and 1h0m0s"}},
		{"window too long", ann(AnnotationWindow, "61m"), []string{"invalid value: 61m: " + annPath + "window]"}},
		{"window not a duration", ann(AnnotationWindow, "60"), []string{"invalid value: 60: " + annPath + "window]"}},
		{"zero target", ann(AnnotationTarget, "0"), []string{"invalid value: 0: " + annPath + "target]", "want a number > 0"}},
		{"NaN target", ann(AnnotationTarget, "NaN"), []string{"invalid value: NaN: " + annPath + "target]"}},
		{"infinite target", ann(AnnotationTarget, "+Inf"), []string{"invalid value: +Inf: " + annPath + "target]"}},
		{"template name without the function prefix", func(f *Function) { f.Spec.Template.Metadata.Name = "other-v2" },
			[]string{"invalid value: other-v2: spec.template.metadata.name", `must start with "hello-"`}},
		{"template name not a DNS label", func(f *Function) { f.Spec.Template.Metadata.Name = "hello-V2" },
			[]string{"invalid value: hello-V2: spec.template.metadata.name"}},
		{"reserved template label", func(f *Function) { f.Spec.Template.Metadata.Labels = map[string]string{LabelFunction: "x"} },
			[]string{`invalid key name "wisp.dev/function": spec.template.metadata.labels`}},
		{"reserved template annotation", func(f *Function) {
			f.Spec.Template.Metadata.Annotations = map[string]string{AnnotationTemplateHash: "x"}
		},
			[]string{`invalid key name "wisp.dev/template-hash": spec.template.metadata.annotations`}},
		{"traffic summing to 90", traffic(
			TrafficTarget{RevisionName: "hello-00001", Percent: new(int64(40))},
			TrafficTarget{LatestRevision: new(true), Percent: new(int64(50))}),
			[]string{"traffic percents sum to 90, want 100: spec.traffic"}},
		{"traffic without percents", traffic(TrafficTarget{LatestRevision: new(true)}),
			[]string{"traffic percents sum to 0, want 100: spec.traffic", "a target with 0 percent and no tag receives no traffic: spec.traffic[0].percent"}},
		{"revisionName and latestRevision", traffic(TrafficTarget{RevisionName: "hello-00001", LatestRevision: new(true), Percent: new(int64(100))}),
			[]string{"expected exactly one, got both: spec.traffic[0].latestRevision, spec.traffic[0].revisionName"}},
		{"neither revisionName nor latestRevision", traffic(TrafficTarget{LatestRevision: new(false), Percent: new(int64(100))}),
			[]string{"expected exactly one, got neither: spec.traffic[0].latestRevision, spec.traffic[0].revisionName"}},
		{"percent above 100", traffic(TrafficTarget{Percent: new(int64(101))}, TrafficTarget{RevisionName: "hello-1", Percent: new(int64(-1))}),
			[]string{"expected 0 <= 101 <= 100: spec.traffic[0].percent", "expected 0 <= -1 <= 100: spec.traffic[1].percent"}},
		{"untagged 0% target", traffic(TrafficTarget{Percent: new(int64(100))}, TrafficTarget{RevisionName: "hello-00001", Percent: new(int64(0))}),
			[]string{"a target with 0 percent and no tag receives no traffic: spec.traffic[1].percent"}},
		{"revision of another function", traffic(TrafficTarget{RevisionName: "other-00001", Percent: new(int64(100))}),
			[]string{"invalid value: other-00001: spec.traffic[0].revisionName", `must start with "hello-"`}},
		{"revision name not a DNS label", traffic(TrafficTarget{RevisionName: "hello_1", Percent: new(int64(100))}),
			[]string{"invalid value: hello_1: spec.traffic[0].revisionName"}},
		{"tag not a DNS label", traffic(TrafficTarget{Tag: "Blue", Percent: new(int64(100))}), []string{"invalid value: Blue: spec.traffic[0].tag"}},
		{"duplicate tag", traffic(TrafficTarget{Tag: "blue", Percent: new(int64(50))}, TrafficTarget{Tag: "blue", RevisionName: "hello-1", Percent: new(int64(50))}),
			[]string{`duplicate tag "blue": spec.traffic[0].tag, spec.traffic[1].tag`}},
		{"tag too long for the host", func(f *Function) {
			f.Name = long57
			f.Spec.Traffic = []TrafficTarget{{Tag: "abcdef", Percent: new(int64(100))}}
		}, []string{"invalid value: abcdef: spec.traffic[0].tag", `host label "abcdef-` + long57 + `" must be no more than 63 characters`}},
		{"url in spec", traffic(TrafficTarget{Tag: "a", URL: "http://a.example", Percent: new(int64(100))}), []string{"must not be set: spec.traffic[0].url"}},
		{"several errors at once", func(f *Function) {
			f.Name = ""
			spec(f).TimeoutSeconds = new(int64(0))
		}, []string{"missing field(s): metadata.name", "expected 1 <= 0 <= 600: spec.template.spec.timeoutSeconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := validFunction()
			tt.mutate(f)
			err := f.Validate()
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestFunctionValidateUpdate(t *testing.T) {
	named := func(name string, timeout int64) *Function {
		f := validFunction()
		f.Spec.Template.Metadata.Name = name
		f.Spec.Template.Spec.TimeoutSeconds = new(timeout)
		return f
	}
	tests := []struct {
		name     string
		old, cur *Function
		want     string // "" for no error
	}{
		{"same", named("", 10), named("", 10), ""},
		{"unnamed template changed", named("", 10), named("", 20), ""},
		{"named template renamed and changed", named("hello-a", 10), named("hello-b", 20), ""},
		{"named template unchanged", named("hello-a", 10), named("hello-a", 10), ""},
		{"named template changed but not renamed", named("hello-a", 10), named("hello-a", 20),
			`the template changed but its name "hello-a" did not: spec.template.metadata.name`},
		{"renamed function", validFunction(), func() *Function { f := validFunction(); f.Name = "bye"; return f }(),
			"field is immutable: metadata.name\nwas \"hello\", now \"bye\""},
		{"moved function", validFunction(), func() *Function { f := validFunction(); f.Namespace = "other"; return f }(),
			"field is immutable: metadata.namespace"},
		{"invalid replacement", validFunction(), func() *Function { f := validFunction(); f.Spec.Template.Spec.Wasm = nil; return f }(),
			"expected exactly one, got neither"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cur.ValidateUpdate(tt.old)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("ValidateUpdate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("ValidateUpdate() = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRevisionValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *Revision)
		want   string // "" for no error
	}{
		{"from NewRevision", func(*Revision) {}, ""},
		{"missing name", func(r *Revision) { r.Name = "" }, "missing field(s): metadata.name"},
		{"name not a DNS label", func(r *Revision) { r.Name = "hello_1" }, "invalid value: hello_1: metadata.name"},
		{"missing function label", func(r *Revision) { delete(r.Labels, LabelFunction) }, "missing field(s): metadata.labels[wisp.dev/function]"},
		{"name of another function", func(r *Revision) { r.Labels[LabelFunction] = "other" },
			`invalid value: hello-00001: metadata.name` + "\n" + `the name of a Revision of Function "other" must start with "other-"`},
		{"bad namespace", func(r *Revision) { r.Namespace = "A" }, "invalid value: A: metadata.namespace"},
		{"wrong kind", func(r *Revision) { r.Kind = KindFunction }, "invalid value: Function: kind"},
		{"bad annotation", func(r *Revision) { r.Annotations[AnnotationMetric] = "cpu" },
			"invalid value: cpu: metadata.annotations.[autoscaling.knative.dev/metric]"},
		{"bad spec", func(r *Revision) { r.Spec.TimeoutSeconds = new(int64(601)) }, "expected 1 <= 601 <= 600: spec.timeoutSeconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRevision(validFunction(), "hello-00001", 1)
			tt.mutate(r)
			err := r.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRevisionValidateUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *Revision)
		want   []string // nil for no error
	}{
		{"status change", func(r *Revision) { r.Status.ActualReplicas = 3; r.Status.MarkSourceReady() }, nil},
		{"label change", func(r *Revision) { r.Labels["team"] = "a" }, nil},
		{"nil env to empty env", func(r *Revision) { r.Spec.Env = []EnvVar{} }, nil},
		{"spec change", func(r *Revision) { r.Spec.TimeoutSeconds = new(int64(10)) },
			[]string{"a Revision's spec is immutable: change the Function's template to create a new Revision: spec", "TimeoutSeconds", "-: \"300\"", "+: \"10\""}},
		{"module change", func(r *Revision) { r.Spec.Wasm.Module = "oci://r.example/m:v2" }, []string{"spec", "Module"}},
		{"rename", func(r *Revision) { r.Name = "hello-00002" }, []string{"field is immutable: metadata.name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := NewRevision(validFunction(), "hello-00001", 1)
			cur := old.DeepCopy()
			tt.mutate(cur)
			err := cur.ValidateUpdate(old)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ValidateUpdate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("ValidateUpdate() = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ValidateUpdate() = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestWasmLimitsAndDirs(t *testing.T) {
	f := &Function{}
	f.Name, f.Namespace = "w", "default"
	f.Spec.Template.Spec.Wasm = &WasmSource{
		Module:              "sha256:" + strings.Repeat("a", 64),
		MemoryLimitPages:    MaxWasmMemoryPages + 1,
		MaxRequestBodyBytes: -1,
		Dirs: []WasmDir{
			{HostPath: "relative", GuestPath: "/data"},
			{HostPath: "/srv", GuestPath: "/data/"},
		},
	}
	f.SetDefaults()
	err := f.Validate()
	if err == nil {
		t.Fatal("invalid wasm limits accepted")
	}
	for _, want := range []string{
		"spec.template.spec.wasm.memoryLimitPages",
		"spec.template.spec.wasm.maxRequestBodyBytes",
		"spec.template.spec.wasm.dirs[0].hostPath",
		"spec.template.spec.wasm.dirs[1].guestPath",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

func TestRouteRulesValidation(t *testing.T) {
	f := &Function{}
	f.Name, f.Namespace = "hello", "default"
	f.Spec.Template.Spec.Process = &ProcessSource{Command: "/bin/srv"}
	f.Spec.Routes = []RouteRule{
		{Tag: "canary"}, // no condition; tag not in traffic
		{Headers: []StringMatch{{Name: "x-env", Exact: "a", Regex: "b"}}, RevisionName: "hello-00001", LatestRevision: new(true)},
		{Query: []StringMatch{{Name: "q", Regex: "("}}, RevisionName: "other-00001"},
		{Headers: []StringMatch{{Name: "bad header", Exact: "x"}}, LatestRevision: new(true)},
	}
	f.SetDefaults()
	err := f.Validate()
	if err == nil {
		t.Fatal("invalid routes accepted")
	}
	for _, want := range []string{
		"spec.routes[0].headers", "spec.routes[0].tag",
		"spec.routes[1].headers[0].exact", "spec.routes[1].latestRevision",
		"spec.routes[2].query[0].regex", "spec.routes[2].revisionName",
		"spec.routes[3].headers[0].name",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
	f.Spec.Routes = []RouteRule{{Headers: []StringMatch{{Name: "x-env", Prefix: "can"}}, LatestRevision: new(true)}}
	if err := f.Validate(); err != nil {
		t.Fatalf("valid route refused: %v", err)
	}
}
