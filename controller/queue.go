package controller

import (
	"sync"
	"time"
)

// queue is a work queue of keys in which a key waits at most once, and is
// never handed to two workers at the same time: a key added while it is
// being processed is processed again after Done.
type queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	items      []string
	dirty      map[string]bool
	processing map[string]bool
	closed     bool
}

func newQueue() *queue {
	q := &queue{dirty: map[string]bool{}, processing: map[string]bool{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues key unless it is already waiting.
func (q *queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.dirty[key] {
		return
	}
	q.dirty[key] = true
	if !q.processing[key] {
		q.items = append(q.items, key)
		q.cond.Signal()
	}
}

// AddAfter queues key once d has passed.
func (q *queue) AddAfter(key string, d time.Duration) {
	time.AfterFunc(d, func() { q.Add(key) })
}

// Get blocks until a key is ready and returns it; ok is false once the
// queue is closed.
func (q *queue) Get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return "", false
	}
	key, q.items = q.items[0], q.items[1:]
	delete(q.dirty, key)
	q.processing[key] = true
	return key, true
}

// Done marks key as processed, requeueing it if it was added meanwhile.
func (q *queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.dirty[key] {
		q.items = append(q.items, key)
		q.cond.Signal()
	}
}

// Close wakes every Get, which then returns ok false.
func (q *queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}
