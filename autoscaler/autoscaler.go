package autoscaler

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Decision is one scaling decision for a revision.
type Decision struct {
	// DesiredScale is the number of instances the revision should have.
	DesiredScale int32
	// ExcessBurstCapacity is the spare capacity of the ready instances
	// beyond the target burst capacity, over the panic window:
	// floor(ready × TotalValue − TargetBurstCapacity − PanicValue). It is 0
	// when the target burst capacity is 0 and −1 when it is unlimited. A
	// negative value means a burst would queue.
	ExcessBurstCapacity int32
	// PanicMode tells whether the decider is in panic mode.
	PanicMode bool
	// StableValue and PanicValue are the revision's total metric
	// (concurrency or requests per second) averaged over the stable and
	// the panic window.
	StableValue, PanicValue float64
	// Reason explains the decision to a human, for example
	// "stable: avg concurrency 140 / target 70 → 2".
	Reason string
}

// Autoscaler is Knative's KPA decider for one revision (the autoscaler of
// knative.dev/serving/pkg/autoscaler/scaling with its metric windows): it
// turns the revision's recorded load into a desired number of instances,
// with a stable and a panic mode. It knows nothing of scale-to-zero grace,
// min/max bounds or activation; Revision adds those.
//
// It keeps no clock: every call is given the time, so that it can be
// driven tick by tick. It is not safe for concurrent use; Revision is.
type Autoscaler struct {
	spec Spec

	stable, panic averager

	// panicTime is when the panic threshold was last exceeded; zero when
	// not in panic mode.
	panicTime time.Time
	// maxPanicPods is the highest decision of the current panic.
	maxPanicPods int32

	// delay is the maximum of the decisions over the scale-down delay;
	// nil without a delay.
	delay *maxWindow
}

// NewAutoscaler returns the decider of a revision described by spec,
// starting at now. readyPods is how many instances are already serving: 0
// for a new revision. As in Knative, a decider started with more than one
// ready instance (after a restart, say) starts in panic mode, so that it
// keeps the current scale until it has a window of data.
func NewAutoscaler(spec Spec, now time.Time, readyPods int) (*Autoscaler, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	a := &Autoscaler{
		spec:         spec,
		stable:       newAverager(spec.Aggregation, spec.StableWindow),
		panic:        newAverager(spec.Aggregation, spec.PanicWindow),
		maxPanicPods: int32(max(readyPods, 0)),
	}
	if spec.ScaleDownDelay > 0 {
		a.delay = newMaxWindow(spec.ScaleDownDelay, tickInterval)
	}
	if readyPods > 1 {
		a.panicTime = now
	}
	return a, nil
}

// Record adds one report of the revision's load at now: the average
// number of requests in flight over the reporting period (concurrency),
// and the number of requests that arrived in it (requests). Reports are
// meant to come once a second; reports in the same second add up.
func (a *Autoscaler) Record(now time.Time, concurrency, requests float64) {
	v := concurrency
	if a.spec.Metric == MetricRPS {
		v = requests
	}
	a.stable.record(now, v)
	a.panic.record(now, v)
}

// Scale decides how many instances the revision should have at now, given
// how many are ready. It follows Knative's autoscaler.Scale step by step
// and is meant to be called every 2 seconds (Knative's tick); extra calls
// are fine.
//
// A revision without any recorded load decides 0: in wisp the activator
// sees every request, so silence means no traffic (Knative's behaviour
// when the activator is the only reporter).
func (a *Autoscaler) Scale(now time.Time, readyPods int) Decision {
	s := &a.spec
	stable := a.stable.average(now)
	panicValue := a.panic.average(now)

	// Use 1 when nothing is ready, so the rates still allow growth.
	ready := math.Max(1, float64(readyPods))
	// ceil and floor make sure a conservative rate still moves by one.
	maxUp := math.Ceil(s.MaxScaleUpRate * ready)
	maxDown := 0.0
	if s.Reachable {
		maxDown = math.Floor(ready / s.MaxScaleDownRate)
	}

	dspc := math.Ceil(stable / s.TargetValue)
	dppc := math.Ceil(panicValue / s.TargetValue)
	stablePods := int32(math.Min(math.Max(dspc, maxDown), maxUp))
	panicPods := int32(math.Min(math.Max(dppc, maxDown), maxUp))
	if s.ActivationScale > 1 {
		if dspc > 0 && s.ActivationScale > stablePods {
			stablePods = s.ActivationScale
		}
		if dppc > 0 && s.ActivationScale > panicPods {
			panicPods = s.ActivationScale
		}
	}

	overThreshold := dppc/ready >= s.PanicThreshold
	switch {
	case overThreshold:
		// Enter panic, or extend it.
		a.panicTime = now
	case !a.panicTime.IsZero() && a.panicTime.Add(s.StableWindow).Before(now):
		// A stable window without crossing the threshold: the surge is in
		// the stable average now.
		a.panicTime = time.Time{}
		a.maxPanicPods = 0
	}

	var reason strings.Builder
	desired := stablePods
	if a.panicTime.IsZero() {
		fmt.Fprintf(&reason, "stable: avg %s %s / target %s → %d",
			s.Metric, num(stable), num(s.TargetValue), stablePods)
		explainClamp(&reason, dspc, maxUp, maxDown, stablePods, s.ActivationScale)
	} else {
		// Provision for the larger of the two, and never scale down in panic.
		desired = max(desired, panicPods)
		fmt.Fprintf(&reason, "panic: avg %s over %v %s / target %s → %d",
			s.Metric, s.PanicWindow, num(panicValue), num(s.TargetValue), panicPods)
		explainClamp(&reason, dppc, maxUp, maxDown, panicPods, s.ActivationScale)
		if desired > panicPods {
			fmt.Fprintf(&reason, "; stable window wants %d", desired)
		}
		if desired > a.maxPanicPods {
			a.maxPanicPods = desired
		} else if desired < a.maxPanicPods {
			fmt.Fprintf(&reason, "; holding %d (no scale-down in panic)", a.maxPanicPods)
		}
		desired = a.maxPanicPods
	}

	if s.Reachable && a.delay != nil {
		a.delay.record(now, desired)
		if held := a.delay.current(); held != desired {
			fmt.Fprintf(&reason, "; scale-down-delay %v holds %d", s.ScaleDownDelay, held)
			desired = held
		}
	}

	ebc := -1.0
	switch {
	case s.TargetBurstCapacity == 0:
		ebc = 0
	case s.TargetBurstCapacity > 0:
		ebc = math.Floor(float64(readyPods)*s.TotalValue - s.TargetBurstCapacity - panicValue)
	}

	return Decision{
		DesiredScale:        desired,
		ExcessBurstCapacity: int32(ebc),
		PanicMode:           !a.panicTime.IsZero(),
		StableValue:         stable,
		PanicValue:          panicValue,
		Reason:              reason.String(),
	}
}

// explainClamp notes in r why pods differs from the raw ceil(avg/target).
func explainClamp(r *strings.Builder, raw, maxUp, maxDown float64, pods, activationScale int32) {
	switch {
	case raw > 0 && activationScale > 1 && pods == activationScale && raw < float64(activationScale):
		fmt.Fprintf(r, " (activation-scale %d)", activationScale)
	case raw > maxUp:
		fmt.Fprintf(r, " (max-scale-up-rate caps %s)", num(raw))
	case raw < maxDown:
		fmt.Fprintf(r, " (max-scale-down-rate holds %d, not %s)", pods, num(raw))
	}
}

// num formats a metric value for a Reason: no exponent, at most 3 decimals.
func num(f float64) string {
	return strconv.FormatFloat(math.Round(f*1000)/1000, 'f', -1, 64)
}
