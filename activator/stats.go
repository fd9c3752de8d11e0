package activator

import (
	"sync"
	"time"
)

// concurrencyStats integrates the number of requests in a pool over time,
// so that the average concurrency of a period is exact, not sampled.
type concurrencyStats struct {
	mu       sync.Mutex
	start    time.Time // of the current period
	last     time.Time // of the last change
	current  int64     // requests in the pool now
	area     float64   // request-seconds since start
	arrivals int64     // requests that arrived since start
}

func (s *concurrencyStats) reset(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start, s.last = now, now
}

// change records delta requests entering (+1) or leaving (-1) at now.
func (s *concurrencyStats) change(now time.Time, delta int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(now)
	s.current += delta
	if delta > 0 {
		s.arrivals += delta
	}
}

func (s *concurrencyStats) advanceLocked(now time.Time) {
	if now.After(s.last) {
		s.area += float64(s.current) * now.Sub(s.last).Seconds()
		s.last = now
	}
}

// collect returns the average concurrency and the arrivals of the period
// ending at now, and starts the next one.
func (s *concurrencyStats) collect(now time.Time) (float64, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(now)
	avg := float64(s.current)
	if d := now.Sub(s.start).Seconds(); d > 0 {
		avg = s.area / d
	}
	arrivals := float64(s.arrivals)
	s.start, s.area, s.arrivals = now, 0, 0
	return avg, arrivals
}
