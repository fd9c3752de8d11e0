package autoscaler

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Metric is what the autoscaler scales on.
type Metric string

const (
	// MetricConcurrency scales on requests in flight per instance.
	MetricConcurrency Metric = "concurrency"
	// MetricRPS scales on requests per second per instance.
	MetricRPS Metric = "rps"
)

// Aggregation is how the per-second values of a window are averaged.
type Aggregation string

const (
	// AggregationLinear weighs every second of the window equally
	// (Knative's default, TimedFloat64Buckets).
	AggregationLinear Aggregation = "linear"
	// AggregationWeightedExponential weighs recent seconds more
	// (Knative's WeightedFloat64Buckets).
	AggregationWeightedExponential Aggregation = "weighted-exponential"
)

// Revision annotations read by SpecFor. Each overrides the config key of
// the same name for one revision. Knative's older camelCase spellings
// (autoscaling.knative.dev/minScale, ...) are accepted too; the kebab-case
// key wins when both are present.
const (
	AnnotationClass                         = "autoscaling.knative.dev/class"
	AnnotationMinScale                      = "autoscaling.knative.dev/min-scale"
	AnnotationMaxScale                      = "autoscaling.knative.dev/max-scale"
	AnnotationInitialScale                  = "autoscaling.knative.dev/initial-scale"
	AnnotationActivationScale               = "autoscaling.knative.dev/activation-scale"
	AnnotationMetric                        = "autoscaling.knative.dev/metric"
	AnnotationMetricAggregationAlgorithm    = "autoscaling.knative.dev/metric-aggregation-algorithm"
	AnnotationTarget                        = "autoscaling.knative.dev/target"
	AnnotationTargetUtilizationPercentage   = "autoscaling.knative.dev/target-utilization-percentage"
	AnnotationTargetBurstCapacity           = "autoscaling.knative.dev/target-burst-capacity"
	AnnotationWindow                        = "autoscaling.knative.dev/window"
	AnnotationPanicWindowPercentage         = "autoscaling.knative.dev/panic-window-percentage"
	AnnotationPanicThresholdPercentage      = "autoscaling.knative.dev/panic-threshold-percentage"
	AnnotationScaleDownDelay                = "autoscaling.knative.dev/scale-down-delay"
	AnnotationScaleToZeroPodRetentionPeriod = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
)

// annotationPrefix is the prefix of every autoscaling annotation.
const annotationPrefix = "autoscaling.knative.dev/"

// legacyAnnotations maps each annotation to its older spelling.
var legacyAnnotations = map[string]string{
	AnnotationMinScale:                      annotationPrefix + "minScale",
	AnnotationMaxScale:                      annotationPrefix + "maxScale",
	AnnotationInitialScale:                  annotationPrefix + "initialScale",
	AnnotationMetricAggregationAlgorithm:    annotationPrefix + "metricAggregationAlgorithm",
	AnnotationTargetUtilizationPercentage:   annotationPrefix + "targetUtilizationPercentage",
	AnnotationTargetBurstCapacity:           annotationPrefix + "targetBurstCapacity",
	AnnotationPanicWindowPercentage:         annotationPrefix + "panicWindowPercentage",
	AnnotationPanicThresholdPercentage:      annotationPrefix + "panicThresholdPercentage",
	AnnotationScaleDownDelay:                annotationPrefix + "scaleDownDelay",
	AnnotationScaleToZeroPodRetentionPeriod: annotationPrefix + "scaleToZeroPodRetentionPeriod",
}

// knownAnnotations lists every annotation SpecFor understands.
var knownAnnotations = []string{
	AnnotationClass, AnnotationMinScale, AnnotationMaxScale, AnnotationInitialScale,
	AnnotationActivationScale, AnnotationMetric, AnnotationMetricAggregationAlgorithm,
	AnnotationTarget, AnnotationTargetUtilizationPercentage, AnnotationTargetBurstCapacity,
	AnnotationWindow, AnnotationPanicWindowPercentage, AnnotationPanicThresholdPercentage,
	AnnotationScaleDownDelay, AnnotationScaleToZeroPodRetentionPeriod,
}

// Spec is everything the autoscaler needs to scale one revision: the
// Config resolved against the revision's annotations and
// containerConcurrency. It is Knative's DeciderSpec, Metric spec and the
// PodAutoscaler bounds in one value. Build it with SpecFor.
type Spec struct {
	// Metric is the scaling metric.
	Metric Metric
	// Aggregation is how the windows average their seconds.
	Aggregation Aggregation
	// TargetValue is the per-instance value of Metric the autoscaler aims
	// for: TotalValue × utilization, at least TargetMin.
	TargetValue float64
	// TotalValue is the per-instance value of Metric an instance can take:
	// containerConcurrency, the target annotation or the config default.
	TotalValue float64
	// TargetBurstCapacity is the spare capacity to keep (0 none, -1
	// unlimited); it only affects Decision.ExcessBurstCapacity.
	TargetBurstCapacity float64
	// MaxScaleUpRate and MaxScaleDownRate bound the change of one decision
	// relative to the ready instances.
	MaxScaleUpRate, MaxScaleDownRate float64
	// PanicThreshold is the ratio of panic-window demand to ready
	// instances that enters panic mode (2.0 for 200%).
	PanicThreshold float64
	// StableWindow and PanicWindow are the averaging windows, in whole
	// seconds; PanicWindow is at least one second.
	StableWindow, PanicWindow time.Duration
	// ScaleDownDelay is how long a lower decision must hold before it is
	// applied; 0 applies it at once.
	ScaleDownDelay time.Duration
	// MinScale and MaxScale bound the desired scale; MaxScale 0 means no
	// bound. MinScale is ignored while the revision is unreachable.
	MinScale, MaxScale int32
	// InitialScale is the scale of a new revision until that many instances
	// have been ready once.
	InitialScale int32
	// ActivationScale, when above 1, is the least non-zero scale: scaling
	// up from zero goes straight to it.
	ActivationScale int32
	// EnableScaleToZero lets the revision drop to zero instances.
	EnableScaleToZero bool
	// ScaleToZeroGracePeriod and ScaleToZeroPodRetentionPeriod: a revision
	// that has gone inactive keeps its last instance for the longer of the
	// two.
	ScaleToZeroGracePeriod, ScaleToZeroPodRetentionPeriod time.Duration
	// ActivationTimeout is how long the revision may wait for its first
	// ready instance before it is scaled to zero.
	ActivationTimeout time.Duration
	// Reachable tells whether any route sends traffic to the revision.
	// SpecFor sets it; Revision.SetReachable changes it.
	Reachable bool
}

// SpecFor resolves cfg against a revision's annotations and its
// containerConcurrency (0 for no limit) the way Knative's KPA does
// (ResolveMetricTarget, MakeDecider, MakeMetric, ScaleBounds,
// GetInitialScale). Every invalid annotation is reported, each error naming
// the annotation and what it accepts; unknown autoscaling.knative.dev/
// annotations are errors too, so that a misspelt key is not ignored.
func SpecFor(cfg Config, annotations map[string]string, containerConcurrency int64) (Spec, error) {
	if err := cfg.Validate(); err != nil {
		return Spec{}, fmt.Errorf("autoscaler config: %w", err)
	}
	p := annotationParser{m: annotations}
	if containerConcurrency < 0 {
		p.errs = append(p.errs, fmt.Errorf("containerConcurrency: %d must be 0 (no limit) or more", containerConcurrency))
	}
	for k := range annotations {
		if strings.HasPrefix(k, annotationPrefix) && !slices.Contains(knownAnnotations, k) && !isLegacy(k) {
			p.errs = append(p.errs, fmt.Errorf("annotation %s: unknown autoscaling annotation; the known ones are %s",
				k, strings.Join(knownAnnotations, ", ")))
		}
	}

	if k, v, ok := p.get(AnnotationClass); ok && v != KPAClass {
		p.fail(k, v, "not supported: wisp implements only the "+KPAClass+" class; remove the annotation")
	}

	s := Spec{
		Metric:                        MetricConcurrency,
		Aggregation:                   AggregationLinear,
		MaxScaleUpRate:                cfg.MaxScaleUpRate,
		MaxScaleDownRate:              cfg.MaxScaleDownRate,
		TargetBurstCapacity:           cfg.TargetBurstCapacity,
		StableWindow:                  cfg.StableWindow,
		ScaleDownDelay:                cfg.ScaleDownDelay,
		MinScale:                      cfg.MinScale,
		MaxScale:                      cfg.MaxScale,
		InitialScale:                  cfg.InitialScale,
		EnableScaleToZero:             cfg.EnableScaleToZero,
		ScaleToZeroGracePeriod:        cfg.ScaleToZeroGracePeriod,
		ScaleToZeroPodRetentionPeriod: cfg.ScaleToZeroPodRetentionPeriod,
		ActivationTimeout:             cfg.ActivationTimeout,
		Reachable:                     true,
	}

	if k, v, ok := p.get(AnnotationMetric); ok {
		switch Metric(v) {
		case MetricConcurrency, MetricRPS:
			s.Metric = Metric(v)
		default:
			p.fail(k, v, fmt.Sprintf("not a metric: want %q or %q", MetricConcurrency, MetricRPS))
		}
	}
	if k, v, ok := p.get(AnnotationMetricAggregationAlgorithm); ok {
		switch v {
		case string(AggregationLinear):
			s.Aggregation = AggregationLinear
		case string(AggregationWeightedExponential), "weightedExponential":
			s.Aggregation = AggregationWeightedExponential
		default:
			p.fail(k, v, fmt.Sprintf("not an aggregation algorithm: want %q or %q", AggregationLinear, AggregationWeightedExponential))
		}
	}

	// Scale bounds. As in Knative's webhook, activation-scale is checked
	// against the min-scale and max-scale annotations, not the defaults.
	annMin, hasMin := p.int32GE0(AnnotationMinScale)
	annMax, hasMax := p.int32GE0(AnnotationMaxScale)
	if hasMin {
		s.MinScale = annMin
	}
	if hasMax {
		s.MaxScale = annMax
		k, _, _ := p.get(AnnotationMaxScale)
		switch limit := cfg.MaxScaleLimit; {
		case limit > 0 && annMax == 0:
			p.errs = append(p.errs, fmt.Errorf("annotation %s: 0 (no limit) is not allowed: max-scale-limit is %d; give a value from 1 to %d", k, limit, limit))
		case limit > 0 && annMax > limit:
			p.errs = append(p.errs, fmt.Errorf("annotation %s: %d is above max-scale-limit %d; give a value from 1 to %d", k, annMax, limit, limit))
		}
	}
	if s.MaxScale > 0 && s.MinScale > s.MaxScale {
		k, _, _ := p.get(AnnotationMinScale)
		if !hasMin {
			k, _, _ = p.get(AnnotationMaxScale)
		}
		p.errs = append(p.errs, fmt.Errorf("annotation %s: min-scale %d is greater than max-scale %d; lower min-scale or raise max-scale",
			k, s.MinScale, s.MaxScale))
	}
	if k, v, ok := p.get(AnnotationActivationScale); ok {
		a, err := strconv.ParseInt(v, 10, 32)
		switch {
		case err != nil:
			p.fail(k, v, "not a whole number")
		case a < 2:
			p.fail(k, v, "too small: activation-scale must be at least 2 (1 is the normal behaviour; remove the annotation)")
		case int32(a) < annMin:
			p.fail(k, v, fmt.Sprintf("less than min-scale %d", annMin))
		case annMax > 0 && int32(a) > annMax:
			p.fail(k, v, fmt.Sprintf("greater than max-scale %d", annMax))
		default:
			s.ActivationScale = int32(a)
		}
	}
	if k, v, ok := p.get(AnnotationInitialScale); ok {
		i, err := strconv.ParseInt(v, 10, 32)
		switch {
		case err != nil || i < 0:
			p.fail(k, v, "not a whole number >= 0")
		case i == 0 && !cfg.AllowZeroInitialScale:
			p.fail(k, v, "not allowed: initial-scale 0 needs allow-zero-initial-scale: true in the autoscaler config")
		default:
			s.InitialScale = int32(i)
		}
	}

	// Target (Knative's ResolveMetricTarget).
	var utilization float64
	switch s.Metric {
	case MetricRPS:
		s.TotalValue = cfg.RequestsPerSecondTargetDefault
		utilization = rpsTargetUtilization
	default:
		s.TotalValue = float64(containerConcurrency)
		if s.TotalValue <= 0 {
			s.TotalValue = cfg.ContainerConcurrencyTargetDefault
		}
		utilization = cfg.ContainerConcurrencyTargetPercentage / 100
	}
	if t, ok := p.float(AnnotationTarget, TargetMin, math.Inf(1), fmt.Sprintf("a number of at least %v", TargetMin)); ok {
		s.TotalValue = t
		if s.Metric == MetricConcurrency && containerConcurrency > 0 {
			// containerConcurrency is a hard limit: never aim above it.
			s.TotalValue = math.Min(t, float64(containerConcurrency))
		}
	}
	if u, ok := p.float(AnnotationTargetUtilizationPercentage, 1, 100, "a percentage from 1 to 100"); ok {
		utilization = u / 100
	}
	s.TargetValue = math.Max(TargetMin, s.TotalValue*utilization)

	if b, ok := p.annotation(AnnotationTargetBurstCapacity); ok {
		f, err := strconv.ParseFloat(b.value, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || (f < 0 && f != -1) {
			p.fail(b.key, b.value, "not a burst capacity: want a number >= 0, or -1 for unlimited")
		} else {
			s.TargetBurstCapacity = f
		}
	}

	// Windows (Knative's StableWindow and MakeMetric).
	if d, ok := p.duration(AnnotationWindow, WindowMin, WindowMax, true); ok {
		s.StableWindow = d
	}
	panicPct := cfg.PanicWindowPercentage
	if f, ok := p.float(AnnotationPanicWindowPercentage, PanicWindowPercentageMin, PanicWindowPercentageMax,
		fmt.Sprintf("a percentage from %v to %v", PanicWindowPercentageMin, PanicWindowPercentageMax)); ok {
		panicPct = f
	}
	s.PanicWindow = max(bucketSize, time.Duration(float64(s.StableWindow)*panicPct/100).Round(time.Second))
	thresholdPct := cfg.PanicThresholdPercentage
	if f, ok := p.float(AnnotationPanicThresholdPercentage, PanicThresholdPercentageMin, PanicThresholdPercentageMax,
		fmt.Sprintf("a percentage from %v to %v", PanicThresholdPercentageMin, PanicThresholdPercentageMax)); ok {
		thresholdPct = f
	}
	s.PanicThreshold = thresholdPct / 100
	if d, ok := p.duration(AnnotationScaleDownDelay, 0, WindowMax, true); ok {
		s.ScaleDownDelay = d
	}
	if d, ok := p.duration(AnnotationScaleToZeroPodRetentionPeriod, 0, WindowMax, false); ok {
		s.ScaleToZeroPodRetentionPeriod = d
	}

	if len(p.errs) > 0 {
		slices.SortFunc(p.errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return Spec{}, errors.Join(p.errs...)
	}
	return s, nil
}

// validate checks the invariants the algorithm divides by or loops on, so
// that a hand-made Spec fails loudly instead of scaling to infinity.
func (s Spec) validate() error {
	var errs []error
	if s.Metric != MetricConcurrency && s.Metric != MetricRPS {
		errs = append(errs, fmt.Errorf("spec.Metric %q: want %q or %q", s.Metric, MetricConcurrency, MetricRPS))
	}
	if s.Aggregation != AggregationLinear && s.Aggregation != AggregationWeightedExponential {
		errs = append(errs, fmt.Errorf("spec.Aggregation %q: want %q or %q", s.Aggregation, AggregationLinear, AggregationWeightedExponential))
	}
	if !(s.TargetValue >= TargetMin) || math.IsInf(s.TargetValue, 0) {
		errs = append(errs, fmt.Errorf("spec.TargetValue %v: want at least %v", s.TargetValue, TargetMin))
	}
	if !(s.MaxScaleUpRate > 1) || !(s.MaxScaleDownRate > 1) {
		errs = append(errs, fmt.Errorf("spec.MaxScaleUpRate %v and spec.MaxScaleDownRate %v: both must be greater than 1", s.MaxScaleUpRate, s.MaxScaleDownRate))
	}
	if s.StableWindow < time.Second || s.PanicWindow < time.Second {
		errs = append(errs, fmt.Errorf("spec.StableWindow %v and spec.PanicWindow %v: both must be at least 1s", s.StableWindow, s.PanicWindow))
	}
	if s.ScaleDownDelay < 0 {
		errs = append(errs, fmt.Errorf("spec.ScaleDownDelay %v: must not be negative", s.ScaleDownDelay))
	}
	if s.MinScale < 0 || s.MaxScale < 0 || s.InitialScale < 0 || s.ActivationScale < 0 {
		errs = append(errs, errors.New("spec.MinScale, MaxScale, InitialScale and ActivationScale must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid autoscaler Spec (build it with SpecFor): %w", err)
	}
	return nil
}

func isLegacy(key string) bool {
	for _, l := range legacyAnnotations {
		if l == key {
			return true
		}
	}
	return false
}

// annotationParser reads annotations and collects their errors.
type annotationParser struct {
	m    map[string]string
	errs []error
}

type keyValue struct{ key, value string }

// annotation returns the key actually present (the kebab-case one first)
// and its value.
func (p *annotationParser) annotation(key string) (keyValue, bool) {
	if v, ok := p.m[key]; ok {
		return keyValue{key, strings.TrimSpace(v)}, true
	}
	if l, ok := legacyAnnotations[key]; ok {
		if v, ok := p.m[l]; ok {
			return keyValue{l, strings.TrimSpace(v)}, true
		}
	}
	return keyValue{}, false
}

func (p *annotationParser) get(key string) (string, string, bool) {
	kv, ok := p.annotation(key)
	return kv.key, kv.value, ok
}

func (p *annotationParser) fail(key, value, why string) {
	p.errs = append(p.errs, fmt.Errorf("annotation %s: %q is %s", key, value, why))
}

func (p *annotationParser) int32GE0(key string) (int32, bool) {
	k, v, ok := p.get(key)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(v, 10, 32)
	if err != nil || i < 0 {
		p.fail(k, v, "not a whole number >= 0")
		return 0, false
	}
	return int32(i), true
}

func (p *annotationParser) float(key string, lo, hi float64, want string) (float64, bool) {
	k, v, ok := p.get(key)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < lo || f > hi || math.IsInf(f, 0) {
		p.fail(k, v, "not "+want)
		return 0, false
	}
	return f, true
}

// duration parses a duration in [lo, hi]; wholeSeconds also requires
// second precision, as Knative does for the windows and the delay.
func (p *annotationParser) duration(key string, lo, hi time.Duration, wholeSeconds bool) (time.Duration, bool) {
	k, v, ok := p.get(key)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi || (wholeSeconds && d.Truncate(time.Second) != d) {
		want := fmt.Sprintf("not a duration from %v to %v, such as \"60s\"", lo, hi)
		if wholeSeconds {
			want = fmt.Sprintf("not a duration from %v to %v in whole seconds, such as \"60s\"", lo, hi)
		}
		p.fail(k, v, want)
		return 0, false
	}
	return d, true
}
