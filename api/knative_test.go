package api

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

func loadKnativeService(t *testing.T, file string) *servingv1.Service {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	svc := new(servingv1.Service)
	if err := yaml.UnmarshalStrict(data, svc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return svc
}

func TestFromKnativeService(t *testing.T) {
	tests := []struct {
		file string
		want *Function
	}{{
		file: "testdata/knative-helloworld.yaml",
		want: &Function{
			TypeMeta:   metav1.TypeMeta{APIVersion: APIVersion, Kind: KindFunction},
			ObjectMeta: metav1.ObjectMeta{Name: "helloworld-go", Namespace: "default"},
			Spec: FunctionSpec{
				Template: RevisionTemplate{Spec: RevisionSpec{
					Container:            &ContainerSource{Image: "ghcr.io/knative/helloworld-go:latest", Port: 8080},
					Env:                  []EnvVar{{Name: "TARGET", Value: "Go Sample v1"}},
					ContainerConcurrency: new(int64(0)),   // Knative's default
					TimeoutSeconds:       new(int64(300)), // Knative's default
				}},
				// Knative's default route.
				Traffic: []TrafficTarget{{LatestRevision: new(true), Percent: new(int64(100))}},
			},
		},
	}, {
		file: "testdata/knative-traffic-split.yaml",
		want: &Function{
			TypeMeta: metav1.TypeMeta{APIVersion: APIVersion, Kind: KindFunction},
			ObjectMeta: metav1.ObjectMeta{
				Name:        "shop",
				Namespace:   "prod",
				Labels:      map[string]string{"app": "shop"},
				Annotations: map[string]string{"team": "payments"},
			},
			Spec: FunctionSpec{
				Template: RevisionTemplate{
					Metadata: TemplateMeta{
						Name:   "shop-green",
						Labels: map[string]string{"track": "green"},
						Annotations: map[string]string{
							AnnotationMinScale:     "1",
							AnnotationMaxScale:     "10",
							AnnotationInitialScale: "2",
							AnnotationTarget:       "50",
							AnnotationMetric:       "rps",
							AnnotationWindow:       "90s",
						},
					},
					Spec: RevisionSpec{
						Container: &ContainerSource{
							Image:   "registry.example.com/shop@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
							Command: []string{"/bin/shop"},
							Args:    []string{"--listen", ":9000"},
							Port:    9000,
						},
						Env:                  []EnvVar{{Name: "MODE", Value: "production"}, {Name: "EMPTY"}},
						ContainerConcurrency: new(int64(20)),
						TimeoutSeconds:       new(int64(120)),
					},
				},
				Traffic: []TrafficTarget{
					{Tag: "blue", RevisionName: "shop-blue", LatestRevision: new(false), Percent: new(int64(80))},
					{Tag: "green", LatestRevision: new(true), Percent: new(int64(20))},
				},
			},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			svc := loadKnativeService(t, tt.file)
			before := svc.DeepCopy()
			got, err := FromKnativeService(svc)
			if err != nil {
				t.Fatalf("FromKnativeService() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("FromKnativeService() =\n%s\nwant\n%s", mustMarshal(got), mustMarshal(tt.want))
			}
			if !reflect.DeepEqual(svc, before) {
				t.Error("FromKnativeService() modified its argument")
			}
			got.SetDefaults()
			if err := got.Validate(); err != nil {
				t.Errorf("converted Function does not validate: %v", err)
			}
		})
	}
}

func TestFromKnativeServiceRejects(t *testing.T) {
	tests := []struct {
		name        string
		file        string
		mutate      func(svc *servingv1.Service)
		want        string
		fromKnative bool // Knative's own validation rejects it
	}{
		{"traffic summing to 90", "testdata/knative-bad-traffic.yaml", func(*servingv1.Service) {},
			`invalid Knative Service "broken": Traffic targets sum to 90, want 100: spec.traffic`, true},
		{"configurationName", "testdata/knative-helloworld.yaml", func(svc *servingv1.Service) {
			svc.Spec.Traffic = []servingv1.TrafficTarget{{ConfigurationName: "other", Percent: new(int64(100))}}
		}, "must not set the field(s): spec.traffic[0].configurationName", true},
		{"autoscaling annotation on the Service", "testdata/knative-helloworld.yaml", func(svc *servingv1.Service) {
			svc.Annotations = map[string]string{AnnotationMinScale: "1"}
		}, `invalid key name "autoscaling.knative.dev/min-scale": metadata.annotations`, true},
		{"sidecar", "testdata/knative-helloworld.yaml", func(svc *servingv1.Service) {
			svc.Spec.Template.Spec.Containers = append(svc.Spec.Template.Spec.Containers, corev1.Container{Image: "envoy"})
		}, `converting Knative Service "helloworld-go": not supported by wisp: 2 containers: wisp runs exactly one, without sidecars: spec.template.spec.containers`, false},
		{"init container", "testdata/knative-helloworld.yaml", func(svc *servingv1.Service) {
			svc.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox"}}
		}, "must not set the field(s): spec.template.spec.initContainers", true},
		{"volumes", "testdata/knative-helloworld.yaml", func(svc *servingv1.Service) {
			svc.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			svc.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "v", MountPath: "/data"}}
		}, "not supported by wisp: volumes: spec.template.spec.volumes", false},
		{"envFrom", "testdata/knative-helloworld.yaml", func(svc *servingv1.Service) {
			svc.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}
		}, "not supported by wisp: envFrom: set each variable's value in env: spec.template.spec.containers[0].envFrom", false},
		{"env valueFrom", "testdata/knative-helloworld.yaml", func(svc *servingv1.Service) {
			svc.Spec.Template.Spec.Containers[0].Env = append(svc.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{
				Name:      "SECRET",
				ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}},
			})
		}, "not supported by wisp: valueFrom: set a plain value: spec.template.spec.containers[0].env[1].valueFrom", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := loadKnativeService(t, tt.file)
			tt.mutate(svc)
			f, err := FromKnativeService(svc)
			if err == nil {
				t.Fatalf("FromKnativeService() = %s, want an error", mustMarshal(f))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("FromKnativeService() error = %q\nwant it to contain %q", err, tt.want)
			}
			var fe *apis.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %T does not wrap an *apis.FieldError", err)
			}
			if isKnative := strings.HasPrefix(err.Error(), "invalid Knative Service"); isKnative != tt.fromKnative {
				t.Errorf("error %q: from Knative's validation = %v, want %v", err, isKnative, tt.fromKnative)
			}
		})
	}
}
