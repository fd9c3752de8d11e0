// Package autoscaler decides how many instances each revision should have,
// with Knative's KPA algorithm: a stable window and a panic window over
// per-second load, bounded scale-up and scale-down rates, a scale-down
// delay, min/max/initial scale, scale to zero after a stable window and a
// grace period, and an immediate scale from zero when a request arrives.
//
// The pieces:
//
//   - Config is the node-wide configuration, Knative's config-autoscaler
//     keys and defaults (LoadConfig reads config/autoscaler.yaml).
//   - SpecFor resolves a Config against a revision's autoscaling.knative.dev/
//     annotations and containerConcurrency into a Spec.
//   - Autoscaler is the decider: Record load, Scale on a tick. It matches
//     Knative's decider decision for decision (see parity_test.go).
//   - Revision wraps an Autoscaler with the activation and scale-to-zero
//     rules that live in Knative's KPA reconciler, and Poke.
//
// The algorithm is pure: time is passed in, nothing runs in the background,
// so every behaviour is testable tick by tick. The caller drives it, once
// per revision:
//
//	rev, err := autoscaler.NewRevision(spec, now)
//	every second:      rev.Record(now, avgConcurrency, requests)
//	every 2 seconds:   d := rev.Scale(now, readyInstances); scaler.Scale(ctx, d.DesiredScale)
//	request at zero:   d := rev.Poke(now); scaler.Scale(ctx, d.DesiredScale)
//
// This package owns the scaling decisions only. It must not start or stop
// instances (a Scaler does, given the decision), must not read or write the
// store, and must not start goroutines or read the clock. RATIONALE.md lists
// where and why it differs from Knative.
package autoscaler

import "context"

// Scaler actuates the decisions for one revision: it starts or stops
// instances until desired are running. The runtime implements it in
// single-node mode, the Kubernetes scale subresource in cluster mode.
// Scale must not block on instances becoming ready; readiness comes back
// as the readyInstances given to Revision.Scale.
type Scaler interface {
	Scale(ctx context.Context, desired int32) error
}
