package logs

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func line(i int) Line { return Line{Time: time.Unix(int64(i), 0), Revision: "r", Text: fmt.Sprint(i)} }

func TestTailKeepsTheLastLinesInOrder(t *testing.T) {
	b := New(3)
	for i := range 5 {
		b.Add("ns", "f", line(i))
	}
	got := b.Tail("ns", "f", 0)
	if len(got) != 3 || got[0].Text != "2" || got[2].Text != "4" {
		t.Fatalf("tail = %+v, want lines 2..4", got)
	}
	if got := b.Tail("ns", "f", 2); len(got) != 2 || got[0].Text != "3" {
		t.Fatalf("tail 2 = %+v", got)
	}
	if got := b.Tail("ns", "other", 0); got != nil {
		t.Fatalf("unknown function has lines: %+v", got)
	}
}

func TestFollowSeesEveryLaterLineOnce(t *testing.T) {
	b := New(100)
	b.Add("ns", "f", line(0))
	tail, f := b.Follow("ns", "f", 10)
	if len(tail) != 1 || tail[0].Text != "0" {
		t.Fatalf("tail = %+v", tail)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; i <= 50; i++ {
			b.Add("ns", "f", line(i))
		}
	})
	wg.Wait()
	for i := 1; i <= 50; i++ {
		l := <-f.C
		if l.Text != fmt.Sprint(i) {
			t.Fatalf("line %d = %q", i, l.Text)
		}
	}
	f.Close()
	if _, ok := <-f.C; ok {
		t.Fatal("C not closed after Close")
	}
}

func TestSlowFollowerNeverBlocksWriters(t *testing.T) {
	b := New(10)
	_, f := b.Follow("ns", "f", 0)
	done := make(chan struct{})
	go func() {
		for i := range followerBuffer + 100 {
			b.Add("ns", "f", line(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("writer blocked on a follower that does not read")
	}
	if f.Dropped() != 100 {
		t.Fatalf("dropped = %d, want 100", f.Dropped())
	}
}

func TestForgetEndsFollowers(t *testing.T) {
	b := New(10)
	_, f := b.Follow("ns", "f", 0)
	b.Forget("ns", "f")
	if _, ok := <-f.C; ok {
		t.Fatal("follower of a forgotten function still open")
	}
	f.Close() // harmless after Forget
}
