package autoscaler

import (
	"math"
	"time"
)

// bucketSize is the width of one aggregation bucket (Knative's
// config.BucketSize). Stats are recorded per second.
const bucketSize = time.Second

// tickInterval is how often Knative's autoscaler decides (scaling's
// tickInterval); the scale-down delay window has one bucket per tick.
const tickInterval = 2 * time.Second

// averager is a windowed average of per-second values.
type averager interface {
	record(now time.Time, v float64)
	average(now time.Time) float64
}

// newAverager returns the window of the given aggregation algorithm.
func newAverager(a Aggregation, window time.Duration) averager {
	if a == AggregationWeightedExponential {
		return newWeightedWindow(window)
	}
	return newLinearWindow(window)
}

// linearWindow averages one-second buckets over a window, with the exact
// semantics of Knative's aggregation.TimedFloat64Buckets (the parity test
// compares them):
//
//   - values recorded in the same second add up;
//   - seconds skipped between two records count as zero;
//   - until a full window has passed since the first record, the average
//     is over the seconds seen so far, not the whole window;
//   - when records stop, the average is over the seconds still in the
//     window (the silent tail does not count), and is 0 once the last
//     record is a window old;
//   - the result is rounded to 6 decimal places.
type linearWindow struct {
	buckets []float64
	window  time.Duration
	// first and last are the (bucket-truncated) times of the first record
	// of the current run and of the latest record; zero before any.
	first, last time.Time
	// total is the sum of all buckets, including those older than last
	// that have not been cleared yet.
	total float64
}

func newLinearWindow(window time.Duration) *linearWindow {
	n := int(math.Ceil(float64(window) / float64(bucketSize)))
	return &linearWindow{buckets: make([]float64, n), window: window}
}

// slot maps a Unix second to its bucket.
func (w *linearWindow) slot(sec int64) int {
	n := int64(len(w.buckets))
	return int((sec%n + n) % n)
}

func (w *linearWindow) record(now time.Time, v float64) {
	t := now.Truncate(bucketSize)
	if !t.Equal(w.last) {
		if !t.Add(w.window).After(w.last) {
			return // a window older than the latest record: too late to count
		}
		if w.first.IsZero() || w.first.After(t) {
			w.first = t
		}
		if t.After(w.last) {
			if t.Sub(w.last) >= w.window {
				// Nothing for a whole window: start a new run.
				clear(w.buckets)
				w.total = 0
				w.first = t
			} else {
				// Zero the seconds skipped since the last record, and this one.
				for s := w.last.Unix() + 1; s <= t.Unix(); s++ {
					i := w.slot(s)
					w.total -= w.buckets[i]
					w.buckets[i] = 0
				}
			}
			w.last = t
		}
	}
	w.buckets[w.slot(now.Unix())] += v
	w.total += v
}

// seen is the number of seconds from the first to the last record.
func (w *linearWindow) seen() float64 {
	return float64(w.last.Sub(w.first)/bucketSize) + 1
}

func (w *linearWindow) average(now time.Time) float64 {
	t := now.Truncate(bucketSize)
	switch d := t.Sub(w.last); {
	case d <= 0:
		return round6(w.total / math.Min(w.seen(), float64(len(w.buckets))))
	case d < w.window:
		// Leave out the buckets of the silent seconds since the last record:
		// they hold values from a window ago.
		sum := w.total
		for s := w.last.Unix() + 1; s <= t.Unix(); s++ {
			sum -= w.buckets[w.slot(s)]
		}
		silent := float64(t.Unix() - w.last.Unix())
		return round6(sum / math.Min(w.seen(), float64(len(w.buckets))-silent))
	default:
		return 0
	}
}

// round6 rounds to 6 decimal places, as Knative's roundToNDigits(6, f).
func round6(f float64) float64 {
	p := math.Pow10(6)
	return math.Round(f*p) / p
}

// Constants of Knative's weighted average.
const (
	// minSmoothing is the least decay factor per second.
	minSmoothing = 0.2
	// weightPrecision is the sum of weights the window must reach.
	weightPrecision = 0.9999
)

// weightedWindow is an exponentially weighted average over the same
// buckets, Knative's aggregation.WeightedFloat64Buckets: the newest second
// weighs alpha, the one before alpha×(1-alpha), and so on, where alpha is
// chosen so that the window holds weightPrecision of the weight (at least
// minSmoothing). Silent seconds since the last record count as zeros.
type weightedWindow struct {
	*linearWindow
	alpha float64
}

func newWeightedWindow(window time.Duration) *weightedWindow {
	lw := newLinearWindow(window)
	nb := float64(len(lw.buckets))
	alpha := math.Max(1-math.Pow(1-weightPrecision, 1/nb), minSmoothing)
	return &weightedWindow{linearWindow: lw, alpha: alpha}
}

func (w *weightedWindow) average(now time.Time) float64 {
	t := now.Truncate(bucketSize)
	if t.Sub(w.last) > w.window {
		return 0
	}
	n := len(w.buckets)
	weight := w.alpha
	if t.After(w.last) {
		silent := t.Sub(w.last) / bucketSize
		weight *= math.Pow(1-w.alpha, float64(silent))
		n -= int(silent)
	}
	sum := 0.0
	last := w.last.Unix()
	for i := range n {
		sum += w.buckets[w.slot(last-int64(i))] * weight
		weight *= 1 - w.alpha
	}
	return sum
}

// maxWindow is the maximum of the values recorded over the last size
// ticks (Knative's aggregation/max.TimeWindow), kept as a queue of
// candidates with decreasing values: a value can never be the maximum
// again once a larger or equal one has been recorded after it.
type maxWindow struct {
	size        int64
	granularity int64 // seconds per index
	queue       []maxEntry
}

type maxEntry struct {
	index int64
	value int32
}

func newMaxWindow(d, granularity time.Duration) *maxWindow {
	return &maxWindow{
		size:        int64(math.Ceil(float64(d) / float64(granularity))),
		granularity: int64(granularity / time.Second),
	}
}

func (w *maxWindow) record(now time.Time, v int32) {
	index := now.Unix() / w.granularity
	for len(w.queue) > 0 && v >= w.queue[len(w.queue)-1].value {
		w.queue = w.queue[:len(w.queue)-1]
	}
	for len(w.queue) > 0 && index-w.queue[0].index >= w.size {
		w.queue = w.queue[1:]
	}
	// Two records in one tick: keep the larger.
	if n := len(w.queue); n > 0 && w.queue[n-1].index == index {
		v = max(v, w.queue[n-1].value)
		w.queue = w.queue[:n-1]
	}
	w.queue = append(w.queue, maxEntry{index: index, value: v})
}

// current is the maximum over the window; record must have been called.
func (w *maxWindow) current() int32 {
	return w.queue[0].value
}
