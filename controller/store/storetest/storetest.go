// Package storetest holds the behaviour every store.Store must show, as a
// test suite that runs against any implementation, and helpers that give
// other packages' tests a real store on an embedded NATS server.
//
// It must not be imported by non-test code.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wisp-faas/wisp/controller/store"
)

// Timeout bounds every wait of the suite for a watch event.
const Timeout = 5 * time.Second

// NewServer starts an embedded NATS server with its data in a fresh
// t.TempDir and shuts it down when the test ends.
func NewServer(t testing.TB) *store.Server {
	t.Helper()
	srv, err := store.StartServer(store.ServerOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// NewKV returns a KV store on a new embedded server (see NewServer).
func NewKV(t testing.TB) *store.KV {
	t.Helper()
	return NewKVOn(t, NewServer(t))
}

// NewKVOn returns a KV store on a new connection to srv. The connection
// closes when the test ends.
func NewKVOn(t testing.TB, srv *store.Server) *store.KV {
	t.Helper()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := store.NewKV(t.Context(), js, store.KVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// Namespaces returns the namespaces Run uses. A store whose namespaces
// must exist before objects go in them (Kubernetes) has its test create
// them.
func Namespaces() []string {
	return []string{"default", "other", "a", "b", "c", "ab", "nothing-here"}
}

// Run runs the behaviour suite, each case on a fresh store from newStore.
// The suite stores object documents (see doc) and compares what it wrote;
// a store may add metadata of its own.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateExisting", testCreateExisting},
		{"List", testList},
		{"Update", testUpdate},
		{"UpdateConflict", testUpdateConflict},
		{"UpdateMissing", testUpdateMissing},
		{"Delete", testDelete},
		{"DeleteThenCreate", testDeleteThenCreate},
		{"InvalidNames", testInvalidNames},
		{"Watch", testWatch},
		{"WatchNamespace", testWatchNamespace},
		{"WatchSlowReader", testWatchSlowReader},
		{"WatchCancelWithoutReading", testWatchCancelWithoutReading},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
}

const kind = store.Functions

func mustCreate(t *testing.T, s store.Store, ns, name string, value []byte) uint64 {
	t.Helper()
	rev, err := s.Create(t.Context(), kind, ns, name, value)
	if err != nil {
		t.Fatalf("create %s/%s: %v", ns, name, err)
	}
	return rev
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func testCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	rev := mustCreate(t, s, "default", "hello", doc(`{"a":1}`))
	if rev == 0 {
		t.Fatal("create returned revision 0")
	}
	got, err := s.Get(ctx, kind, "default", "hello")
	if err != nil {
		t.Fatal(err)
	}
	want := store.Entry{Namespace: "default", Name: "hello", Value: doc(`{"a":1}`), Revision: rev}
	if !entryEqual(got, want) {
		t.Fatalf("get = %s, want %s", fmtEntry(got), fmtEntry(want))
	}
	_, err = s.Get(ctx, kind, "default", "absent")
	wantErr(t, "get absent", err, store.ErrNotFound)
	_, err = s.Get(ctx, kind, "other", "hello")
	wantErr(t, "get in other namespace", err, store.ErrNotFound)
	_, err = s.Get(ctx, store.Revisions, "default", "hello")
	wantErr(t, "get of other kind", err, store.ErrNotFound)

	rev2 := mustCreate(t, s, "default", "second", doc(`{}`))
	if rev2 <= rev {
		t.Fatalf("second create has revision %d, not above %d", rev2, rev)
	}
}

func testCreateExisting(t *testing.T, s store.Store) {
	rev := mustCreate(t, s, "default", "hello", doc(`{"v":1}`))
	_, err := s.Create(t.Context(), kind, "default", "hello", doc(`{"v":2}`))
	wantErr(t, "create existing", err, store.ErrAlreadyExists)
	got, err := s.Get(t.Context(), kind, "default", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if payload(got.Value) != `{"v":1}` || got.Revision != rev {
		t.Fatalf("failed create changed the object: %s", fmtEntry(got))
	}
}

func testList(t *testing.T, s store.Store) {
	ctx := t.Context()
	empty, err := s.List(ctx, kind, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(empty) != 0 {
		t.Fatalf("list of empty store = %d entries", len(empty))
	}
	// Created out of order; deleted and updated entries included.
	revs := map[string]uint64{}
	for _, k := range []string{"b/zeta", "a/two", "b/alpha", "a/one", "a/gone", "c/x"} {
		ns, name, _ := strings.Cut(k, "/")
		revs[k] = mustCreate(t, s, ns, name, doc(`"`+k+`"`))
	}
	if err := s.Delete(ctx, kind, "a", "gone", 0); err != nil {
		t.Fatal(err)
	}
	rev, err := s.Update(ctx, kind, "b", "alpha", doc(`"b/alpha v2"`), revs["b/alpha"])
	if err != nil {
		t.Fatal(err)
	}
	revs["b/alpha"] = rev
	mustCreate(t, s, "a", "other-kind", doc("{}")) // same kind; other kind below
	if _, err := s.Create(ctx, store.Revisions, "a", "rev", doc("{}")); err != nil {
		t.Fatal(err)
	}

	all, err := s.List(ctx, kind, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(all), []string{"a/one", "a/other-kind", "a/two", "b/alpha", "b/zeta", "c/x"}; !slices.Equal(got, want) {
		t.Fatalf("list all = %v, want %v", got, want)
	}
	for _, e := range all {
		if r, ok := revs[e.Namespace+"/"+e.Name]; ok && r != e.Revision {
			t.Errorf("%s/%s: revision %d, want %d", e.Namespace, e.Name, e.Revision, r)
		}
		if e.Namespace == "b" && e.Name == "alpha" && payload(e.Value) != `"b/alpha v2"` {
			t.Errorf("b/alpha value = %s, want the update", e.Value)
		}
	}
	inB, err := s.List(ctx, kind, "b")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(inB), []string{"b/alpha", "b/zeta"}; !slices.Equal(got, want) {
		t.Fatalf("list b = %v, want %v", got, want)
	}
	none, err := s.List(ctx, kind, "nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	if len(none) != 0 {
		t.Fatalf("list of empty namespace = %v", names(none))
	}
}

func testUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	rev := mustCreate(t, s, "default", "hello", doc(`{"v":1}`))
	rev2, err := s.Update(ctx, kind, "default", "hello", doc(`{"v":2}`), rev)
	if err != nil {
		t.Fatal(err)
	}
	if rev2 <= rev {
		t.Fatalf("update revision %d not above %d", rev2, rev)
	}
	got, err := s.Get(ctx, kind, "default", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if payload(got.Value) != `{"v":2}` || got.Revision != rev2 {
		t.Fatalf("after update: %s", fmtEntry(got))
	}
}

func testUpdateConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, "default", "hello", doc(`{"v":1}`))
	read, err := s.Get(ctx, kind, "default", "hello")
	if err != nil {
		t.Fatal(err)
	}
	// Two writers start from the same read; the second must lose.
	first, err := s.Update(ctx, kind, "default", "hello", doc(`{"v":"first"}`), read.Revision)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(ctx, kind, "default", "hello", doc(`{"v":"second"}`), read.Revision)
	wantErr(t, "second update from the same read", err, store.ErrConflict)
	if errors.Is(err, store.ErrNotFound) {
		t.Fatalf("conflict also matches ErrNotFound: %v", err)
	}
	got, err := s.Get(ctx, kind, "default", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if payload(got.Value) != `{"v":"first"}` || got.Revision != first {
		t.Fatalf("losing update changed the object: %s", fmtEntry(got))
	}
	// A revision from the future is a conflict too.
	_, err = s.Update(ctx, kind, "default", "hello", doc(`{}`), first+100)
	wantErr(t, "update with future revision", err, store.ErrConflict)
}

func testUpdateMissing(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.Update(ctx, kind, "default", "never", doc(`{}`), 1)
	wantErr(t, "update of absent object", err, store.ErrNotFound)

	rev := mustCreate(t, s, "default", "hello", doc(`{}`))
	if err := s.Delete(ctx, kind, "default", "hello", rev); err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(ctx, kind, "default", "hello", doc(`{}`), rev)
	wantErr(t, "update of deleted object", err, store.ErrNotFound)

	// Whatever revision the delete got, naming it must not resurrect.
	for r := rev + 1; r < rev+4; r++ {
		_, err = s.Update(ctx, kind, "default", "hello", doc(`{"zombie":true}`), r)
		wantErr(t, fmt.Sprintf("update of deleted object at revision %d", r), err, store.ErrNotFound)
	}
	_, err = s.Get(ctx, kind, "default", "hello")
	wantErr(t, "get after updates of deleted object", err, store.ErrNotFound)
}

func testDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	err := s.Delete(ctx, kind, "default", "never", 0)
	wantErr(t, "delete absent", err, store.ErrNotFound)

	rev := mustCreate(t, s, "default", "hello", doc(`{"v":1}`))
	rev2, err := s.Update(ctx, kind, "default", "hello", doc(`{"v":2}`), rev)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Delete(ctx, kind, "default", "hello", rev)
	wantErr(t, "delete with stale revision", err, store.ErrConflict)
	if _, err := s.Get(ctx, kind, "default", "hello"); err != nil {
		t.Fatalf("failed delete removed the object: %v", err)
	}
	if err := s.Delete(ctx, kind, "default", "hello", rev2); err != nil {
		t.Fatalf("delete with current revision: %v", err)
	}
	_, err = s.Get(ctx, kind, "default", "hello")
	wantErr(t, "get after delete", err, store.ErrNotFound)
	err = s.Delete(ctx, kind, "default", "hello", 0)
	wantErr(t, "second delete", err, store.ErrNotFound)
	err = s.Delete(ctx, kind, "default", "hello", rev2)
	wantErr(t, "second delete with revision", err, store.ErrNotFound)

	// expected 0 deletes whatever is there.
	mustCreate(t, s, "default", "any", doc(`{}`))
	if err := s.Delete(ctx, kind, "default", "any", 0); err != nil {
		t.Fatalf("unconditional delete: %v", err)
	}
	_, err = s.Get(ctx, kind, "default", "any")
	wantErr(t, "get after unconditional delete", err, store.ErrNotFound)
}

func testDeleteThenCreate(t *testing.T, s store.Store) {
	ctx := t.Context()
	rev := mustCreate(t, s, "default", "hello", doc(`{"v":1}`))
	if err := s.Delete(ctx, kind, "default", "hello", rev); err != nil {
		t.Fatal(err)
	}
	rev2, err := s.Create(ctx, kind, "default", "hello", doc(`{"v":2}`))
	if err != nil {
		t.Fatalf("create after delete: %v", err)
	}
	if rev2 <= rev {
		t.Fatalf("re-created revision %d not above %d", rev2, rev)
	}
	got, err := s.Get(ctx, kind, "default", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if payload(got.Value) != `{"v":2}` || got.Revision != rev2 {
		t.Fatalf("re-created object: %s", fmtEntry(got))
	}
	_, err = s.Create(ctx, kind, "default", "hello", doc(`{"v":3}`))
	wantErr(t, "create over re-created object", err, store.ErrAlreadyExists)
}

func testInvalidNames(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, n := range []struct{ ns, name string }{
		{"", "x"}, {"default", ""}, {"a.b", "x"}, {"default", "x.y"}, {"default", "*"},
		{"default", ">"}, {"Default", "x"}, {"default", "-x"}, {"default", "x-"}, {"default", "has space"},
	} {
		_, err := s.Create(ctx, kind, n.ns, n.name, doc(`{}`))
		wantErr(t, fmt.Sprintf("create %q/%q", n.ns, n.name), err, store.ErrInvalid)
		_, err = s.Get(ctx, kind, n.ns, n.name)
		wantErr(t, fmt.Sprintf("get %q/%q", n.ns, n.name), err, store.ErrInvalid)
	}
	_, err := s.List(ctx, kind, "a.*")
	wantErr(t, "list namespace a.*", err, store.ErrInvalid)
	_, err = s.Watch(ctx, kind, ">")
	wantErr(t, "watch namespace >", err, store.ErrInvalid)
}

func testWatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	r1 := mustCreate(t, s, "default", "one", doc(`"one"`))
	r2 := mustCreate(t, s, "default", "two", doc(`"two"`))
	gone := mustCreate(t, s, "default", "gone", doc(`"gone"`))
	if err := s.Delete(ctx, kind, "default", "gone", gone); err != nil {
		t.Fatal(err)
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.Watch(wctx, kind, "")
	if err != nil {
		t.Fatal(err)
	}
	// Existing objects, in store order, as Put; no Delete for "gone".
	expect(t, ch, put("default", "one", `"one"`, r1))
	expect(t, ch, put("default", "two", `"two"`, r2))
	expect(t, ch, store.Event{Type: store.Synced})

	r3 := mustCreate(t, s, "default", "three", doc(`"three"`))
	r1b, err := s.Update(ctx, kind, "default", "one", doc(`"one v2"`), r1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, kind, "default", "two", r2); err != nil {
		t.Fatal(err)
	}
	r2b := mustCreate(t, s, "default", "two", doc(`"two again"`))

	expect(t, ch, put("default", "three", `"three"`, r3))
	expect(t, ch, put("default", "one", `"one v2"`, r1b))
	del := next(t, ch)
	if del.Type != store.Delete || del.Entry.Namespace != "default" || del.Entry.Name != "two" || len(del.Entry.Value) != 0 {
		t.Fatalf("got %s, want delete of default/two", fmtEvent(del))
	}
	if del.Entry.Revision <= r1b || del.Entry.Revision >= r2b {
		t.Fatalf("delete revision %d not between %d and %d", del.Entry.Revision, r1b, r2b)
	}
	expect(t, ch, put("default", "two", `"two again"`, r2b))

	cancel()
	expectClosed(t, ch)
}

func testWatchNamespace(t *testing.T, s store.Store) {
	ctx := t.Context()
	ra := mustCreate(t, s, "a", "x", doc(`"a/x"`))
	mustCreate(t, s, "b", "x", doc(`"b/x"`))
	mustCreate(t, s, "ab", "x", doc(`"ab/x"`))
	ch, err := s.Watch(ctx, kind, "a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Watch(ctx, store.Revisions, "a")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, ch, put("a", "x", `"a/x"`, ra))
	expect(t, ch, store.Event{Type: store.Synced})
	expect(t, other, store.Event{Type: store.Synced})

	mustCreate(t, s, "b", "y", doc(`"b/y"`))
	mustCreate(t, s, "ab", "y", doc(`"ab/y"`))
	if err := s.Delete(ctx, kind, "b", "x", 0); err != nil {
		t.Fatal(err)
	}
	ry := mustCreate(t, s, "a", "y", doc(`"a/y"`))
	// Only a's change arrives, and nothing on the other kind.
	expect(t, ch, put("a", "y", `"a/y"`, ry))
	select {
	case ev := <-other:
		t.Fatalf("watch of another kind got %s", fmtEvent(ev))
	case <-time.After(50 * time.Millisecond):
	}
}

func testWatchSlowReader(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Enough to overflow any internal buffer, before and after Synced.
	const n = 600
	var want []uint64
	for i := range n {
		want = append(want, mustCreate(t, s, "default", fmt.Sprintf("before-%d", i), doc("{}")))
	}
	ch, err := s.Watch(ctx, kind, "default")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let the watch fill up unread
	// Writers are not held up by an unread watch.
	for i := range n {
		want = append(want, mustCreate(t, s, "default", fmt.Sprintf("after-%d", i), doc("{}")))
	}
	var got []uint64
	synced := 0
	for len(got) < 2*n {
		ev := next(t, ch)
		switch ev.Type {
		case store.Put:
			got = append(got, ev.Entry.Revision)
		case store.Synced:
			synced++
			if len(got) < n {
				t.Fatalf("Synced after %d of %d existing objects", len(got), n)
			}
		default:
			t.Fatalf("unexpected %s", fmtEvent(ev))
		}
	}
	if synced != 1 {
		t.Fatalf("got %d Synced events, want 1", synced)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("slow reader got %d revisions, not the %d written in order", len(got), len(want))
	}
}

func testWatchCancelWithoutReading(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i := range 300 {
		mustCreate(t, s, "default", fmt.Sprintf("obj-%d", i), doc("{}"))
	}
	wctx, cancel := context.WithCancel(ctx)
	ch, err := s.Watch(wctx, kind, "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the watch is now blocked sending
	cancel()
	expectClosed(t, ch)
	// The store still works afterwards.
	mustCreate(t, s, "default", "after-cancel", doc("{}"))
}

// next returns the next event or fails the test after Timeout.
func next(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed early")
		}
		return ev
	case <-time.After(Timeout):
		t.Fatalf("no watch event after %s", Timeout)
	}
	panic("unreachable")
}

func expect(t *testing.T, ch <-chan store.Event, want store.Event) {
	t.Helper()
	got := next(t, ch)
	if got.Type != want.Type || !entryEqual(got.Entry, want.Entry) {
		t.Fatalf("got %s, want %s", fmtEvent(got), fmtEvent(want))
	}
}

// expectClosed reads what is left and fails unless the channel closes
// within Timeout.
func expectClosed(t *testing.T, ch <-chan store.Event) {
	t.Helper()
	deadline := time.After(Timeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("watch channel still open %s after cancel", Timeout)
		}
	}
}

func put(ns, name, value string, rev uint64) store.Event {
	return store.Event{Type: store.Put, Entry: store.Entry{Namespace: ns, Name: name, Value: doc(value), Revision: rev}}
}

func entryEqual(a, b store.Entry) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name && payload(a.Value) == payload(b.Value) && a.Revision == b.Revision
}

func fmtEntry(e store.Entry) string {
	return fmt.Sprintf("%s/%s@%d %q", e.Namespace, e.Name, e.Revision, payload(e.Value))
}

// payloadKey is the annotation that carries what a case wrote.
const payloadKey = "storetest.wisp.dev/payload"

// doc returns the document the suite stores for a payload: an object
// whose only content is the payload, in an annotation, so that every
// store can keep it (a Kubernetes store holds objects of a schema, not
// arbitrary JSON).
func doc(payload string) []byte {
	b, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{payloadKey: payload}}})
	if err != nil {
		panic(err)
	}
	return b
}

// payload returns what doc put in a stored document, or the document
// itself when it holds none. A store may add metadata of its own (uid,
// creation time); the suite compares only what it wrote.
func payload(value []byte) string {
	var d struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if json.Unmarshal(value, &d) == nil {
		if p, ok := d.Metadata.Annotations[payloadKey]; ok {
			return p
		}
	}
	return string(value)
}

func fmtEvent(ev store.Event) string {
	typ := map[store.EventType]string{store.Put: "Put", store.Delete: "Delete", store.Synced: "Synced"}[ev.Type]
	if typ == "" {
		typ = fmt.Sprintf("EventType(%d)", ev.Type)
	}
	return typ + " " + fmtEntry(ev.Entry)
}

func names(es []store.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Namespace + "/" + e.Name
	}
	return out
}
