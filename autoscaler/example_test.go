package autoscaler_test

import (
	"context"
	"fmt"
	"time"

	"github.com/wisp-faas/wisp/autoscaler"
)

// instances is a stand-in Scaler: it "starts" instances at once.
type instances struct{ running int32 }

func (i *instances) Scale(_ context.Context, desired int32) error {
	i.running = desired
	return nil
}

// Example drives one revision as the activator and the node would: a
// request at zero pokes it, load is recorded every second, Scale runs
// every 2 seconds, and each decision is actuated by a Scaler.
func Example() {
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale = true
	spec, err := autoscaler.SpecFor(cfg, map[string]string{
		autoscaler.AnnotationInitialScale: "0",
		autoscaler.AnnotationMaxScale:     "5",
	}, 0)
	if err != nil {
		panic(err)
	}
	start := time.Unix(1_700_000_000, 0)
	rev, err := autoscaler.NewRevision(spec, start)
	if err != nil {
		panic(err)
	}
	var scaler autoscaler.Scaler = &instances{}
	ctx := context.Background()
	running := func() int { return int(scaler.(*instances).running) }

	last := int32(-1)
	show := func(now time.Time, d autoscaler.Decision) {
		if d.DesiredScale != last {
			fmt.Printf("t=%v → %d: %s\n", now.Sub(start), d.DesiredScale, d.Reason)
			last = d.DesiredScale
		}
		_ = scaler.Scale(ctx, d.DesiredScale)
	}

	show(start, rev.Last())
	// The first request finds no instance: poke, without waiting for a tick.
	show(start.Add(300*time.Millisecond), rev.Poke(start.Add(300*time.Millisecond)))
	for s := 1; s <= 240; s++ {
		now := start.Add(time.Duration(s) * time.Second)
		load := 0.0
		if s < 60 {
			load = float64(s * 5) // a ramp to 300 requests in flight
		}
		rev.Record(now, load, load)
		if s%2 == 0 {
			show(now, rev.Scale(now, running()))
		}
	}
	// Output:
	// t=0s → 0: new revision: initial-scale 0, idle at zero until a request
	// t=300ms → 1: poke: request while inactive at 0 → 1
	// t=18s → 2: panic: avg concurrency over 6s 77.5 / target 70 → 2
	// t=32s → 3: panic: avg concurrency over 6s 147.5 / target 70 → 3
	// t=46s → 4: panic: avg concurrency over 6s 217.5 / target 70 → 4
	// t=1m20s → 2: stable: avg concurrency 130 / target 70 → 2
	// t=1m44s → 1: stable: avg concurrency 65 / target 70 → 1
	// t=2m30s → 0: scale to zero after grace: inactive for 30s
}
