package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/controller/store/storetest"
)

// widget has the shape of api.Function: TypeMeta, ObjectMeta, spec.
type widget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              widgetSpec `json:"spec"`
}

type widgetSpec struct {
	Size  int      `json:"size"`
	Parts []string `json:"parts,omitempty"`
}

func newWidget(ns, name string, size int) *widget {
	return &widget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "wisp.dev/v1alpha1", Kind: "Widget"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"a": "b"}},
		Spec:       widgetSpec{Size: size},
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func TestTyped(t *testing.T) {
	ctx := t.Context()
	s := storetest.NewKV(t)
	w := store.NewTyped[widget](s, store.Functions)
	if w.Kind() != store.Functions {
		t.Fatalf("kind %q", w.Kind())
	}

	in := newWidget("default", "hello", 1)
	in.ResourceVersion = "999" // ignored by Create
	created, err := w.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if in.ResourceVersion != "999" {
		t.Fatal("Create modified its argument")
	}
	rev, err := store.ParseRevision(created.ResourceVersion)
	if err != nil {
		t.Fatal(err)
	}
	if created.Spec.Size != 1 || created.Labels["a"] != "b" || created.Kind != "Widget" {
		t.Fatalf("created %+v", created)
	}

	// The stored document has no resourceVersion.
	raw, err := s.Get(ctx, store.Functions, "default", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if raw.Revision != rev || strings.Contains(string(raw.Value), "resourceVersion") {
		t.Fatalf("stored %s at %d, want no resourceVersion at %d", raw.Value, raw.Revision, rev)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw.Value, &doc); err != nil || doc["spec"] == nil || doc["metadata"] == nil {
		t.Fatalf("stored document %s: %v", raw.Value, err)
	}

	got, err := w.Get(ctx, "default", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion != created.ResourceVersion || got.Spec.Size != 1 || got.Name != "hello" || got.Namespace != "default" {
		t.Fatalf("get %+v", got)
	}

	// Two updates from the same read: the second conflicts.
	a, b := *got, *got
	a.Spec.Size, b.Spec.Size = 2, 3
	updated, err := w.Update(ctx, &a)
	if err != nil {
		t.Fatal(err)
	}
	if updated.ResourceVersion == got.ResourceVersion || a.ResourceVersion != got.ResourceVersion {
		t.Fatalf("update: returned rv %s, argument rv %s, read rv %s", updated.ResourceVersion, a.ResourceVersion, got.ResourceVersion)
	}
	if _, err := w.Update(ctx, &b); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second update from the same read: %v, want ErrConflict", err)
	}
	for _, rv := range []string{"", "abc", "0", "-1"} {
		c := *updated
		c.ResourceVersion = rv
		if _, err := w.Update(ctx, &c); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("update with resourceVersion %q: %v, want ErrInvalid", rv, err)
		}
	}
	if err := w.Delete(ctx, "default", "hello", "x"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("delete with resourceVersion x: %v, want ErrInvalid", err)
	}
	if _, err := w.Create(ctx, nil); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("create nil: %v", err)
	}

	if _, err := w.Create(ctx, newWidget("default", "another", 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Create(ctx, newWidget("other", "third", 6)); err != nil {
		t.Fatal(err)
	}
	list, err := w.List(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "another" || list[1].Name != "hello" || list[1].Spec.Size != 2 || list[1].ResourceVersion != updated.ResourceVersion {
		t.Fatalf("list default: %+v", list)
	}

	if err := w.Delete(ctx, "default", "hello", got.ResourceVersion); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete with stale resourceVersion: %v", err)
	}
	if err := w.Delete(ctx, "default", "hello", updated.ResourceVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Get(ctx, "default", "hello"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := w.Delete(ctx, "default", "another", ""); err != nil {
		t.Fatalf("unconditional delete: %v", err)
	}
}

func TestTypedWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s := storetest.NewKV(t)
	w := store.NewTyped[widget](s, store.Functions)
	first, err := w.Create(ctx, newWidget("default", "first", 1))
	if err != nil {
		t.Fatal(err)
	}
	// A value that is not a widget: reported, not fatal.
	if _, err := s.Create(ctx, store.Functions, "default", "junk", []byte(`[1,2]`)); err != nil {
		t.Fatal(err)
	}
	ch, err := w.Watch(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	next := func() store.TypedEvent[*widget] {
		t.Helper()
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("typed watch closed early")
			}
			return ev
		case <-time.After(storetest.Timeout):
			t.Fatal("no typed watch event")
		}
		panic("unreachable")
	}
	if ev := next(); ev.Type != store.Put || ev.Err != nil || ev.Object.Name != "first" || ev.Object.ResourceVersion != first.ResourceVersion || ev.Object.Spec.Size != 1 {
		t.Fatalf("first event %+v", ev)
	}
	if ev := next(); ev.Type != store.Put || ev.Err == nil || ev.Object == nil || ev.Object.Name != "junk" {
		t.Fatalf("junk event %+v, want Put with Err and a stub object", ev)
	}
	if ev := next(); ev.Type != store.Synced || ev.Object != nil {
		t.Fatalf("third event %+v, want Synced", ev)
	}
	first.Spec.Size = 10
	upd, err := w.Update(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Type != store.Put || ev.Object.Spec.Size != 10 || ev.Object.ResourceVersion != upd.ResourceVersion {
		t.Fatalf("update event %+v", ev)
	}
	if err := w.Delete(ctx, "default", "first", ""); err != nil {
		t.Fatal(err)
	}
	ev := next()
	if ev.Type != store.Delete || ev.Object.Name != "first" || ev.Object.Namespace != "default" || ev.Object.ResourceVersion == upd.ResourceVersion {
		t.Fatalf("delete event %+v", ev)
	}
	// The delete's resourceVersion cannot bring the object back.
	ev.Object.Spec.Size = 99
	if _, err := w.Update(ctx, ev.Object); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update with the delete's resourceVersion: %v, want ErrNotFound", err)
	}
	cancel()
	select {
	case <-ch:
		for range ch {
		}
	case <-time.After(storetest.Timeout):
		t.Fatal("typed watch open after cancel")
	}
}
