package controller

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestQueueDeduplicatesWaitingKeys(t *testing.T) {
	q := newQueue()
	q.Add("a")
	q.Add("a")
	q.Add("b")
	if k, _ := q.Get(); k != "a" {
		t.Fatalf("first key = %q, want a", k)
	}
	if k, _ := q.Get(); k != "b" {
		t.Fatalf("second key = %q, want b", k)
	}
	if len(q.items) != 0 {
		t.Fatalf("queue still holds %v", q.items)
	}
}

func TestQueueNeverHandsOneKeyToTwoWorkers(t *testing.T) {
	q := newQueue()
	var busy, overlaps, runs atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				k, ok := q.Get()
				if !ok {
					return
				}
				if busy.Add(1) > 1 {
					overlaps.Add(1)
				}
				time.Sleep(time.Millisecond)
				busy.Add(-1)
				runs.Add(1)
				q.Done(k)
			}
		})
	}
	for range 50 {
		q.Add("same")
		time.Sleep(200 * time.Microsecond)
	}
	time.Sleep(20 * time.Millisecond)
	q.Close()
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Fatalf("key processed concurrently %d times", overlaps.Load())
	}
	if runs.Load() < 2 {
		t.Fatalf("re-added key processed %d times, want it processed again after Done", runs.Load())
	}
}
