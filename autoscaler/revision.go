package autoscaler

import (
	"fmt"
	"sync"
	"time"
)

// State is a revision's activity, Knative's PodAutoscaler Active
// condition.
type State int

const (
	// StateActivating means the revision wants instances but has fewer
	// ready than its floor (Active=Unknown): requests are buffered.
	StateActivating State = iota
	// StateActive means the revision has the instances it needs
	// (Active=True).
	StateActive
	// StateInactive means the revision has been idle for a stable window
	// and is at, or on its way to, zero instances (Active=False).
	StateInactive
)

// String returns "activating", "active" or "inactive".
func (s State) String() string {
	switch s {
	case StateActivating:
		return "activating"
	case StateActive:
		return "active"
	case StateInactive:
		return "inactive"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Revision is the autoscaling of one revision: the Autoscaler's decisions,
// bounded by min-scale, max-scale and initial-scale, and gated by the
// scale-to-zero and activation rules of Knative's KPA reconciler:
//
//   - a new revision starts with initial-scale instances (at least
//     min-scale) and keeps them until that many have been ready once;
//   - it goes to zero only after the decider has wanted zero while the
//     revision was active for a stable window (it then turns inactive)
//     and a further max(scale-to-zero-grace-period,
//     scale-to-zero-pod-retention-period) has passed, and only if
//     enable-scale-to-zero is true;
//   - a request at zero (Poke) asks for instances at once;
//   - a revision that cannot get a ready instance within the activation
//     timeout is scaled to zero.
//
// Its DesiredScale is what the caller should actuate. It keeps no clock
// and starts no goroutine; it is safe for concurrent use.
type Revision struct {
	mu sync.Mutex

	spec    Spec
	decider *Autoscaler

	state State
	since time.Time // when state was entered
	// initialized is set once InitialScale instances (and min-scale) were
	// ready at the same time (Knative's ScaleTargetInitialized).
	initialized bool
	// want is the scale last applied, what the caller should actuate.
	want int32
	last Decision
}

// NewRevision starts the autoscaling of a revision created at now with
// spec (from SpecFor). Its first decision is initial-scale instances
// (raised to min-scale, capped by max-scale): state activating, or
// inactive at zero when the initial scale is 0.
func NewRevision(spec Spec, now time.Time) (*Revision, error) {
	d, err := NewAutoscaler(spec, now, 0)
	if err != nil {
		return nil, err
	}
	r := &Revision{spec: spec, decider: d, since: now}
	// Knative creates the deployment with initial-scale replicas; the
	// first reconcile raises them to min-scale.
	r.want = applyBounds(max(r.minScale(), r.initialScale()), r.spec.MaxScale, 0)
	r.last = Decision{DesiredScale: r.want, ExcessBurstCapacity: initialEBC(spec),
		Reason: fmt.Sprintf("new revision: starting %d (initial-scale %d, min-scale %d, max-scale %d)",
			r.want, spec.InitialScale, spec.MinScale, spec.MaxScale)}
	if r.activeThreshold() == 0 {
		// Nothing to wait for: Knative marks such a revision inactive and
		// initialized at once.
		r.state = StateInactive
		r.initialized = true
		r.last.Reason = "new revision: initial-scale 0, idle at zero until a request"
	}
	return r, nil
}

// initialEBC is Knative's excess burst capacity of a new decider.
func initialEBC(s Spec) int32 {
	if s.TargetBurstCapacity == 0 || s.TargetBurstCapacity == -1 {
		return int32(s.TargetBurstCapacity)
	}
	return int32(float64(s.InitialScale)*s.TotalValue - s.TargetBurstCapacity)
}

// Record adds a report of the revision's load; see Autoscaler.Record.
func (r *Revision) Record(now time.Time, concurrency, requests float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decider.Record(now, concurrency, requests)
}

// State returns the revision's activity state and when it was entered.
func (r *Revision) State() (State, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state, r.since
}

// Last returns the latest decision (of Scale, Poke or NewRevision).
func (r *Revision) Last() Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// SetReachable records whether any route sends traffic to the revision.
// An unreachable revision ignores min-scale, initial-scale and the pod
// retention period, is not held by the scale-down delay and may drop any
// number of instances in one decision, as in Knative; it still waits out
// the grace period before zero. The change applies from the next Scale.
func (r *Revision) SetReachable(reachable bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spec.Reachable = reachable
	r.decider.spec.Reachable = reachable
}

// minScale is the min-scale in force: none while unreachable.
func (r *Revision) minScale() int32 {
	if !r.spec.Reachable {
		return 0
	}
	return r.spec.MinScale
}

// initialScale is the initial-scale in force, capped by max-scale.
func (r *Revision) initialScale() int32 {
	if r.spec.MaxScale > 0 {
		return min(r.spec.InitialScale, r.spec.MaxScale)
	}
	return r.spec.InitialScale
}

// floor is the lower bound of the desired scale: min-scale, raised to an
// initial scale above 1 until the revision has been initialized. (An
// initial scale of 1 needs no floor: while activating, a decision of 0 is
// not applied.)
func (r *Revision) floor() int32 {
	lo := r.minScale()
	if !r.initialized && r.spec.Reachable && r.initialScale() > 1 {
		lo = max(lo, r.initialScale())
	}
	return lo
}

// activeThreshold is how many ready instances make the revision active
// (Knative's activeThreshold).
func (r *Revision) activeThreshold() int32 {
	if !r.initialized {
		return max(r.minScale(), r.initialScale())
	}
	return max(r.minScale(), 1)
}

// applyBounds is Knative's: x raised to lo, then capped by hi (0 is no cap).
func applyBounds(lo, hi, x int32) int32 {
	if x < lo {
		return lo
	}
	if hi != 0 && x > hi {
		return hi
	}
	return x
}

// Scale runs one tick at now with readyPods ready instances: the decider,
// the bounds and the scale-to-zero gate. Call it every 2 seconds. The
// returned DesiredScale is what the revision should have; Reason says why.
func (r *Revision) Scale(now time.Time, readyPods int) Decision {
	r.mu.Lock()
	defer r.mu.Unlock()

	d := r.decider.Scale(now, readyPods)
	lo, hi := r.floor(), r.spec.MaxScale
	desired := applyBounds(lo, hi, d.DesiredScale)
	switch {
	case desired > d.DesiredScale && !r.initialized && lo > r.minScale():
		d.Reason = fmt.Sprintf("initial-scale %d until %d instances have been ready (%s)", desired, r.activeThreshold(), d.Reason)
	case desired > d.DesiredScale:
		d.Reason = fmt.Sprintf("min-scale %d keeps %d warm (%s)", lo, desired, d.Reason)
	case desired < d.DesiredScale:
		d.Reason = fmt.Sprintf("max-scale %d caps %d (%s)", hi, d.DesiredScale, d.Reason)
	}

	// status is what Knative's reconciler reports as "want" for the Active
	// condition: -1 while activating with nothing to apply.
	apply, status := true, desired
	if desired == 0 {
		idle := now.Sub(r.since)
		switch {
		case !r.spec.EnableScaleToZero:
			desired, status = 1, 1
			d.Reason = "enable-scale-to-zero is false: keeping 1 (" + d.Reason + ")"
		case r.state == StateActivating:
			if idle > r.spec.ActivationTimeout {
				d.Reason = fmt.Sprintf("activation timed out after %v: scale to zero", r.spec.ActivationTimeout)
			} else {
				apply, status = false, -1
				d.Reason = fmt.Sprintf("activating for %v: holding %d (%s)", idle, r.want, d.Reason)
			}
		case r.state == StateActive:
			if idle >= r.spec.StableWindow {
				// Turn inactive; the grace period starts now.
				apply, status = false, 0
				d.Reason = fmt.Sprintf("idle: inactive, scale to zero after grace %v (holding %d)", r.zeroAfter(), r.want)
			} else {
				desired, status = 1, 1
				d.Reason = fmt.Sprintf("idle, but active for %v < stable window %v: keeping 1", idle, r.spec.StableWindow)
			}
		default: // StateInactive
			switch wait := r.zeroAfter(); {
			case r.want == 0:
				d.Reason = "idle at zero"
			case idle >= wait:
				d.Reason = fmt.Sprintf("scale to zero after grace: inactive for %v", idle)
			default:
				apply = false
				d.Reason = fmt.Sprintf("inactive for %v: scale to zero after grace in %v (holding %d)", idle, wait-idle, r.want)
			}
		}
	}
	if apply {
		r.want = desired
	}
	r.updateState(now, status, readyPods)

	d.DesiredScale = r.want
	r.last = d
	return d
}

// zeroAfter is how long an inactive revision keeps its last instance:
// Knative's most conservative check, max(grace, last pod retention).
func (r *Revision) zeroAfter() time.Duration {
	retention := r.spec.ScaleToZeroPodRetentionPeriod
	if !r.spec.Reachable {
		retention = 0
	}
	return max(r.spec.ScaleToZeroGracePeriod, retention)
}

// updateState is Knative's computeActiveCondition.
func (r *Revision) updateState(now time.Time, want int32, readyPods int) {
	threshold := r.activeThreshold()
	ready := int32(min(readyPods, 1<<31-1))
	if ready >= threshold {
		r.initialized = true
	}
	switch {
	case want == 0 || threshold == 0:
		r.setState(now, StateInactive)
	case ready < threshold:
		if want > 0 || r.state != StateInactive {
			r.setState(now, StateActivating)
		}
	default:
		if want > 0 || r.state != StateInactive {
			r.setState(now, StateActive)
		}
	}
}

func (r *Revision) setState(now time.Time, s State) {
	if r.state != s {
		r.state, r.since = s, now
	}
}

// Poke tells the revision a request arrived at now. If the revision is
// inactive (at zero, or waiting out its grace period) it wants instances
// at once: at least 1 (activation-scale if set, within min and max scale)
// and becomes activating, without waiting for the next Scale or for the
// request to show in the windows. Otherwise Poke changes nothing. It is
// cheap; the activator calls it for requests that find no ready instance.
func (r *Revision) Poke(now time.Time) Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != StateInactive && r.want > 0 {
		return r.last
	}
	before := r.want
	r.want = applyBounds(r.floor(), r.spec.MaxScale, max(r.want, 1, r.spec.ActivationScale))
	r.setState(now, StateActivating)
	r.last.DesiredScale = r.want
	r.last.Reason = fmt.Sprintf("poke: request while inactive at %d → %d", before, r.want)
	return r.last
}
