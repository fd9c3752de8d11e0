package store_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/controller/store/storetest"
)

func TestKV(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.NewKV(t) })
}

func TestKVBuckets(t *testing.T) {
	srv := storetest.NewServer(t)
	s := storetest.NewKVOn(t, srv)
	if got := s.Bucket(store.Functions); got != "wisp_functions" {
		t.Fatalf("bucket = %q, want wisp_functions", got)
	}
	if _, err := s.Create(t.Context(), store.Functions, "default", "hello", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := js.KeyValue(t.Context(), "wisp_functions")
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != store.BucketHistory || st.Values() != 1 {
		t.Fatalf("bucket history %d values %d, want %d and 1", st.History(), st.Values(), store.BucketHistory)
	}
	e, err := b.Get(t.Context(), "default.hello")
	if err != nil {
		t.Fatalf("key layout: %v", err)
	}
	if string(e.Value()) != "{}" {
		t.Fatalf("stored %q", e.Value())
	}

	// Updates keep history; a delete purges it and leaves one marker.
	rev := e.Revision()
	for range 3 {
		if rev, err = s.Update(t.Context(), store.Functions, "default", "hello", []byte("{}"), rev); err != nil {
			t.Fatal(err)
		}
	}
	if n := values(t, b); n != 4 {
		t.Fatalf("%d messages after create and 3 updates, want 4", n)
	}
	if err := s.Delete(t.Context(), store.Functions, "default", "hello", rev); err != nil {
		t.Fatal(err)
	}
	if n := values(t, b); n != 1 {
		t.Fatalf("%d messages after delete, want only the marker", n)
	}

	if _, err := s.Get(t.Context(), store.Kind("bad.kind"), "default", "x"); err == nil {
		t.Fatal("kind with a dot accepted")
	}
	if _, err := store.NewKV(t.Context(), js, store.KVOptions{BucketPrefix: "bad prefix"}); err == nil {
		t.Fatal("bucket prefix with a space accepted")
	}
	other, err := store.NewKV(t.Context(), js, store.KVOptions{BucketPrefix: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Get(t.Context(), store.Functions, "default", "hello"); err == nil {
		t.Fatal("store with another prefix sees wisp_functions")
	}
}

// Watches that are cancelled, read or not, leave no goroutine behind.
func TestKVWatchNoLeak(t *testing.T) {
	s := storetest.NewKV(t)
	ctx := t.Context()
	for i := range 600 {
		if _, err := s.Create(ctx, store.Functions, "default", "obj-"+itoa(i), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	// Warm up: the first watch starts the connection's own goroutines.
	watchAndCancel(t, s, 1)
	before := runtime.NumGoroutine()
	// Read none (jetstream's own buffer fills up), some, or all and Synced.
	const rounds = 12
	for i := range rounds {
		watchAndCancel(t, s, []int{0, 300, 601}[i%3])
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after %d cancelled watches\n%s", before, runtime.NumGoroutine(), rounds, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func watchAndCancel(t *testing.T, s store.Store, read int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := s.Watch(ctx, store.Functions, "")
	if err != nil {
		t.Fatal(err)
	}
	for range read {
		select {
		case <-ch:
		case <-time.After(storetest.Timeout):
			t.Fatal("watch stalled")
		}
	}
	time.Sleep(20 * time.Millisecond) // let the watch block on its reader
	cancel()
	for range ch {
	}
}

func values(t *testing.T, b jetstream.KeyValue) uint64 {
	t.Helper()
	st, err := b.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.Values()
}

func itoa(i int) string { return store.FormatRevision(uint64(i)) }
