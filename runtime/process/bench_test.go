//go:build unix

package process

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkStartToReady measures how long Start takes to have the test
// server answering its readiness probe, and Stop to end it. It reports
// the percentiles of Start alone, the cold start of a process function
// that the autoscaler's target (p50 ≤ 150ms through the gateway)
// includes.
func BenchmarkStartToReady(b *testing.B) {
	p := New(Options{})
	rev := newRev()
	if err := p.Prepare(b.Context(), rev); err != nil {
		b.Fatal(err)
	}
	var starts []time.Duration
	for b.Loop() {
		begin := time.Now()
		inst, err := p.Start(b.Context(), rev, nil)
		if err != nil {
			b.Fatal(err)
		}
		starts = append(starts, time.Since(begin))
		if err := inst.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(starts)
	pct := func(q float64) float64 {
		return float64(starts[int(q*float64(len(starts)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-start-ms")
	b.ReportMetric(pct(0.9), "p90-start-ms")
	b.ReportMetric(pct(0.99), "p99-start-ms")
}
