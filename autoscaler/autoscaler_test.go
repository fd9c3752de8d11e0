package autoscaler

import (
	"strings"
	"testing"
)

func newTestAutoscaler(t *testing.T, ann map[string]string, readyAtStart int) *Autoscaler {
	t.Helper()
	a, err := NewAutoscaler(mustSpec(t, nil, ann), t0, readyAtStart)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAutoscalerDecisions(t *testing.T) {
	tests := []struct {
		name   string
		ann    map[string]string
		load   float64 // concurrency every second for 60s
		ready  int
		want   int32
		panic  bool
		ebc    int32
		reason string
	}{
		{name: "no data is no traffic", load: 0, ready: 1, want: 0, ebc: 100 - 211,
			reason: "stable: avg concurrency 0 / target 70 → 0"},
		{name: "140 at target 70", load: 140, ready: 2, want: 2, ebc: 200 - 211 - 140,
			reason: "stable: avg concurrency 140 / target 70 → 2"},
		{name: "ceil", load: 141, ready: 3, want: 3, ebc: 300 - 211 - 141,
			reason: "stable: avg concurrency 141 / target 70 → 3"},
		{name: "scale-down rate halves at most", load: 10, ready: 10, want: 5, ebc: 1000 - 211 - 10,
			reason: "(max-scale-down-rate holds 5, not 1)"},
		{name: "panic at twice the ready capacity", load: 700, ready: 5, want: 10, panic: true, ebc: 500 - 211 - 700,
			reason: "panic: avg concurrency over 6s 700 / target 70 → 10"},
		{name: "scale-up rate", ann: map[string]string{AnnotationTarget: "1"}, load: 5000, ready: 1, want: 1000, panic: true,
			ebc: 1 - 211 - 5000, reason: "(max-scale-up-rate caps 7143)"},
		{name: "activation-scale", ann: map[string]string{AnnotationActivationScale: "4"}, load: 1, ready: 0, want: 4,
			ebc: -211 - 1, reason: "(activation-scale 4)"},
		{name: "burst capacity off", ann: map[string]string{AnnotationTargetBurstCapacity: "0"}, load: 70, ready: 1, want: 1, ebc: 0},
		{name: "burst capacity unlimited", ann: map[string]string{AnnotationTargetBurstCapacity: "-1"}, load: 70, ready: 1, want: 1, ebc: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAutoscaler(t, tt.ann, 0)
			for s := range 60 {
				if tt.load > 0 {
					a.Record(at(float64(s)), tt.load, 0)
				}
			}
			d := a.Scale(at(59.5), tt.ready)
			if d.DesiredScale != tt.want || d.PanicMode != tt.panic || d.ExcessBurstCapacity != tt.ebc {
				t.Errorf("got desired %d panic %v ebc %d, want %d %v %d (%s)",
					d.DesiredScale, d.PanicMode, d.ExcessBurstCapacity, tt.want, tt.panic, tt.ebc, d.Reason)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", d.Reason, tt.reason)
			}
		})
	}
}

func TestAutoscalerPanicHoldsAndLeaves(t *testing.T) {
	a := newTestAutoscaler(t, nil, 0)
	// 10 seconds at 700 with 1 ready: panic, 10 instances.
	for s := range 10 {
		a.Record(at(float64(s)), 700, 0)
	}
	if d := a.Scale(at(10), 1); !d.PanicMode || d.DesiredScale != 10 {
		t.Fatalf("burst: %+v", d)
	}
	// The burst ends; the panic window empties but panic mode holds the
	// peak for a stable window after the threshold was last crossed.
	var d Decision
	for s := 10; s <= 70; s++ {
		a.Record(at(float64(s)), 0, 0)
		if s%2 == 0 {
			d = a.Scale(at(float64(s)), 10)
			if s <= 70 && (!d.PanicMode || d.DesiredScale != 10) {
				t.Fatalf("second %d: %+v, want panic holding 10", s, d)
			}
		}
	}
	if !strings.Contains(d.Reason, "holding 10 (no scale-down in panic)") {
		t.Errorf("reason %q", d.Reason)
	}
	a.Record(at(72), 0, 0)
	if d := a.Scale(at(72), 10); d.PanicMode || d.DesiredScale != 5 {
		t.Errorf("a stable window after the burst: %+v, want stable, 5 (halved)", d)
	}
}

func TestAutoscalerRecordUsesTheMetric(t *testing.T) {
	a := newTestAutoscaler(t, map[string]string{AnnotationMetric: "rps", AnnotationTarget: "10"}, 0)
	a.Record(at(0), 1000, 35) // concurrency is ignored for rps
	d := a.Scale(at(0), 5)
	if d.StableValue != 35 || d.DesiredScale != 5 {
		t.Errorf("rps: %+v, want stable 35 → ceil(35/7) = 5", d)
	}
	if !strings.Contains(d.Reason, "avg rps 35 / target 7") {
		t.Errorf("reason %q", d.Reason)
	}
}

func TestAutoscalerRestartStartsInPanic(t *testing.T) {
	a := newTestAutoscaler(t, nil, 4)
	a.Record(at(0), 1, 0)
	if d := a.Scale(at(0), 4); !d.PanicMode || d.DesiredScale != 4 {
		t.Errorf("restart with 4 ready: %+v, want panic holding 4", d)
	}
	b := newTestAutoscaler(t, nil, 1)
	b.Record(at(0), 1, 0)
	if d := b.Scale(at(0), 1); d.PanicMode {
		t.Errorf("restart with 1 ready: %+v, want stable", d)
	}
}
