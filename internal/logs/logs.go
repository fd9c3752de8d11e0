// Package logs keeps the recent output of every function — the lines its
// instances write to stdout and stderr — in memory, and lets readers
// follow new lines as they arrive. It backs `wisp logs`.
//
// It keeps a bounded number of lines per function and never blocks a
// writer: a follower that cannot keep up loses lines, and is told so.
package logs

import (
	"sync"
	"time"
)

// Line is one line a function's instance wrote.
type Line struct {
	Time     time.Time `json:"time"`
	Revision string    `json:"revision"`
	Instance string    `json:"instance"`
	Stream   string    `json:"stream"`
	Text     string    `json:"line"`
}

// followerBuffer is how many lines a follower may lag before it loses some.
const followerBuffer = 256

// Book holds the recent lines of every function.
type Book struct {
	keep int

	mu    sync.Mutex
	funcs map[string]*ring // by namespace/function
}

type ring struct {
	lines     []Line
	next      int
	full      bool
	followers map[*Follower]struct{}
}

// Follower receives a function's new lines on C until Close.
type Follower struct {
	C       <-chan Line
	c       chan Line
	dropped int
	book    *Book
	key     string
}

// New returns a Book that keeps the last keep lines of each function.
func New(keep int) *Book {
	return &Book{keep: keep, funcs: map[string]*ring{}}
}

func (b *Book) ring(key string) *ring {
	r, ok := b.funcs[key]
	if !ok {
		r = &ring{lines: make([]Line, b.keep), followers: map[*Follower]struct{}{}}
		b.funcs[key] = r
	}
	return r
}

// Add records a line of a function.
func (b *Book) Add(namespace, function string, l Line) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.ring(namespace + "/" + function)
	r.lines[r.next] = l
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
	for f := range r.followers {
		select {
		case f.c <- l:
		default:
			f.dropped++
		}
	}
}

// Tail returns up to n of a function's most recent lines, oldest first
// (all it keeps when n <= 0).
func (b *Book) Tail(namespace, function string, n int) []Line {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.funcs[namespace+"/"+function]
	if !ok {
		return nil
	}
	return r.tail(n)
}

func (r *ring) tail(n int) []Line {
	var all []Line
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	if n > 0 && len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}

// Follow returns the last n lines and a Follower of the lines after them,
// with nothing lost or repeated between the two.
func (b *Book) Follow(namespace, function string, n int) ([]Line, *Follower) {
	key := namespace + "/" + function
	c := make(chan Line, followerBuffer)
	f := &Follower{C: c, c: c, book: b, key: key}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.ring(key)
	r.followers[f] = struct{}{}
	return r.tail(n), f
}

// Dropped returns how many lines the follower lost by lagging.
func (f *Follower) Dropped() int {
	f.book.mu.Lock()
	defer f.book.mu.Unlock()
	return f.dropped
}

// Close stops the follower and closes C.
func (f *Follower) Close() {
	f.book.mu.Lock()
	defer f.book.mu.Unlock()
	r, ok := f.book.funcs[f.key]
	if !ok {
		return
	}
	if _, ok := r.followers[f]; ok {
		delete(r.followers, f)
		close(f.c)
	}
}

// Forget drops a deleted function's lines and ends its followers.
func (b *Book) Forget(namespace, function string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := namespace + "/" + function
	if r, ok := b.funcs[key]; ok {
		for f := range r.followers {
			close(f.c)
		}
		delete(b.funcs, key)
	}
}
