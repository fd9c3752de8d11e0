//go:build linux

package container

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkStartToReady measures how long Start takes to have a
// container of the test image accepting connections (runc run, namespace
// and cgroup setup, the server's own start), and Stop to end it. The
// image is unpacked before the timer starts: this is a cold start from
// zero with the image cached, what the autoscaler sees.
func BenchmarkStartToReady(b *testing.B) {
	_, image, _ := startRegistry(b)
	p, _ := newProvider(b)
	rev := newRev(image)
	if err := p.Prepare(b.Context(), rev); err != nil {
		b.Fatal(err)
	}
	var starts, stops []time.Duration
	for b.Loop() {
		begin := time.Now()
		inst, err := p.Start(b.Context(), rev, nil)
		if err != nil {
			b.Fatal(err)
		}
		starts = append(starts, time.Since(begin))
		begin = time.Now()
		if err := inst.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
		stops = append(stops, time.Since(begin))
	}
	pct := func(d []time.Duration, q float64) float64 {
		slices.Sort(d)
		return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(starts, 0.5), "p50-start-ms")
	b.ReportMetric(pct(starts, 0.9), "p90-start-ms")
	b.ReportMetric(pct(stops, 0.5), "p50-stop-ms")
}
