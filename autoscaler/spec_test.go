package autoscaler

import (
	"strings"
	"testing"
	"time"
)

func TestSpecFor(t *testing.T) {
	def, err := SpecFor(DefaultConfig(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(*Spec)) Spec {
		s := def
		f(&s)
		return s
	}
	tests := []struct {
		name string
		cfg  map[string]string
		ann  map[string]string
		cc   int64
		want Spec
	}{
		{name: "defaults", want: Spec{
			Metric: MetricConcurrency, Aggregation: AggregationLinear,
			TargetValue: 70, TotalValue: 100, TargetBurstCapacity: 211,
			MaxScaleUpRate: 1000, MaxScaleDownRate: 2, PanicThreshold: 2,
			StableWindow: 60 * time.Second, PanicWindow: 6 * time.Second,
			InitialScale: 1, EnableScaleToZero: true, ScaleToZeroGracePeriod: 30 * time.Second,
			ActivationTimeout: 630 * time.Second, Reachable: true,
		}},
		{name: "containerConcurrency is the capacity", cc: 10,
			want: with(func(s *Spec) { s.TotalValue, s.TargetValue = 10, 7 })},
		{name: "target below containerConcurrency", cc: 10, ann: map[string]string{AnnotationTarget: "4"},
			want: with(func(s *Spec) { s.TotalValue, s.TargetValue = 4, 4*0.7 })},
		{name: "target above containerConcurrency is capped by it", cc: 10, ann: map[string]string{AnnotationTarget: "50"},
			want: with(func(s *Spec) { s.TotalValue, s.TargetValue = 10, 7 })},
		{name: "target without containerConcurrency", ann: map[string]string{AnnotationTarget: "50"},
			want: with(func(s *Spec) { s.TotalValue, s.TargetValue = 50, 35 })},
		{name: "utilization", cc: 10, ann: map[string]string{AnnotationTargetUtilizationPercentage: "100"},
			want: with(func(s *Spec) { s.TotalValue, s.TargetValue = 10, 10 })},
		{name: "target is at least 0.01", ann: map[string]string{AnnotationTarget: "0.01"},
			want: with(func(s *Spec) { s.TotalValue, s.TargetValue = 0.01, 0.01 })},
		{name: "rps ignores containerConcurrency", cc: 10, ann: map[string]string{AnnotationMetric: "rps"},
			want: with(func(s *Spec) { s.Metric, s.TotalValue, s.TargetValue = MetricRPS, 200, 140 })},
		{name: "rps target", ann: map[string]string{AnnotationMetric: "rps", AnnotationTarget: "1000"},
			want: with(func(s *Spec) { s.Metric, s.TotalValue, s.TargetValue = MetricRPS, 1000, 700 })},
		{name: "config targets", cfg: map[string]string{"container-concurrency-target-default": "10", "container-concurrency-target-percentage": "50"},
			want: with(func(s *Spec) { s.TotalValue, s.TargetValue = 10, 5 })},
		{name: "bounds", ann: map[string]string{AnnotationMinScale: "1", AnnotationMaxScale: "5", AnnotationInitialScale: "3", AnnotationActivationScale: "2"},
			want: with(func(s *Spec) { s.MinScale, s.MaxScale, s.InitialScale, s.ActivationScale = 1, 5, 3, 2 })},
		{name: "windows", ann: map[string]string{AnnotationWindow: "30s", AnnotationPanicWindowPercentage: "20", AnnotationPanicThresholdPercentage: "150"},
			want: with(func(s *Spec) { s.StableWindow, s.PanicWindow, s.PanicThreshold = 30*time.Second, 6*time.Second, 1.5 })},
		{name: "panic window is at least a second", ann: map[string]string{AnnotationWindow: "6s", AnnotationPanicWindowPercentage: "1"},
			want: with(func(s *Spec) { s.StableWindow, s.PanicWindow = 6*time.Second, time.Second })},
		{name: "delays", ann: map[string]string{AnnotationScaleDownDelay: "15s", AnnotationScaleToZeroPodRetentionPeriod: "1m"},
			want: with(func(s *Spec) { s.ScaleDownDelay, s.ScaleToZeroPodRetentionPeriod = 15*time.Second, time.Minute })},
		{name: "burst capacity and aggregation", ann: map[string]string{AnnotationTargetBurstCapacity: "-1", AnnotationMetricAggregationAlgorithm: "weighted-exponential"},
			want: with(func(s *Spec) { s.TargetBurstCapacity, s.Aggregation = -1, AggregationWeightedExponential })},
		{name: "class kpa", ann: map[string]string{AnnotationClass: KPAClass}, want: def},
		{name: "other annotations pass", ann: map[string]string{"serving.knative.dev/creator": "me", "example.com/x": "y"}, want: def},
		{name: "config without scale to zero", cfg: map[string]string{"enable-scale-to-zero": "false", "scale-to-zero-grace-period": "5s"},
			want: with(func(s *Spec) { s.EnableScaleToZero, s.ScaleToZeroGracePeriod = false, 5*time.Second })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ConfigFromMap(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := SpecFor(cfg, tt.ann, tt.cc)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestSpecForErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ann  map[string]string
		cc   int64
		want []string
	}{
		{name: "every bad annotation is named", ann: map[string]string{
			AnnotationMinScale: "-1", AnnotationWindow: "1s", AnnotationMetric: "memory", AnnotationTarget: "0",
		}, want: []string{
			`annotation autoscaling.knative.dev/min-scale: "-1" is not a whole number >= 0`,
			`annotation autoscaling.knative.dev/window: "1s" is not a duration from 6s to 1h0m0s`,
			`annotation autoscaling.knative.dev/metric: "memory" is not a metric`,
			`annotation autoscaling.knative.dev/target: "0" is not a number of at least 0.01`,
		}},
		{name: "max-scale-limit", cfg: func() Config { c := DefaultConfig(); c.MaxScaleLimit, c.MaxScale = 10, 10; return c }(),
			ann:  map[string]string{AnnotationMaxScale: "11"},
			want: []string{"annotation autoscaling.knative.dev/max-scale: 11 is above max-scale-limit 10"}},
		{name: "unbounded with max-scale-limit", cfg: func() Config { c := DefaultConfig(); c.MaxScaleLimit, c.MaxScale = 10, 10; return c }(),
			ann:  map[string]string{AnnotationMaxScale: "0"},
			want: []string{"annotation autoscaling.knative.dev/max-scale: 0 (no limit) is not allowed"}},
		{name: "min above config max", cfg: func() Config { c := DefaultConfig(); c.MaxScale = 3; return c }(),
			ann:  map[string]string{AnnotationMinScale: "4"},
			want: []string{"annotation autoscaling.knative.dev/min-scale: min-scale 4 is greater than max-scale 3"}},
		{name: "max below config min", cfg: func() Config { c := DefaultConfig(); c.MinScale = 4; return c }(),
			ann:  map[string]string{AnnotationMaxScale: "3"},
			want: []string{"annotation autoscaling.knative.dev/max-scale: min-scale 4 is greater than max-scale 3"}},
		{name: "zero initial scale", ann: map[string]string{"autoscaling.knative.dev/initialScale": "0"},
			want: []string{"annotation autoscaling.knative.dev/initialScale", "allow-zero-initial-scale: true"}},
		{name: "unknown annotation", ann: map[string]string{"autoscaling.knative.dev/max-scales": "3"},
			want: []string{"annotation autoscaling.knative.dev/max-scales: unknown autoscaling annotation", AnnotationMaxScale}},
		{name: "hpa", ann: map[string]string{AnnotationClass: "hpa.autoscaling.knative.dev"},
			want: []string{"annotation autoscaling.knative.dev/class", "only the kpa.autoscaling.knative.dev class"}},
		{name: "retention duration", ann: map[string]string{AnnotationScaleToZeroPodRetentionPeriod: "forever"},
			want: []string{"annotation autoscaling.knative.dev/scale-to-zero-pod-retention-period", `such as "60s"`}},
		{name: "negative containerConcurrency", cc: -1, want: []string{"containerConcurrency: -1 must be 0 (no limit) or more"}},
		{name: "invalid config", cfg: Config{}, want: []string{"autoscaler config:", "stable-window"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if tt.name != "invalid config" && cfg == (Config{}) {
				cfg = DefaultConfig()
			}
			_, err := SpecFor(cfg, tt.ann, tt.cc)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	good := mustSpec(t, nil, nil)
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*Spec)
		want   string
	}{
		{"metric", func(s *Spec) { s.Metric = "cpu" }, "spec.Metric"},
		{"aggregation", func(s *Spec) { s.Aggregation = "" }, "spec.Aggregation"},
		{"target", func(s *Spec) { s.TargetValue = 0 }, "spec.TargetValue"},
		{"rates", func(s *Spec) { s.MaxScaleDownRate = 1 }, "spec.MaxScaleUpRate"},
		{"windows", func(s *Spec) { s.PanicWindow = 0 }, "spec.StableWindow"},
		{"delay", func(s *Spec) { s.ScaleDownDelay = -time.Second }, "spec.ScaleDownDelay"},
		{"bounds", func(s *Spec) { s.MinScale = -1 }, "spec.MinScale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.mutate(&s)
			if _, err := NewAutoscaler(s, t0, 0); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one about %s", err, tt.want)
			}
		})
	}
}
