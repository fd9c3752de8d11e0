package store

import (
	"context"
	"errors"
)

// Kind names one collection of resources (one KV bucket).
type Kind string

// The kinds the node stores.
const (
	Functions Kind = "functions"
	Revisions Kind = "revisions"
	Filters   Kind = "filters"
	Triggers  Kind = "triggers"
	// Nodes holds the nodes' reports (api.WispNode).
	Nodes Kind = "nodes"
)

// Errors returned by a Store. Callers test them with errors.Is; the
// admin API maps them to 404 and 409.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict means the expected revision is not the stored one:
	// somebody else changed the object; read it again and retry.
	ErrConflict = errors.New("conflict: the object was changed since it was read")
	// ErrInvalid means the request itself is malformed: a namespace or
	// name that is not a DNS label, or a resourceVersion that is empty or
	// not a number where one is required. The admin API maps it to 400.
	ErrInvalid = errors.New("invalid request")
	// ErrForbidden means the store refused the caller: a Kubernetes
	// apiserver's RBAC said no. The error's text names the verb and the
	// resource. The admin API maps it to 403.
	ErrForbidden = errors.New("forbidden")
)

// Entry is one stored object: its JSON document and the store revision
// that wrote it, which is the object's resourceVersion.
type Entry struct {
	Namespace string
	Name      string
	Value     []byte
	Revision  uint64
}

// EventType says what a watch Event reports.
type EventType int

const (
	// Put: the object was created or updated (or exists at watch start).
	Put EventType = iota + 1
	// Delete: the object was deleted. Entry.Value is empty; Entry.Revision
	// is the store revision of the deletion itself.
	Delete
	// Synced: every object that existed when the watch started has been
	// sent; what follows are changes. Entry is empty.
	Synced
)

// Event is one change seen by a watch.
type Event struct {
	Type  EventType
	Entry Entry
}

// Store keeps resources durably with compare-and-swap updates and watch.
// Namespaces and names are DNS labels. A Store is safe for concurrent use.
type Store interface {
	// Get returns the object or ErrNotFound.
	Get(ctx context.Context, kind Kind, namespace, name string) (Entry, error)
	// List returns the objects of one namespace, or of all when
	// namespace is "", ordered by namespace then name.
	List(ctx context.Context, kind Kind, namespace string) ([]Entry, error)
	// Create stores a new object; ErrAlreadyExists if the name is taken.
	Create(ctx context.Context, kind Kind, namespace, name string, value []byte) (uint64, error)
	// Update replaces the object only if its revision is still
	// expected; ErrConflict if not, ErrNotFound if it is gone. A store
	// that keeps an object's status apart from the rest (Kubernetes, with
	// the status subresource) keeps the stored status; callers that do
	// not mean to change the status pass the stored one.
	Update(ctx context.Context, kind Kind, namespace, name string, value []byte, expected uint64) (uint64, error)
	// UpdateStatus replaces the object's status, under the same
	// compare-and-swap rules as Update. value is the whole object as read,
	// with only its "status" changed: a store that keeps the status apart
	// writes only that; one that does not writes value whole.
	UpdateStatus(ctx context.Context, kind Kind, namespace, name string, value []byte, expected uint64) (uint64, error)
	// Delete removes the object. expected 0 deletes whatever is stored;
	// otherwise ErrConflict if the revision moved. ErrNotFound if absent.
	Delete(ctx context.Context, kind Kind, namespace, name string, expected uint64) error
	// Watch streams the objects of a namespace ("" = all): first every
	// existing object as Put, then one Synced, then changes as they
	// happen, in store order. The channel is closed when ctx is done or
	// the store closes.
	Watch(ctx context.Context, kind Kind, namespace string) (<-chan Event, error)
}

// EntryWriter is implemented by a Store whose writes store more than the
// caller sent (a Kubernetes apiserver sets uid, creationTimestamp and
// generation): its methods return the stored entry, so that Typed hands
// callers the object as stored without reading it again.
type EntryWriter interface {
	CreateEntry(ctx context.Context, kind Kind, namespace, name string, value []byte) (Entry, error)
	UpdateEntry(ctx context.Context, kind Kind, namespace, name string, value []byte, expected uint64) (Entry, error)
	UpdateStatusEntry(ctx context.Context, kind Kind, namespace, name string, value []byte, expected uint64) (Entry, error)
}
