package autoscaler

import (
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0)

// at is t0 plus s seconds.
func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func mustSpec(t *testing.T, cfg map[string]string, ann map[string]string) Spec {
	t.Helper()
	c, err := ConfigFromMap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := SpecFor(c, ann, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustRevision(t *testing.T, s Spec) *Revision {
	t.Helper()
	r, err := NewRevision(s, t0)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tick is one Scale of a simulation.
type tick struct {
	sec   int
	ready int
	d     Decision
	state State
}

// simulate drives r from second from to second to (exclusive): each second
// it records load(s) (unless negative), and at even seconds it calls Scale
// with ready(s, desired so far) instances ready.
func simulate(r *Revision, from, to int, load func(s int) float64, ready func(s int, desired int32) int) []tick {
	var ticks []tick
	for s := from; s < to; s++ {
		if c := load(s); c >= 0 {
			r.Record(at(float64(s)), c, c)
		}
		if s%2 != 0 {
			continue
		}
		n := ready(s, r.Last().DesiredScale)
		d := r.Scale(at(float64(s)), n)
		st, _ := r.State()
		ticks = append(ticks, tick{sec: s, ready: n, d: d, state: st})
	}
	return ticks
}

// instant: instances are ready as soon as they are wanted.
func instant(_ int, desired int32) int { return int(desired) }

// firstZero is the second of the first tick that wants zero, or -1.
func firstZero(ticks []tick) int {
	for _, tk := range ticks {
		if tk.d.DesiredScale == 0 {
			return tk.sec
		}
	}
	return -1
}

func TestScaleToZeroTiming(t *testing.T) {
	// Traffic for the first 10 seconds, then none. The stable average is
	// zero from the tick at 10+window (the last busy second leaves the
	// window at 9+window, an odd second); the revision then turns
	// inactive, and reaches zero at the first tick a further
	// max(grace, retention) later: never before.
	tests := []struct {
		name         string
		cfg          map[string]string
		ann          map[string]string
		wantInactive int
		wantZero     int
	}{
		{name: "defaults: 60s window + 30s grace", wantInactive: 70, wantZero: 100},
		{name: "window annotation 20s, grace 10s",
			cfg: map[string]string{"scale-to-zero-grace-period": "10s"}, ann: map[string]string{AnnotationWindow: "20s"},
			wantInactive: 30, wantZero: 40},
		{name: "retention longer than grace",
			cfg: map[string]string{"scale-to-zero-pod-retention-period": "50s"}, wantInactive: 70, wantZero: 120},
		{name: "retention annotation",
			ann: map[string]string{AnnotationScaleToZeroPodRetentionPeriod: "40s"}, wantInactive: 70, wantZero: 110},
		{name: "grace not a whole tick rounds up to the next tick",
			cfg: map[string]string{"scale-to-zero-grace-period": "31s"}, wantInactive: 70, wantZero: 102},
		{name: "scale-down-delay adds to the window (5 ticks: 8s)",
			ann: map[string]string{AnnotationScaleDownDelay: "10s"}, wantInactive: 78, wantZero: 108},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRevision(t, mustSpec(t, tt.cfg, tt.ann))
			busy := func(s int) float64 {
				if s < 10 {
					return 1
				}
				return 0
			}
			ticks := simulate(r, 0, 300, busy, instant)
			if got := firstZero(ticks); got != tt.wantZero {
				t.Errorf("first zero at second %d, want %d", got, tt.wantZero)
			}
			for _, tk := range ticks {
				switch {
				case tk.sec < tt.wantInactive && tk.state != StateActive:
					t.Fatalf("second %d: %v, want active (%s)", tk.sec, tk.state, tk.d.Reason)
				case tk.sec >= tt.wantInactive && tk.state != StateInactive:
					t.Fatalf("second %d: %v, want inactive (%s)", tk.sec, tk.state, tk.d.Reason)
				case tk.sec < tt.wantZero && tk.d.DesiredScale != 1:
					t.Fatalf("second %d: desired %d before zero time, want 1 (%s)", tk.sec, tk.d.DesiredScale, tk.d.Reason)
				case tk.sec >= tt.wantZero && tk.d.DesiredScale != 0:
					t.Fatalf("second %d: desired %d after zero time (%s)", tk.sec, tk.d.DesiredScale, tk.d.Reason)
				}
			}
			if _, since := r.State(); !since.Equal(at(float64(tt.wantInactive))) {
				t.Errorf("inactive since %v, want second %d", since.Sub(t0), tt.wantInactive)
			}
			if z := ticks[tt.wantZero/2]; !strings.Contains(z.d.Reason, "scale to zero after grace") {
				t.Errorf("reason at zero: %q", z.d.Reason)
			}
		})
	}
}

func TestPokeFromZero(t *testing.T) {
	spec := mustSpec(t, map[string]string{"allow-zero-initial-scale": "true"},
		map[string]string{AnnotationInitialScale: "0"})
	r := mustRevision(t, spec)
	if d := r.Last(); d.DesiredScale != 0 {
		t.Fatalf("initial-scale 0: first decision %+v", d)
	}
	if st, _ := r.State(); st != StateInactive {
		t.Fatalf("initial-scale 0: state %v, want inactive", st)
	}
	idle := func(int) float64 { return 0 }
	if z := firstZero(simulate(r, 0, 20, idle, instant)); z != 0 {
		t.Fatalf("idle revision at zero: first zero at %d", z)
	}

	// A request at 20.3s: desired 1 at once, without a tick and with
	// nothing in the windows.
	d := r.Poke(at(20.3))
	if d.DesiredScale != 1 || !strings.Contains(d.Reason, "poke") {
		t.Fatalf("Poke at zero = %+v, want 1", d)
	}
	if st, since := r.State(); st != StateActivating || !since.Equal(at(20.3)) {
		t.Fatalf("after Poke: %v since %v, want activating since 20.3s", st, since.Sub(t0))
	}
	if again := r.Poke(at(20.5)); again.DesiredScale != 1 {
		t.Fatalf("second Poke = %+v", again)
	}

	// The instance takes until second 24 to be ready; the request is not
	// even recorded (the worst case): the revision holds 1, turns active,
	// and stays for a stable window plus grace after it became active.
	ticks := simulate(r, 22, 200, idle, func(s int, _ int32) int {
		if s < 24 {
			return 0
		}
		return 1
	})
	if ticks[0].d.DesiredScale != 1 || ticks[0].state != StateActivating {
		t.Errorf("second 22 (not ready): %+v %v, want 1 activating", ticks[0].d, ticks[0].state)
	}
	if ticks[1].state != StateActive {
		t.Errorf("second 24 (ready): %v, want active", ticks[1].state)
	}
	if got := firstZero(ticks); got != 24+60+30 {
		t.Errorf("back to zero at second %d, want %d", got, 24+60+30)
	}
}

func TestPoke(t *testing.T) {
	t.Run("activation-scale", func(t *testing.T) {
		r := mustRevision(t, mustSpec(t, nil, map[string]string{AnnotationActivationScale: "3"}))
		simulate(r, 0, 100, func(int) float64 { return 0 }, instant)
		if d := r.Last(); d.DesiredScale != 0 {
			t.Fatalf("not at zero: %+v", d)
		}
		if d := r.Poke(at(100)); d.DesiredScale != 3 {
			t.Errorf("Poke = %+v, want activation-scale 3", d)
		}
	})
	t.Run("while active is a no-op", func(t *testing.T) {
		r := mustRevision(t, mustSpec(t, nil, nil))
		simulate(r, 0, 20, func(int) float64 { return 200 }, instant)
		before := r.Last()
		_, since := r.State()
		if d := r.Poke(at(20)); d != before {
			t.Errorf("Poke changed the decision: %+v -> %+v", before, d)
		}
		if st, s := r.State(); st != StateActive || !s.Equal(since) {
			t.Errorf("Poke changed the state: %v since %v", st, s.Sub(t0))
		}
	})
	t.Run("during grace keeps the instance", func(t *testing.T) {
		r := mustRevision(t, mustSpec(t, nil, nil))
		busy := func(s int) float64 {
			if s < 10 {
				return 1
			}
			return 0
		}
		simulate(r, 0, 80, busy, instant) // inactive since 70, zero due at 100
		if st, _ := r.State(); st != StateInactive || r.Last().DesiredScale != 1 {
			t.Fatalf("setup: %v %+v", st, r.Last())
		}
		if d := r.Poke(at(80.5)); d.DesiredScale != 1 {
			t.Fatalf("Poke = %+v", d)
		}
		ticks := simulate(r, 82, 300, func(int) float64 { return 0 }, instant)
		if ticks[0].state != StateActive {
			t.Errorf("after Poke: %v, want active again", ticks[0].state)
		}
		if got := firstZero(ticks); got != 82+60+30 {
			t.Errorf("zero at %d, want %d (not the old 100)", got, 82+60+30)
		}
	})
}

func TestBounds(t *testing.T) {
	idle := func(int) float64 { return 0 }
	heavy := func(int) float64 { return 1000 }
	tests := []struct {
		name      string
		cfg, ann  map[string]string
		load      func(int) float64
		want      int32 // at every tick after the first 10 seconds
		wantState State
		reason    string
	}{
		{name: "min-scale keeps warm", ann: map[string]string{AnnotationMinScale: "2"}, load: idle,
			want: 2, wantState: StateActive, reason: "min-scale 2 keeps 2 warm"},
		{name: "config min-scale keeps warm", cfg: map[string]string{"min-scale": "1"}, load: idle,
			want: 1, wantState: StateActive, reason: "min-scale 1 keeps 1 warm"},
		{name: "max-scale caps", ann: map[string]string{AnnotationMaxScale: "3"}, load: heavy,
			want: 3, wantState: StateActive, reason: "max-scale 3 caps"},
		{name: "config max-scale caps", cfg: map[string]string{"max-scale": "4"}, load: heavy,
			want: 4, wantState: StateActive, reason: "max-scale 4 caps"},
		{name: "scale to zero disabled keeps 1", cfg: map[string]string{"enable-scale-to-zero": "false"}, load: idle,
			want: 1, wantState: StateActive, reason: "enable-scale-to-zero is false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRevision(t, mustSpec(t, tt.cfg, tt.ann))
			for _, tk := range simulate(r, 0, 900, tt.load, instant) {
				if tk.sec < 10 {
					continue
				}
				if tk.d.DesiredScale != tt.want || tk.state != tt.wantState {
					t.Fatalf("second %d: desired %d %v, want %d %v (%s)",
						tk.sec, tk.d.DesiredScale, tk.state, tt.want, tt.wantState, tk.d.Reason)
				}
				if !strings.Contains(tk.d.Reason, tt.reason) {
					t.Fatalf("second %d: reason %q does not say %q", tk.sec, tk.d.Reason, tt.reason)
				}
			}
		})
	}
}

func TestInitialScale(t *testing.T) {
	r := mustRevision(t, mustSpec(t, nil, map[string]string{AnnotationInitialScale: "3", AnnotationMaxScale: "10"}))
	if d := r.Last(); d.DesiredScale != 3 {
		t.Fatalf("new revision: %+v, want 3", d)
	}
	idle := func(int) float64 { return 0 }
	// Only 2 become ready for a while: it keeps asking for 3, activating.
	ticks := simulate(r, 0, 40, idle, func(int, int32) int { return 2 })
	for _, tk := range ticks {
		if tk.d.DesiredScale != 3 || tk.state != StateActivating {
			t.Fatalf("second %d with 2 ready: %d %v, want 3 activating (%s)", tk.sec, tk.d.DesiredScale, tk.state, tk.d.Reason)
		}
	}
	if !strings.Contains(ticks[0].d.Reason, "initial-scale 3") {
		t.Errorf("reason %q", ticks[0].d.Reason)
	}
	// All 3 ready at 40: initialized and active; idle, it drops to 1 (it
	// has not been active for a stable window), then to zero after
	// window + grace.
	ticks = simulate(r, 40, 300, idle, func(_ int, d int32) int { return int(d) })
	if ticks[0].state != StateActive {
		t.Errorf("second 40: %v, want active", ticks[0].state)
	}
	if ticks[1].d.DesiredScale != 1 {
		t.Errorf("second 42: desired %d, want 1 (%s)", ticks[1].d.DesiredScale, ticks[1].d.Reason)
	}
	if got := firstZero(ticks); got != 40+60+30 {
		t.Errorf("zero at %d, want %d", got, 40+60+30)
	}
}

func TestInitialScaleCappedByMaxScale(t *testing.T) {
	r := mustRevision(t, mustSpec(t, map[string]string{"initial-scale": "5"}, map[string]string{AnnotationMaxScale: "2"}))
	if d := r.Last(); d.DesiredScale != 2 {
		t.Errorf("initial-scale 5 with max-scale 2: %d, want 2", d.DesiredScale)
	}
	ticks := simulate(r, 0, 4, func(int) float64 { return 0 }, instant)
	if ticks[0].state != StateActive {
		t.Errorf("2 ready of initial 5 capped at 2: %v, want active", ticks[0].state)
	}
}

func TestActivationTimeout(t *testing.T) {
	r := mustRevision(t, mustSpec(t, map[string]string{"activation-timeout": "20s"}, nil))
	// No instance ever becomes ready, no load.
	ticks := simulate(r, 0, 40, func(int) float64 { return 0 }, func(int, int32) int { return 0 })
	if got := firstZero(ticks); got != 22 {
		t.Errorf("gave up at %d, want 22 (the first tick after 20s)", got)
	}
	if st, _ := r.State(); st != StateInactive {
		t.Errorf("state %v, want inactive", st)
	}
	if !strings.Contains(ticks[11].d.Reason, "activation timed out") {
		t.Errorf("reason %q", ticks[11].d.Reason)
	}
	// Load keeps a non-ready revision wanting instances: no time-out.
	r = mustRevision(t, mustSpec(t, map[string]string{"activation-timeout": "20s"}, nil))
	if z := firstZero(simulate(r, 0, 60, func(int) float64 { return 5 }, func(int, int32) int { return 0 })); z != -1 {
		t.Errorf("busy revision timed out at %d", z)
	}
}

func TestUnreachable(t *testing.T) {
	r := mustRevision(t, mustSpec(t, nil, map[string]string{
		AnnotationMinScale: "2", AnnotationScaleToZeroPodRetentionPeriod: "90s"}))
	idle := func(int) float64 { return 0 }
	simulate(r, 0, 100, idle, instant)
	if d := r.Last(); d.DesiredScale != 2 {
		t.Fatalf("reachable: %+v, want min-scale 2", d)
	}
	r.SetReachable(false)
	ticks := simulate(r, 100, 300, idle, instant)
	// Active for over a window already: inactive at once, holding its 2
	// instances for the grace period (not the retention period), then zero.
	if d, st := ticks[0].d, ticks[0].state; d.DesiredScale != 2 || st != StateInactive {
		t.Errorf("unreachable, first tick: %+v %v, want 2 inactive", d, st)
	}
	if got := firstZero(ticks); got != 100+30 {
		t.Errorf("unreachable revision zero at %d, want %d", got, 130)
	}
	r.SetReachable(true)
	if d := r.Scale(at(300), 0); d.DesiredScale != 2 {
		t.Errorf("reachable again: %+v, want 2", d)
	}
}

func TestNewRevisionRejectsBadSpec(t *testing.T) {
	if _, err := NewRevision(Spec{}, t0); err == nil || !strings.Contains(err.Error(), "SpecFor") {
		t.Errorf("NewRevision(Spec{}) error = %v, want one pointing at SpecFor", err)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{StateActivating: "activating", StateActive: "active", StateInactive: "inactive", 7: "State(7)"} {
		if got := s.String(); got != want {
			t.Errorf("%d: %q, want %q", int(s), got, want)
		}
	}
}

// TestRevisionConcurrentUse is for the race detector: the activator
// records and pokes from request goroutines while a ticker scales.
func TestRevisionConcurrentUse(t *testing.T) {
	r := mustRevision(t, mustSpec(t, nil, nil))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				now := at(float64(i) / 10)
				switch g {
				case 0:
					r.Scale(now, i%5)
				case 1:
					r.Poke(now)
				default:
					r.Record(now, float64(i%7), 1)
					r.Last()
					r.State()
				}
			}
		})
	}
	wg.Wait()
}
