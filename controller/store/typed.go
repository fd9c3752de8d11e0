package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Object is the constraint on what Typed stores: a pointer to a struct
// that carries Kubernetes object metadata, such as *api.Function (whose
// embedded metav1.ObjectMeta provides the methods).
type Object[T any] interface {
	*T
	metav1.Object
}

// Typed stores one Kind of object as JSON in a Store. The stored
// document never holds metadata.resourceVersion: Typed sets it on every
// object it returns from the store revision, and reads it back as the
// expected revision of Update and Delete. Namespace and name come from
// the object's metadata; the key is authoritative when reading.
type Typed[T any, PT Object[T]] struct {
	store Store
	kind  Kind
}

// NewTyped returns a Typed view of kind in s.
func NewTyped[T any, PT Object[T]](s Store, kind Kind) *Typed[T, PT] {
	return &Typed[T, PT]{store: s, kind: kind}
}

// TypedEvent is one change seen by Typed.Watch.
type TypedEvent[PT any] struct {
	// Type is Put, Delete or Synced.
	Type EventType
	// Object is the object for Put. For Delete it carries only namespace,
	// name and the resourceVersion of the deletion. Nil for Synced.
	Object PT
	// Err is set when a stored value could not be decoded; Object then
	// carries only namespace, name and resourceVersion. The watch goes on.
	Err error
}

// Kind returns the kind this Typed stores.
func (t *Typed[T, PT]) Kind() Kind { return t.kind }

// Get returns the object with its resourceVersion set, or ErrNotFound.
func (t *Typed[T, PT]) Get(ctx context.Context, namespace, name string) (PT, error) {
	e, err := t.store.Get(ctx, t.kind, namespace, name)
	if err != nil {
		return nil, err
	}
	return t.decode(e)
}

// List returns the objects of a namespace ("" = all), ordered by
// namespace then name, each with its resourceVersion set.
func (t *Typed[T, PT]) List(ctx context.Context, namespace string) ([]PT, error) {
	entries, err := t.store.List(ctx, t.kind, namespace)
	if err != nil {
		return nil, err
	}
	out := make([]PT, 0, len(entries))
	for _, e := range entries {
		obj, err := t.decode(e)
		if err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
	return out, nil
}

// Create stores obj under its namespace and name (ErrAlreadyExists if
// taken) and returns the stored object with its resourceVersion set.
// obj itself is not modified; its resourceVersion is ignored.
func (t *Typed[T, PT]) Create(ctx context.Context, obj PT) (PT, error) {
	if obj == nil {
		return nil, fmt.Errorf("store: create %s: %w: nil object", t.kind, ErrInvalid)
	}
	ns, name := obj.GetNamespace(), obj.GetName()
	data, err := t.encode(obj)
	if err != nil {
		return nil, fmt.Errorf("store: create %s/%s/%s: %w", t.kind, ns, name, err)
	}
	if ew, ok := t.store.(EntryWriter); ok {
		e, err := ew.CreateEntry(ctx, t.kind, ns, name, data)
		if err != nil {
			return nil, err
		}
		return t.decode(e)
	}
	rev, err := t.store.Create(ctx, t.kind, ns, name, data)
	if err != nil {
		return nil, err
	}
	return t.decode(Entry{Namespace: ns, Name: name, Value: data, Revision: rev})
}

// Update replaces the stored object with obj if obj's resourceVersion is
// still the stored one (ErrConflict if not, ErrNotFound if it is gone),
// and returns the stored object with its new resourceVersion. An empty
// or malformed resourceVersion is ErrInvalid. obj is not modified.
func (t *Typed[T, PT]) Update(ctx context.Context, obj PT) (PT, error) {
	if ew, ok := t.store.(EntryWriter); ok {
		return t.update(ctx, obj, ew.UpdateEntry)
	}
	return t.update(ctx, obj, entryOf(t.store.Update))
}

// entryOf adapts a write that returns the new revision to one that
// returns the entry written.
func entryOf(write func(context.Context, Kind, string, string, []byte, uint64) (uint64, error)) writeFunc {
	return func(ctx context.Context, kind Kind, ns, name string, value []byte, expected uint64) (Entry, error) {
		rev, err := write(ctx, kind, ns, name, value, expected)
		return Entry{Namespace: ns, Name: name, Value: value, Revision: rev}, err
	}
}

type writeFunc func(ctx context.Context, kind Kind, namespace, name string, value []byte, expected uint64) (Entry, error)

func (t *Typed[T, PT]) update(ctx context.Context, obj PT, write writeFunc) (PT, error) {
	if obj == nil {
		return nil, fmt.Errorf("store: update %s: %w: nil object", t.kind, ErrInvalid)
	}
	ns, name := obj.GetNamespace(), obj.GetName()
	fail := opError("update", t.kind, ns, name)
	if obj.GetResourceVersion() == "" {
		return nil, fail(fmt.Errorf("%w: metadata.resourceVersion is empty; update an object read from the store", ErrInvalid))
	}
	expected, err := ParseRevision(obj.GetResourceVersion())
	if err != nil {
		return nil, fail(err)
	}
	data, err := t.encode(obj)
	if err != nil {
		return nil, fail(err)
	}
	e, err := write(ctx, t.kind, ns, name, data, expected)
	if err != nil {
		return nil, err
	}
	return t.decode(e)
}

// UpdateStatus writes obj's status if obj's resourceVersion is still the
// stored one, like Update, and returns the stored object. obj must be the
// object as read with only its status changed (see Store.UpdateStatus).
func (t *Typed[T, PT]) UpdateStatus(ctx context.Context, obj PT) (PT, error) {
	if ew, ok := t.store.(EntryWriter); ok {
		return t.update(ctx, obj, ew.UpdateStatusEntry)
	}
	return t.update(ctx, obj, entryOf(t.store.UpdateStatus))
}

// Delete removes the object. An empty resourceVersion deletes whatever
// is stored; otherwise ErrConflict if it is not the stored one.
// ErrNotFound if absent; ErrInvalid if resourceVersion is malformed.
func (t *Typed[T, PT]) Delete(ctx context.Context, namespace, name, resourceVersion string) error {
	var expected uint64
	if resourceVersion != "" {
		var err error
		if expected, err = ParseRevision(resourceVersion); err != nil {
			return opError("delete", t.kind, namespace, name)(err)
		}
	}
	return t.store.Delete(ctx, t.kind, namespace, name, expected)
}

// Watch streams the objects of a namespace ("" = all) like Store.Watch,
// decoded. The channel is closed when ctx is done or the store closes.
func (t *Typed[T, PT]) Watch(ctx context.Context, namespace string) (<-chan TypedEvent[PT], error) {
	in, err := t.store.Watch(ctx, t.kind, namespace)
	if err != nil {
		return nil, err
	}
	out := make(chan TypedEvent[PT])
	go func() {
		defer close(out)
		for ev := range in {
			te := TypedEvent[PT]{Type: ev.Type}
			switch ev.Type {
			case Put:
				te.Object, te.Err = t.decode(ev.Entry)
				if te.Err != nil {
					te.Object = t.stub(ev.Entry)
				}
			case Delete:
				te.Object = t.stub(ev.Entry)
			}
			select {
			case out <- te:
			case <-ctx.Done():
				// in is closed by the store once ctx is done.
				return
			}
		}
	}()
	return out, nil
}

// encode marshals a shallow copy of obj without its resourceVersion.
func (t *Typed[T, PT]) encode(obj PT) ([]byte, error) {
	cp := *obj
	PT(&cp).SetResourceVersion("")
	data, err := json.Marshal(PT(&cp))
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return data, nil
}

// decode unmarshals an entry into a new object and sets its namespace,
// name and resourceVersion from the entry.
func (t *Typed[T, PT]) decode(e Entry) (PT, error) {
	obj := PT(new(T))
	if err := json.Unmarshal(e.Value, obj); err != nil {
		return nil, fmt.Errorf("store: decode %s/%s/%s at revision %d: %w", t.kind, e.Namespace, e.Name, e.Revision, err)
	}
	setMeta(obj, e)
	return obj, nil
}

// stub returns a new object that carries only the entry's identity.
func (t *Typed[T, PT]) stub(e Entry) PT {
	obj := PT(new(T))
	setMeta(obj, e)
	return obj
}

func setMeta(obj metav1.Object, e Entry) {
	obj.SetNamespace(e.Namespace)
	obj.SetName(e.Name)
	obj.SetResourceVersion(FormatRevision(e.Revision))
}

// FormatRevision returns the resourceVersion string of a store revision.
func FormatRevision(rev uint64) string { return strconv.FormatUint(rev, 10) }

// ParseRevision returns the store revision a resourceVersion names.
// Empty or malformed is ErrInvalid.
func ParseRevision(rv string) (uint64, error) {
	rev, err := strconv.ParseUint(rv, 10, 64)
	if err != nil || rev == 0 {
		return 0, fmt.Errorf("%w: resourceVersion %q is not a store revision (a positive integer)", ErrInvalid, rv)
	}
	return rev, nil
}
