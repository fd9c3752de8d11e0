package autoscaler

import (
	"math"
	"testing"
	"time"
)

func TestLinearWindow(t *testing.T) {
	type rec struct {
		sec float64
		v   float64
	}
	tests := []struct {
		name string
		recs []rec
		at   float64
		want float64
	}{
		{name: "empty", at: 10, want: 0},
		{name: "partial window averages the seconds seen", recs: []rec{{0, 10}, {1, 20}}, at: 1, want: 15},
		{name: "same second adds up", recs: []rec{{0, 10}, {0.5, 5}}, at: 0.9, want: 15},
		{name: "skipped seconds count as zero", recs: []rec{{0, 10}, {3, 40}}, at: 3, want: 12.5},
		{name: "silent tail is left out", recs: []rec{{0, 10}, {1, 20}}, at: 3, want: 15},
		{name: "a window after the last record is zero", recs: []rec{{0, 10}, {1, 20}}, at: 6, want: 0},
		{name: "full window", recs: []rec{{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}, {7, 7}, {8, 8}, {9, 9}}, at: 9, want: 7},
		{name: "full window with silent tail", recs: []rec{{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}, {7, 7}, {8, 8}, {9, 9}}, at: 11, want: 8},
		{name: "a gap of a window starts a new run", recs: []rec{{0, 100}, {5, 10}}, at: 5, want: 10},
		{name: "too late to count", recs: []rec{{10, 10}, {4, 1000}}, at: 10, want: 10},
		{name: "late but within the window", recs: []rec{{10, 10}, {8, 5}}, at: 10, want: 5},
		{name: "rounded to 6 places", recs: []rec{{0, 1}, {1, 0}, {2, 0}}, at: 2, want: 0.333333},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newLinearWindow(5 * time.Second)
			for _, r := range tt.recs {
				w.record(at(r.sec), r.v)
			}
			if got := w.average(at(tt.at)); got != tt.want {
				t.Errorf("average = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWeightedWindow(t *testing.T) {
	w := newWeightedWindow(5 * time.Second)
	alpha := 1 - math.Pow(1-weightPrecision, 1.0/5)
	if w.alpha != alpha {
		t.Fatalf("alpha %v, want %v", w.alpha, alpha)
	}
	if long := newWeightedWindow(time.Hour); long.alpha != minSmoothing {
		t.Errorf("1h window alpha %v, want the floor %v", long.alpha, minSmoothing)
	}
	w.record(at(0), 10)
	w.record(at(1), 20)
	tests := []struct {
		at   float64
		want float64
	}{
		{1, 20*alpha + 10*alpha*(1-alpha)},
		// Two silent seconds weigh as zeros.
		{3, 20*alpha*math.Pow(1-alpha, 2) + 10*alpha*math.Pow(1-alpha, 3)},
		{6, 0},
		{7, 0},
	}
	for _, tt := range tests {
		if got := w.average(at(tt.at)); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("average at %vs = %v, want %v", tt.at, got, tt.want)
		}
	}
}

func TestMaxWindow(t *testing.T) {
	w := newMaxWindow(6*time.Second, 2*time.Second) // 3 ticks
	steps := []struct {
		sec  float64
		v    int32
		want int32
	}{
		{0, 5, 5},
		{2, 3, 5},
		{4, 4, 5},
		{6, 1, 4}, // 5 is 3 ticks old
		{7, 0, 4}, // same tick as 6: the larger, 1, stays
		{8, 0, 4},
		{10, 0, 1},
		{12, 0, 0},
		{14, 9, 9},
	}
	for _, s := range steps {
		w.record(at(s.sec), s.v)
		if got := w.current(); got != s.want {
			t.Errorf("after %d at %vs: current %d, want %d", s.v, s.sec, got, s.want)
		}
	}
}
