package autoscaler

// The parity test runs Knative's own decider, built by Knative's own
// constructors from the same config map and annotations, side by side with
// ours, feeds both the same per-second stats and ready counts, and requires
// the same decision at every 2-second tick.
//
// Knative side, all real code from knative.dev/serving v0.50.0:
//   - config.NewConfigFromMap parses the config map;
//   - kpa/resources.MakeDecider and reconciler/autoscaling/resources.MakeMetric
//     derive the DeciderSpec and the Metric (windows, aggregation) from a
//     PodAutoscaler carrying the annotations and containerConcurrency;
//   - metrics.MetricCollector holds the windows (aggregation buckets); it is
//     fed with Record, and its scraper factory returns no scraper, so its
//     background ticker does nothing: the Metric has no scrape target, which
//     is Knative's activator-only mode and wisp's (see RATIONALE.md);
//   - scaling.New builds the decider with a pod counter that returns the
//     scenario's ready count, and a MeterProvider that captures its gauges
//     so that the panic mode can be read.
//
// Knative's KPA reconciler (pkg/reconciler/autoscaling/kpa), where the
// scale-to-zero gate lives, cannot be run this way: its scaler is unexported
// and needs injection clients (dynamicclient), an SKS and an HTTP prober.
// Revision's gate is pinned by revision_test.go instead.

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/types"

	"knative.dev/serving/pkg/apis/autoscaling"
	autoscalingv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	asconfig "knative.dev/serving/pkg/autoscaler/config"
	"knative.dev/serving/pkg/autoscaler/config/autoscalerconfig"
	"knative.dev/serving/pkg/autoscaler/metrics"
	"knative.dev/serving/pkg/autoscaler/scaling"
	kparesources "knative.dev/serving/pkg/reconciler/autoscaling/kpa/resources"
	aresources "knative.dev/serving/pkg/reconciler/autoscaling/resources"
)

// parityStart is a fixed, odd Unix second, so that the 2-second delay
// window buckets do not align with the ticks by accident.
var parityStart = time.Unix(1_700_000_001, 0)

// load is one second of a scenario.
type load struct {
	concurrency, requests float64
	// skip leaves the second unrecorded (a reporting gap).
	skip bool
}

type parityScenario struct {
	name        string
	config      map[string]string
	annotations map[string]string
	cc          int64
	unreachable bool
	seconds     int
	load        func(sec int) load
	// lag is how many ticks (at least 1) instances take to become ready:
	// the ready count at a tick is Knative's decision of lag ticks before.
	lag int
	// extraTick, when set, adds a tick at the odd seconds it returns true
	// for, as Knative's Poke does between regular ticks.
	extraTick func(sec int) bool
	// startReady is the ready count when the deciders are built.
	startReady int
	// realClock starts the scenario at the wall clock's time: Knative's
	// constructor reads time.Now() when it starts in panic mode.
	realClock bool
	// check asserts something about our decisions, so that a scenario
	// shows it exercised what its name says.
	check func(t *testing.T, ds []Decision)
}

func constant(c float64) func(int) load {
	return func(int) load { return load{concurrency: c, requests: c * 5} }
}

func TestParityWithKnative(t *testing.T) {
	noisy := func(seed uint64, mean, spread float64) func(int) load {
		rng := rand.New(rand.NewPCG(seed, seed))
		vals := make([]load, 0, 1000)
		for range 1000 {
			c := math.Max(0, mean+spread*(rng.Float64()*2-1))
			vals = append(vals, load{concurrency: c, requests: math.Round(c * (2 + rng.Float64()))})
		}
		return func(s int) load { return vals[s%len(vals)] }
	}
	rpsBase, weightedBase := noisy(3, 20, 5), noisy(5, 60, 50)

	scenarios := []parityScenario{{
		name:    "steady load",
		seconds: 300, lag: 1,
		load: constant(140),
		check: func(t *testing.T, ds []Decision) {
			if got := ds[len(ds)-1].DesiredScale; got != 2 {
				t.Errorf("steady 140 at target 70: desired %d, want 2", got)
			}
		},
	}, {
		name:    "ramp up",
		seconds: 300, lag: 2,
		load: func(s int) load { return load{concurrency: float64(s) * 3, requests: float64(s) * 10} },
		check: func(t *testing.T, ds []Decision) {
			if got := ds[len(ds)-1].DesiredScale; got < 10 {
				t.Errorf("ramp to 900: desired %d, want >= 10", got)
			}
		},
	}, {
		name:    "sudden burst enters and leaves panic",
		seconds: 400, lag: 3,
		load: func(s int) load {
			if s >= 60 && s < 90 {
				return load{concurrency: 1000, requests: 5000}
			}
			return load{concurrency: 50, requests: 250}
		},
		check: func(t *testing.T, ds []Decision) {
			if !anyPanic(ds) {
				t.Error("burst never entered panic mode")
			}
			if ds[len(ds)-1].PanicMode {
				t.Error("still in panic at the end")
			}
		},
	}, {
		name:    "drop to zero",
		config:  map[string]string{"target-burst-capacity": "0"},
		seconds: 260, lag: 1,
		load: func(s int) load {
			if s < 60 {
				return load{concurrency: 200, requests: 900}
			}
			return load{}
		},
		check: func(t *testing.T, ds []Decision) {
			if got := ds[len(ds)-1].DesiredScale; got != 0 {
				t.Errorf("after 200s idle: desired %d, want 0", got)
			}
		},
	}, {
		name:        "noisy load",
		annotations: map[string]string{AnnotationTargetBurstCapacity: "-1"},
		seconds:     400, lag: 1,
		load: noisy(1, 300, 250),
	}, {
		name:        "noisy load, slow instances",
		annotations: map[string]string{AnnotationWindow: "20s", AnnotationPanicWindowPercentage: "25"},
		seconds:     400, lag: 4,
		load: noisy(2, 150, 150),
	}, {
		name:        "rps metric",
		annotations: map[string]string{AnnotationMetric: "rps", AnnotationTarget: "50"},
		seconds:     300, lag: 1,
		load: func(s int) load {
			l := rpsBase(s)
			if s > 100 && s < 130 {
				l.requests *= 10
			}
			return l
		},
		check: func(t *testing.T, ds []Decision) {
			if !anyPanic(ds) {
				t.Error("rps burst never entered panic mode")
			}
		},
	}, {
		name:        "scale-down-delay, with extra ticks",
		annotations: map[string]string{AnnotationScaleDownDelay: "20s"},
		seconds:     300, lag: 1,
		extraTick: func(s int) bool { return s > 30 && s < 80 || s > 95 && s < 130 },
		load: func(s int) load {
			switch {
			case s < 40, s >= 100 && s < 110, s >= 150 && s < 151:
				return load{concurrency: 400}
			}
			return load{}
		},
		check: func(t *testing.T, ds []Decision) {
			if !anyReason(ds, "scale-down-delay") {
				t.Error("the delay never held a decision")
			}
		},
	}, {
		name: "config: slow rates, target percentage",
		config: map[string]string{
			"max-scale-up-rate": "1.5", "max-scale-down-rate": "4",
			"container-concurrency-target-percentage": "0.5",
			"panic-threshold-percentage":              "150",
			"stable-window":                           "30s",
		},
		seconds: 300, lag: 2,
		load: func(s int) load {
			if s < 150 {
				return load{concurrency: float64(s) * 4}
			}
			return load{concurrency: 20}
		},
	}, {
		name: "containerConcurrency caps the target",
		cc:   10,
		annotations: map[string]string{
			AnnotationTarget:                      "25",
			AnnotationTargetUtilizationPercentage: "50",
			AnnotationPanicThresholdPercentage:    "300",
		},
		seconds: 300, lag: 1,
		load: noisy(4, 40, 40),
	}, {
		name:        "weighted exponential aggregation",
		annotations: map[string]string{AnnotationMetricAggregationAlgorithm: "weightedExponential"},
		seconds:     300, lag: 2,
		load: func(s int) load {
			if s >= 50 && s < 80 {
				return load{concurrency: 700}
			}
			return weightedBase(s)
		},
	}, {
		name:    "reporting gap",
		seconds: 300, lag: 1,
		load: func(s int) load {
			switch {
			case s < 60:
				return load{concurrency: 300}
			case s < 150:
				return load{skip: true}
			case s < 170:
				return load{concurrency: 100}
			case s < 200:
				return load{skip: true}
			case s < 260:
				// One record per panic window: gaps of exactly a window.
				if s%6 == 0 {
					return load{concurrency: 50}
				}
				return load{skip: true}
			}
			return load{concurrency: 10}
		},
	}, {
		name:        "activation-scale",
		annotations: map[string]string{AnnotationActivationScale: "3"},
		seconds:     300, lag: 1,
		load: func(s int) load {
			if s < 20 || (s >= 200 && s < 205) {
				return load{concurrency: 5}
			}
			return load{}
		},
		check: func(t *testing.T, ds []Decision) {
			if ds[0].DesiredScale != 3 {
				t.Errorf("first decision %d, want activation-scale 3", ds[0].DesiredScale)
			}
		},
	}, {
		name:        "unreachable revision scales down at once",
		unreachable: true,
		seconds:     200, lag: 1,
		load: func(s int) load {
			if s < 60 {
				return load{concurrency: 1000}
			}
			return load{}
		},
	}, {
		name:       "restart with 5 ready instances starts in panic",
		startReady: 5, realClock: true,
		seconds: 120, lag: 1,
		load: constant(10),
		check: func(t *testing.T, ds []Decision) {
			if !ds[0].PanicMode || ds[0].DesiredScale != 5 {
				t.Errorf("first decision %+v, want panic holding 5", ds[0])
			}
			if last := ds[len(ds)-1]; last.PanicMode || last.DesiredScale != 1 {
				t.Errorf("last decision %+v, want stable at 1", last)
			}
		},
	}}

	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			runParity(t, sc)
		})
	}
}

func anyPanic(ds []Decision) bool {
	for _, d := range ds {
		if d.PanicMode {
			return true
		}
	}
	return false
}

func anyReason(ds []Decision, s string) bool {
	for _, d := range ds {
		if strings.Contains(d.Reason, s) {
			return true
		}
	}
	return false
}

func runParity(t *testing.T, sc parityScenario) {
	t.Helper()
	start := parityStart
	if sc.realClock {
		// Just before Knative's constructor reads the clock: its panic start
		// is then within microseconds of ours, far from the ticks' half
		// second.
		start = time.Now()
	}
	kn := newKnativeDecider(t, sc)

	cfg, err := ConfigFromMap(sc.config)
	if err != nil {
		t.Fatalf("ConfigFromMap: %v", err)
	}
	spec, err := SpecFor(cfg, sc.annotations, sc.cc)
	if err != nil {
		t.Fatalf("SpecFor: %v", err)
	}
	spec.Reachable = !sc.unreachable
	ours, err := NewAutoscaler(spec, start, sc.startReady)
	if err != nil {
		t.Fatal(err)
	}

	history := []int32{}
	ready := sc.startReady
	var decisions []Decision
	for s := range sc.seconds {
		now := start.Add(time.Duration(s) * time.Second)
		if l := sc.load(s); !l.skip {
			kn.record(now, l)
			ours.Record(now, l.concurrency, l.requests)
		}
		if s%2 != 0 && (sc.extraTick == nil || !sc.extraTick(s)) {
			continue
		}
		tick := now.Add(500 * time.Millisecond)
		if i := len(history) - sc.lag; i >= 0 {
			ready = int(history[i])
		}
		want := kn.scale(tick, ready)
		got := ours.Scale(tick, ready)
		decisions = append(decisions, got)
		if got.DesiredScale != want.desired || got.PanicMode != want.panic ||
			got.ExcessBurstCapacity != want.ebc || got.StableValue != want.stable || got.PanicValue != want.panicValue {
			t.Fatalf("second %d, %d ready: ours %+v\nknative desired=%d panic=%v ebc=%d stable=%v panic=%v",
				s, ready, got, want.desired, want.panic, want.ebc, want.stable, want.panicValue)
		}
		if s%2 == 0 {
			history = append(history, want.desired)
		}
	}
	if sc.check != nil {
		sc.check(t, decisions)
	}
	t.Logf("%d ticks agree; last: %s", len(decisions), decisions[len(decisions)-1].Reason)
}

// knativeDecider is Knative's decider and metric collector for one
// revision.
type knativeDecider struct {
	collector *metrics.MetricCollector
	scaler    scaling.UniScaler
	pods      *fakePodCounter
	meter     *gaugeMeter
	logger    *zap.SugaredLogger
	key       types.NamespacedName
}

type knativeResult struct {
	desired, ebc       int32
	panic              bool
	stable, panicValue float64
}

func knativeConfig(t *testing.T, m map[string]string) *autoscalerconfig.Config {
	t.Helper()
	cfg, err := asconfig.NewConfigFromMap(m)
	if err != nil {
		t.Fatalf("knative NewConfigFromMap: %v", err)
	}
	return cfg
}

func knativePA(annotations map[string]string, cc int64, unreachable bool) *autoscalingv1alpha1.PodAutoscaler {
	pa := &autoscalingv1alpha1.PodAutoscaler{}
	pa.Namespace, pa.Name = "ns", "rev"
	pa.Annotations = annotations
	pa.Spec.ContainerConcurrency = cc
	pa.Spec.Reachability = autoscalingv1alpha1.ReachabilityReachable
	if unreachable {
		pa.Spec.Reachability = autoscalingv1alpha1.ReachabilityUnreachable
	}
	return pa
}

func newKnativeDecider(t *testing.T, sc parityScenario) *knativeDecider {
	t.Helper()
	cfg := knativeConfig(t, sc.config)
	pa := knativePA(sc.annotations, sc.cc, sc.unreachable)
	decider := kparesources.MakeDecider(pa, cfg)
	// No scrape target: the activator is the only reporter.
	metric := aresources.MakeMetric(pa, "", cfg)

	logger := zap.NewNop().Sugar()
	noScraper := func(*autoscalingv1alpha1.Metric, *zap.SugaredLogger) (metrics.StatsScraper, error) {
		return nil, nil
	}
	collector := metrics.NewMetricCollector(noScraper, logger)
	if err := collector.CreateOrUpdate(metric); err != nil {
		t.Fatalf("knative collector: %v", err)
	}
	t.Cleanup(func() { collector.Delete(metric.Namespace, metric.Name) })

	kd := &knativeDecider{
		collector: collector,
		pods:      &fakePodCounter{ready: sc.startReady},
		meter:     &gaugeMeter{},
		logger:    logger,
		key:       types.NamespacedName{Namespace: metric.Namespace, Name: metric.Name},
	}
	kd.scaler = scaling.New(attribute.NewSet(), gaugeMeterProvider{m: kd.meter}, "ns", "rev",
		collector, kd.pods, &decider.Spec)
	t.Cleanup(kd.scaler.OnDelete)
	return kd
}

func (k *knativeDecider) record(now time.Time, l load) {
	k.collector.Record(k.key, now, metrics.Stat{
		AverageConcurrentRequests: l.concurrency,
		RequestCount:              l.requests,
	})
}

func (k *knativeDecider) scale(now time.Time, ready int) knativeResult {
	k.pods.ready = ready
	sr := k.scaler.Scale(k.logger, now)
	if !sr.ScaleValid {
		panic("knative decider gave no decision")
	}
	g := k.meter.observe()
	return knativeResult{
		desired:    sr.DesiredPodCount,
		ebc:        sr.ExcessBurstCapacity,
		panic:      g["kn.revision.panic.mode"] == 1,
		stable:     firstOf(g, "kn.revision.concurrency.stable", "kn.revision.rps.stable"),
		panicValue: firstOf(g, "kn.revision.concurrency.panic", "kn.revision.rps.panic"),
	}
}

func firstOf(g map[string]float64, keys ...string) float64 {
	for _, k := range keys {
		if v, ok := g[k]; ok {
			return v
		}
	}
	return math.NaN()
}

// fakePodCounter is Knative's resources.EndpointsCounter.
type fakePodCounter struct{ ready int }

func (f *fakePodCounter) ReadyCount() (int, error)    { return f.ready, nil }
func (f *fakePodCounter) NotReadyCount() (int, error) { return 0, nil }

// gaugeMeterProvider hands Knative's decider a Meter whose observable
// gauges can be read back, since its panic mode is only visible there.
type gaugeMeterProvider struct {
	noop.MeterProvider
	m *gaugeMeter
}

func (p gaugeMeterProvider) Meter(string, ...metric.MeterOption) metric.Meter { return p.m }

type gaugeMeter struct {
	noop.Meter
	callbacks []metric.Callback
}

type namedInt64Gauge struct {
	noop.Int64ObservableGauge
	name string
}

type namedFloat64Gauge struct {
	noop.Float64ObservableGauge
	name string
}

func (m *gaugeMeter) Int64ObservableGauge(name string, _ ...metric.Int64ObservableGaugeOption) (metric.Int64ObservableGauge, error) {
	return &namedInt64Gauge{name: name}, nil
}

func (m *gaugeMeter) Float64ObservableGauge(name string, _ ...metric.Float64ObservableGaugeOption) (metric.Float64ObservableGauge, error) {
	return &namedFloat64Gauge{name: name}, nil
}

func (m *gaugeMeter) RegisterCallback(f metric.Callback, _ ...metric.Observable) (metric.Registration, error) {
	m.callbacks = append(m.callbacks, f)
	return noop.Registration{}, nil
}

func (m *gaugeMeter) observe() map[string]float64 {
	o := &gaugeObserver{values: map[string]float64{}}
	for _, cb := range m.callbacks {
		if err := cb(context.Background(), o); err != nil {
			panic(err)
		}
	}
	return o.values
}

type gaugeObserver struct {
	noop.Observer
	values map[string]float64
}

func (o *gaugeObserver) ObserveInt64(obs metric.Int64Observable, v int64, _ ...metric.ObserveOption) {
	if g, ok := obs.(*namedInt64Gauge); ok {
		o.values[g.name] = float64(v)
	}
}

func (o *gaugeObserver) ObserveFloat64(obs metric.Float64Observable, v float64, _ ...metric.ObserveOption) {
	if g, ok := obs.(*namedFloat64Gauge); ok {
		o.values[g.name] = v
	}
}

// TestSpecForMatchesKnative derives the decider and metric specs with
// Knative's MakeDecider, MakeMetric, ScaleBounds and GetInitialScale and
// compares them with SpecFor's.
func TestSpecForMatchesKnative(t *testing.T) {
	tests := []struct {
		name        string
		config      map[string]string
		annotations map[string]string
		cc          int64
	}{
		{name: "defaults"},
		{name: "containerConcurrency", cc: 10},
		{name: "target below containerConcurrency", cc: 10, annotations: map[string]string{AnnotationTarget: "4"}},
		{name: "target above containerConcurrency", cc: 10, annotations: map[string]string{AnnotationTarget: "40"}},
		{name: "tiny target", annotations: map[string]string{AnnotationTarget: "0.01"}},
		{name: "rps", annotations: map[string]string{AnnotationMetric: "rps"}},
		{name: "rps with target and utilization", cc: 3, annotations: map[string]string{
			AnnotationMetric: "rps", AnnotationTarget: "33", AnnotationTargetUtilizationPercentage: "90"}},
		{name: "every annotation", cc: 50, annotations: map[string]string{
			AnnotationMinScale: "2", AnnotationMaxScale: "9", AnnotationInitialScale: "4",
			AnnotationActivationScale: "3", AnnotationTarget: "30", AnnotationTargetUtilizationPercentage: "80",
			AnnotationTargetBurstCapacity: "50", AnnotationWindow: "45s", AnnotationPanicWindowPercentage: "13",
			AnnotationPanicThresholdPercentage: "250", AnnotationScaleDownDelay: "15s",
			AnnotationScaleToZeroPodRetentionPeriod: "1m30s", AnnotationMetricAggregationAlgorithm: "weighted-exponential",
		}},
		{name: "legacy spellings", annotations: map[string]string{
			"autoscaling.knative.dev/minScale": "1", "autoscaling.knative.dev/maxScale": "7",
			"autoscaling.knative.dev/initialScale": "2", "autoscaling.knative.dev/targetBurstCapacity": "-1",
			"autoscaling.knative.dev/panicWindowPercentage": "50", "autoscaling.knative.dev/panicThresholdPercentage": "110",
			"autoscaling.knative.dev/scaleDownDelay": "5s", "autoscaling.knative.dev/targetUtilizationPercentage": "100",
		}},
		{name: "kebab-case wins over legacy", annotations: map[string]string{
			"autoscaling.knative.dev/minScale": "1", AnnotationMinScale: "3"}},
		{name: "panic window rounds to a second", annotations: map[string]string{
			AnnotationWindow: "7s", AnnotationPanicWindowPercentage: "1"}},
		{name: "config overrides", config: map[string]string{
			"container-concurrency-target-default": "20", "container-concurrency-target-percentage": "85",
			"requests-per-second-target-default": "10", "target-burst-capacity": "0",
			"stable-window": "2m", "panic-window-percentage": "5", "panic-threshold-percentage": "400",
			"max-scale-up-rate": "3", "max-scale-down-rate": "1.5", "scale-to-zero-grace-period": "10s",
			"scale-to-zero-pod-retention-period": "20s", "scale-down-delay": "4s", "initial-scale": "0",
			"allow-zero-initial-scale": "true", "min-scale": "0", "max-scale": "10", "max-scale-limit": "20",
			"enable-scale-to-zero": "false",
		}},
		{name: "zero initial scale allowed", config: map[string]string{"allow-zero-initial-scale": "true"},
			annotations: map[string]string{AnnotationInitialScale: "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kcfg := knativeConfig(t, tt.config)
			pa := knativePA(tt.annotations, tt.cc, false)
			if err := autoscaling.ValidateAnnotations(context.Background(), kcfg, tt.annotations); err != nil {
				t.Fatalf("knative rejects the annotations: %v", err)
			}
			kd := kparesources.MakeDecider(pa, kcfg).Spec
			km := aresources.MakeMetric(pa, "", kcfg).Spec
			kmin, kmax := pa.ScaleBounds(kcfg)
			kretention, ok := pa.ScaleToZeroPodRetention()
			if !ok {
				kretention = kcfg.ScaleToZeroPodRetentionPeriod
			}
			kagg := AggregationLinear
			if m := (&autoscalingv1alpha1.Metric{}); true {
				m.Annotations = tt.annotations
				if m.AggregationAlgorithm() == autoscaling.MetricAggregationAlgorithmWeightedExponential {
					kagg = AggregationWeightedExponential
				}
			}
			want := Spec{
				Metric:                        Metric(pa.Metric()),
				Aggregation:                   kagg,
				TargetValue:                   kd.TargetValue,
				TotalValue:                    kd.TotalValue,
				TargetBurstCapacity:           kd.TargetBurstCapacity,
				MaxScaleUpRate:                kd.MaxScaleUpRate,
				MaxScaleDownRate:              kd.MaxScaleDownRate,
				PanicThreshold:                kd.PanicThreshold,
				StableWindow:                  km.StableWindow,
				PanicWindow:                   km.PanicWindow,
				ScaleDownDelay:                kd.ScaleDownDelay,
				MinScale:                      kmin,
				MaxScale:                      kmax,
				InitialScale:                  kd.InitialScale,
				ActivationScale:               kd.ActivationScale,
				EnableScaleToZero:             kcfg.EnableScaleToZero,
				ScaleToZeroGracePeriod:        kcfg.ScaleToZeroGracePeriod,
				ScaleToZeroPodRetentionPeriod: kretention,
				ActivationTimeout:             DefaultConfig().ActivationTimeout,
				Reachable:                     kd.Reachable,
			}
			if kd.StableWindow != km.StableWindow {
				t.Fatalf("knative decider and metric disagree on the stable window: %v, %v", kd.StableWindow, km.StableWindow)
			}

			cfg, err := ConfigFromMap(tt.config)
			if err != nil {
				t.Fatal(err)
			}
			got, err := SpecFor(cfg, tt.annotations, tt.cc)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("SpecFor:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestConfigMatchesKnative parses the same config maps with Knative's
// NewConfigFromMap and ours: both must accept or both reject, and agree on
// every value.
func TestConfigMatchesKnative(t *testing.T) {
	tests := []struct {
		name string
		m    map[string]string
		// wispOnly marks maps only wisp rejects (stricter on purpose, see
		// RATIONALE.md).
		wispOnly bool
	}{
		{name: "empty", m: nil},
		{name: "fraction percentage", m: map[string]string{"container-concurrency-target-percentage": "0.85"}},
		{name: "1 is 100%", m: map[string]string{"container-concurrency-target-percentage": "1"}},
		{name: "everything", m: map[string]string{
			"container-concurrency-target-default": "7", "container-concurrency-target-percentage": "60",
			"requests-per-second-target-default": "33", "target-burst-capacity": "-1", "stable-window": "90s",
			"panic-window-percentage": "20", "panic-threshold-percentage": "300", "max-scale-up-rate": "10",
			"max-scale-down-rate": "3", "scale-to-zero-grace-period": "1m", "scale-to-zero-pod-retention-period": "2m",
			"scale-down-delay": "10s", "initial-scale": "3", "allow-zero-initial-scale": "true", "min-scale": "1",
			"max-scale": "5", "max-scale-limit": "8", "enable-scale-to-zero": "false", "activator-capacity": "50",
		}},
		{name: "percentage above 100", m: map[string]string{"container-concurrency-target-percentage": "101"}},
		{name: "target too small", m: map[string]string{"container-concurrency-target-default": "0.01", "container-concurrency-target-percentage": "50"}},
		{name: "rps target too small", m: map[string]string{"requests-per-second-target-default": "0"}},
		{name: "burst capacity -2", m: map[string]string{"target-burst-capacity": "-2"}},
		{name: "stable window too short", m: map[string]string{"stable-window": "5s"}},
		{name: "stable window fractional", m: map[string]string{"stable-window": "6500ms"}},
		{name: "stable window not a duration", m: map[string]string{"stable-window": "60"}},
		{name: "panic window percentage 0.5", m: map[string]string{"panic-window-percentage": "0.5"}},
		{name: "scale up rate 1", m: map[string]string{"max-scale-up-rate": "1"}},
		{name: "scale down rate 1", m: map[string]string{"max-scale-down-rate": "1"}},
		{name: "grace 0", m: map[string]string{"scale-to-zero-grace-period": "0s"}},
		{name: "negative retention", m: map[string]string{"scale-to-zero-pod-retention-period": "-1s"}},
		{name: "fractional delay", m: map[string]string{"scale-down-delay": "1500ms"}},
		{name: "initial scale 0 not allowed", m: map[string]string{"initial-scale": "0"}},
		{name: "negative min scale", m: map[string]string{"min-scale": "-1"}},
		{name: "max scale above limit", m: map[string]string{"max-scale": "10", "max-scale-limit": "5"}},
		{name: "unbounded max with limit", m: map[string]string{"max-scale-limit": "5"}},
		{name: "min above max", m: map[string]string{"min-scale": "4", "max-scale": "3"}},
		{name: "activator capacity 0.5", m: map[string]string{"activator-capacity": "0.5"}},
		{name: "bad bool", m: map[string]string{"enable-scale-to-zero": "yes"}},
		{name: "bad int", m: map[string]string{"min-scale": "1.5"}},
		{name: "panic threshold 50", m: map[string]string{"panic-threshold-percentage": "50"}, wispOnly: true},
		{name: "unknown key", m: map[string]string{"stable-windw": "60s"}, wispOnly: true},
		{name: "NaN", m: map[string]string{"max-scale-up-rate": "NaN"}, wispOnly: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kcfg, kerr := asconfig.NewConfigFromMap(tt.m)
			cfg, err := ConfigFromMap(tt.m)
			switch {
			case tt.wispOnly:
				if kerr != nil {
					t.Fatalf("marked wisp-only but knative rejects it too: %v", kerr)
				}
				if err == nil {
					t.Fatal("wisp accepts it")
				}
				return
			case (kerr == nil) != (err == nil):
				t.Fatalf("knative error %v, ours %v", kerr, err)
			case err != nil:
				return
			}
			want := Config{
				ContainerConcurrencyTargetDefault:    kcfg.ContainerConcurrencyTargetDefault,
				ContainerConcurrencyTargetPercentage: kcfg.ContainerConcurrencyTargetFraction * 100,
				RequestsPerSecondTargetDefault:       kcfg.RPSTargetDefault,
				TargetBurstCapacity:                  kcfg.TargetBurstCapacity,
				StableWindow:                         kcfg.StableWindow,
				PanicWindowPercentage:                kcfg.PanicWindowPercentage,
				PanicThresholdPercentage:             kcfg.PanicThresholdPercentage,
				MaxScaleUpRate:                       kcfg.MaxScaleUpRate,
				MaxScaleDownRate:                     kcfg.MaxScaleDownRate,
				ScaleToZeroGracePeriod:               kcfg.ScaleToZeroGracePeriod,
				ScaleToZeroPodRetentionPeriod:        kcfg.ScaleToZeroPodRetentionPeriod,
				ScaleDownDelay:                       kcfg.ScaleDownDelay,
				InitialScale:                         kcfg.InitialScale,
				AllowZeroInitialScale:                kcfg.AllowZeroInitialScale,
				MinScale:                             kcfg.MinScale,
				MaxScale:                             kcfg.MaxScale,
				MaxScaleLimit:                        kcfg.MaxScaleLimit,
				EnableScaleToZero:                    kcfg.EnableScaleToZero,
				ActivatorCapacity:                    kcfg.ActivatorCapacity,
				ActivationTimeout:                    DefaultConfig().ActivationTimeout,
			}
			if !approxEqualConfig(cfg, want) {
				t.Errorf("ConfigFromMap:\n got %+v\nwant %+v", cfg, want)
			}
		})
	}
}

// approxEqualConfig compares configs, allowing for the percentage being
// stored as a fraction by Knative (0.85*100 is not exactly 85).
func approxEqualConfig(a, b Config) bool {
	if math.Abs(a.ContainerConcurrencyTargetPercentage-b.ContainerConcurrencyTargetPercentage) > 1e-9 {
		return false
	}
	a.ContainerConcurrencyTargetPercentage = b.ContainerConcurrencyTargetPercentage
	return a == b
}

// TestAnnotationValidationMatchesKnative checks that SpecFor rejects what
// Knative's webhook (autoscaling.ValidateAnnotations) rejects, naming the
// annotation, and accepts what it accepts.
func TestAnnotationValidationMatchesKnative(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		// key is the annotation the error must name; "" means valid.
		key string
		// wispOnly marks annotations only wisp rejects.
		wispOnly bool
	}{
		{name: "valid", ann: map[string]string{AnnotationMinScale: "1", AnnotationMaxScale: "3", AnnotationWindow: "6s"}},
		{name: "min-scale negative", ann: map[string]string{AnnotationMinScale: "-1"}, key: AnnotationMinScale},
		{name: "min-scale not a number", ann: map[string]string{AnnotationMinScale: "two"}, key: AnnotationMinScale},
		{name: "legacy min-scale", ann: map[string]string{"autoscaling.knative.dev/minScale": "x"}, key: "autoscaling.knative.dev/minScale"},
		{name: "max-scale overflow", ann: map[string]string{AnnotationMaxScale: "3000000000"}, key: AnnotationMaxScale},
		{name: "max below min", ann: map[string]string{AnnotationMinScale: "5", AnnotationMaxScale: "2"}, key: AnnotationMinScale},
		{name: "initial-scale 0", ann: map[string]string{AnnotationInitialScale: "0"}, key: AnnotationInitialScale},
		{name: "initial-scale negative", ann: map[string]string{AnnotationInitialScale: "-2"}, key: AnnotationInitialScale},
		{name: "activation-scale 1", ann: map[string]string{AnnotationActivationScale: "1"}, key: AnnotationActivationScale},
		{name: "activation-scale below min", ann: map[string]string{AnnotationActivationScale: "2", AnnotationMinScale: "3"}, key: AnnotationActivationScale},
		{name: "activation-scale above max", ann: map[string]string{AnnotationActivationScale: "4", AnnotationMaxScale: "3"}, key: AnnotationActivationScale},
		{name: "metric cpu", ann: map[string]string{AnnotationMetric: "cpu"}, key: AnnotationMetric},
		{name: "target too small", ann: map[string]string{AnnotationTarget: "0.001"}, key: AnnotationTarget},
		{name: "target not a number", ann: map[string]string{AnnotationTarget: "lots"}, key: AnnotationTarget},
		{name: "utilization 0", ann: map[string]string{AnnotationTargetUtilizationPercentage: "0.5"}, key: AnnotationTargetUtilizationPercentage},
		{name: "utilization 101", ann: map[string]string{AnnotationTargetUtilizationPercentage: "101"}, key: AnnotationTargetUtilizationPercentage},
		{name: "burst -2", ann: map[string]string{AnnotationTargetBurstCapacity: "-2"}, key: AnnotationTargetBurstCapacity},
		{name: "window 5s", ann: map[string]string{AnnotationWindow: "5s"}, key: AnnotationWindow},
		{name: "window 2h", ann: map[string]string{AnnotationWindow: "2h"}, key: AnnotationWindow},
		{name: "window fractional", ann: map[string]string{AnnotationWindow: "10.5s"}, key: AnnotationWindow},
		{name: "window no unit", ann: map[string]string{AnnotationWindow: "60"}, key: AnnotationWindow},
		{name: "panic window 0.5%", ann: map[string]string{AnnotationPanicWindowPercentage: "0.5"}, key: AnnotationPanicWindowPercentage},
		{name: "panic threshold 100%", ann: map[string]string{AnnotationPanicThresholdPercentage: "100"}, key: AnnotationPanicThresholdPercentage},
		{name: "panic threshold 1001%", ann: map[string]string{AnnotationPanicThresholdPercentage: "1001"}, key: AnnotationPanicThresholdPercentage},
		{name: "scale-down-delay negative", ann: map[string]string{AnnotationScaleDownDelay: "-1s"}, key: AnnotationScaleDownDelay},
		{name: "scale-down-delay fractional", ann: map[string]string{AnnotationScaleDownDelay: "1.5s"}, key: AnnotationScaleDownDelay},
		{name: "retention 2h", ann: map[string]string{AnnotationScaleToZeroPodRetentionPeriod: "2h"}, key: AnnotationScaleToZeroPodRetentionPeriod},
		{name: "aggregation unknown", ann: map[string]string{AnnotationClass: KPAClass, AnnotationMetricAggregationAlgorithm: "median"}, key: AnnotationMetricAggregationAlgorithm},
		{name: "class unknown knative", ann: map[string]string{AnnotationClass: "foo.autoscaling.knative.dev"}, key: AnnotationClass},
		{name: "class hpa", ann: map[string]string{AnnotationClass: "hpa.autoscaling.knative.dev"}, key: AnnotationClass, wispOnly: true},
		{name: "target NaN", ann: map[string]string{AnnotationTarget: "NaN"}, key: AnnotationTarget, wispOnly: true},
		{name: "misspelt annotation", ann: map[string]string{"autoscaling.knative.dev/minscale": "1"}, key: "autoscaling.knative.dev/minscale", wispOnly: true},
	}
	kcfg := knativeConfig(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kerr := autoscaling.ValidateAnnotations(context.Background(), kcfg, tt.ann)
			_, err := SpecFor(DefaultConfig(), tt.ann, 0)
			if tt.key == "" {
				if kerr != nil || err != nil {
					t.Fatalf("valid annotations: knative %v, ours %v", kerr, err)
				}
				return
			}
			if tt.wispOnly != (kerr == nil) {
				t.Fatalf("knative: %v (wispOnly %v)", kerr, tt.wispOnly)
			}
			if err == nil {
				t.Fatal("SpecFor accepts it")
			}
			if !strings.Contains(err.Error(), "annotation "+tt.key+":") {
				t.Errorf("error %q does not name %s", err, tt.key)
			}
		})
	}
}
