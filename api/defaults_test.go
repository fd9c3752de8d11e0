package api

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFunctionSetDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   *Function
		want *Function
	}{{
		name: "empty wasm function",
		in:   validFunction(),
		want: &Function{
			TypeMeta:   metav1.TypeMeta{APIVersion: "wisp.dev/v1alpha1", Kind: "Function"},
			ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default"},
			Spec: FunctionSpec{
				Template: RevisionTemplate{Spec: RevisionSpec{
					Wasm:                 &WasmSource{Module: testDigest}, // ABI stays empty
					ContainerConcurrency: new(int64(0)),
					TimeoutSeconds:       new(int64(300)),
				}},
				Traffic: []TrafficTarget{{LatestRevision: new(true), Percent: new(int64(100))}},
			},
		},
	}, {
		name: "explicit values kept, traffic targets completed",
		in: &Function{
			TypeMeta:   metav1.TypeMeta{APIVersion: "wisp.dev/v1alpha1", Kind: "Function"},
			ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "prod"},
			Spec: FunctionSpec{
				Template: RevisionTemplate{Spec: RevisionSpec{
					Process:              &ProcessSource{Command: "server", ReadinessPath: "/healthz"},
					ContainerConcurrency: new(int64(4)),
					TimeoutSeconds:       new(int64(30)),
				}},
				Traffic: []TrafficTarget{
					{RevisionName: "hello-00001", Percent: new(int64(90))},
					{Tag: "next", Percent: new(int64(10))},
					{Tag: "old", RevisionName: "hello-00000"},
				},
			},
		},
		want: &Function{
			TypeMeta:   metav1.TypeMeta{APIVersion: "wisp.dev/v1alpha1", Kind: "Function"},
			ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "prod"},
			Spec: FunctionSpec{
				Template: RevisionTemplate{Spec: RevisionSpec{
					Process:              &ProcessSource{Command: "server", ReadinessPath: "/healthz"},
					ContainerConcurrency: new(int64(4)),
					TimeoutSeconds:       new(int64(30)),
				}},
				Traffic: []TrafficTarget{
					{RevisionName: "hello-00001", LatestRevision: new(false), Percent: new(int64(90))},
					{Tag: "next", LatestRevision: new(true), Percent: new(int64(10))},
					{Tag: "old", RevisionName: "hello-00000", LatestRevision: new(false), Percent: new(int64(0))},
				},
			},
		},
	}, {
		name: "process and container defaults",
		in: &Function{
			ObjectMeta: metav1.ObjectMeta{Name: "hello"},
			Spec: FunctionSpec{Template: RevisionTemplate{Spec: RevisionSpec{
				Process:   &ProcessSource{Command: "server"},
				Container: &ContainerSource{Image: "nginx"},
			}}},
		},
		want: &Function{
			TypeMeta:   metav1.TypeMeta{APIVersion: "wisp.dev/v1alpha1", Kind: "Function"},
			ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default"},
			Spec: FunctionSpec{
				Template: RevisionTemplate{Spec: RevisionSpec{
					Process:              &ProcessSource{Command: "server", ReadinessPath: "/"},
					Container:            &ContainerSource{Image: "nginx", Port: 8080},
					ContainerConcurrency: new(int64(0)),
					TimeoutSeconds:       new(int64(300)),
				}},
				Traffic: []TrafficTarget{{LatestRevision: new(true), Percent: new(int64(100))}},
			},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.DeepCopy()
			got.SetDefaults()
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("SetDefaults() =\n%s\nwant\n%s", mustMarshal(got), mustMarshal(tt.want))
			}
			again := got.DeepCopy()
			again.SetDefaults()
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("SetDefaults() is not idempotent:\n%s\nthen\n%s", mustMarshal(got), mustMarshal(again))
			}
		})
	}
}

func TestRevisionSetDefaults(t *testing.T) {
	r := &Revision{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-00001"},
		Spec:       RevisionSpec{Container: &ContainerSource{Image: "nginx"}},
	}
	r.SetDefaults()
	want := &Revision{
		TypeMeta:   metav1.TypeMeta{APIVersion: "wisp.dev/v1alpha1", Kind: "Revision"},
		ObjectMeta: metav1.ObjectMeta{Name: "hello-00001", Namespace: "default"},
		Spec: RevisionSpec{
			Container:            &ContainerSource{Image: "nginx", Port: 8080},
			ContainerConcurrency: new(int64(0)),
			TimeoutSeconds:       new(int64(300)),
		},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("SetDefaults() =\n%s\nwant\n%s", mustMarshal(r), mustMarshal(want))
	}
	again := r.DeepCopy()
	again.SetDefaults()
	if !reflect.DeepEqual(again, r) {
		t.Fatalf("SetDefaults() is not idempotent")
	}
}
