package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucketPrefix starts the name of every bucket KV creates.
const DefaultBucketPrefix = "wisp"

// BucketHistory is how many revisions of each key a bucket keeps. Reads
// only ever see the latest; the older ones are there for watches that run
// behind. A watch that falls more than BucketHistory revisions of one key
// behind skips the older ones and goes on from the oldest still kept: it
// still ends at the latest state, but may miss that the object was
// deleted and created again in between.
const BucketHistory = 8

// KVOptions configures a KV store.
type KVOptions struct {
	// BucketPrefix names the buckets: <prefix>_<kind>, for example
	// wisp_functions. Empty means DefaultBucketPrefix.
	BucketPrefix string

	// Replicas is the replica count of each bucket. Zero means 1, all a
	// single server supports; more needs a NATS cluster.
	Replicas int
}

// KV is a Store on NATS JetStream key-value buckets: one bucket per Kind,
// keyed "<namespace>.<name>", keeping BucketHistory revisions per key. A
// revision is the bucket's stream sequence number, so revisions grow
// per Kind and survive restarts. Buckets are created on first use.
type KV struct {
	js     jetstream.JetStream
	prefix string
	repl   int

	mu      sync.Mutex
	buckets map[Kind]jetstream.KeyValue
}

var _ Store = (*KV)(nil)

// NewKV returns a Store on the JetStream that js reaches. It checks that
// JetStream answers, so a misconfigured NATS fails here and not on the
// first request.
func NewKV(ctx context.Context, js jetstream.JetStream, opts KVOptions) (*KV, error) {
	prefix := cmp.Or(opts.BucketPrefix, DefaultBucketPrefix)
	if !bucketNameRe.MatchString(prefix) {
		return nil, fmt.Errorf("store: bucket prefix %q: %w: use letters, digits, '-' and '_'", prefix, ErrInvalid)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("store: %w; run nats-server with JetStream enabled (-js)", err)
		}
		return nil, fmt.Errorf("store: reach JetStream: %w", err)
	}
	return &KV{
		js:      js,
		prefix:  prefix,
		repl:    max(opts.Replicas, 1),
		buckets: make(map[Kind]jetstream.KeyValue),
	}, nil
}

// bucketNameRe is what JetStream accepts as a bucket name.
var bucketNameRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Bucket returns the name of the bucket that holds kind.
func (s *KV) Bucket(kind Kind) string { return s.prefix + "_" + string(kind) }

// bucket returns the bucket of kind, creating it if missing.
func (s *KV) bucket(ctx context.Context, kind Kind) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.buckets[kind]; ok {
		return b, nil
	}
	name := s.Bucket(kind)
	if kind == "" || !bucketNameRe.MatchString(name) {
		return nil, fmt.Errorf("kind %q: %w: use letters, digits, '-' and '_'", kind, ErrInvalid)
	}
	b, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      name,
		Description: "wisp " + string(kind),
		History:     BucketHistory,
		Storage:     jetstream.FileStorage,
		Replicas:    s.repl,
	})
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", name, err)
	}
	s.buckets[kind] = b
	return b, nil
}

// Get returns the object or ErrNotFound.
func (s *KV) Get(ctx context.Context, kind Kind, namespace, name string) (Entry, error) {
	fail := opError("get", kind, namespace, name)
	b, key, err := s.open(ctx, kind, namespace, name)
	if err != nil {
		return Entry{}, fail(err)
	}
	e, err := get(ctx, b, key)
	if err != nil {
		return Entry{}, fail(err)
	}
	return Entry{Namespace: namespace, Name: name, Value: e.Value(), Revision: e.Revision()}, nil
}

// List returns the objects of one namespace, or of all when namespace is
// "", ordered by namespace then name. It reads one consistent snapshot
// (a single watch up to its end-of-initial-values marker).
func (s *KV) List(ctx context.Context, kind Kind, namespace string) ([]Entry, error) {
	fail := func(err error) error { return fmt.Errorf("store: list %s/%s: %w", kind, nsOrAll(namespace), err) }
	w, err := s.watchKeys(ctx, kind, namespace)
	if err != nil {
		return nil, fail(err)
	}
	defer stopWatcher(w)

	live := make(map[string]Entry)
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil, fail(ctx.Err())
		case ent, ok := <-w.Updates():
			if !ok {
				return nil, fail(errors.New("watch closed before the listing completed; is the NATS connection closed?"))
			}
			e = ent
		}
		if e == nil { // end of initial values
			break
		}
		ns, name, ok := splitKey(e.Key())
		if !ok {
			continue // not written by this package
		}
		if e.Operation() == jetstream.KeyValuePut {
			live[e.Key()] = Entry{Namespace: ns, Name: name, Value: e.Value(), Revision: e.Revision()}
		} else {
			delete(live, e.Key())
		}
	}
	out := make([]Entry, 0, len(live))
	for _, e := range live {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

// Create stores a new object; ErrAlreadyExists if the name is taken. A
// deleted name can be created again.
func (s *KV) Create(ctx context.Context, kind Kind, namespace, name string, value []byte) (uint64, error) {
	fail := opError("create", kind, namespace, name)
	b, key, err := s.open(ctx, kind, namespace, name)
	if err != nil {
		return 0, fail(err)
	}
	// jetstream's Create also succeeds over a delete marker.
	rev, err := b.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fail(ErrAlreadyExists)
	}
	if err != nil {
		return 0, fail(err)
	}
	return rev, nil
}

// Update replaces the object only if its revision is still expected;
// ErrConflict if not, ErrNotFound if it is gone. It reads the key first
// so that a deleted object is never brought back by an update naming the
// revision of its deletion.
func (s *KV) Update(ctx context.Context, kind Kind, namespace, name string, value []byte, expected uint64) (uint64, error) {
	fail := opError("update", kind, namespace, name)
	b, key, err := s.open(ctx, kind, namespace, name)
	if err != nil {
		return 0, fail(err)
	}
	cur, err := get(ctx, b, key)
	if err != nil {
		return 0, fail(err)
	}
	if cur.Revision() != expected {
		return 0, fail(conflict(expected, cur.Revision()))
	}
	rev, err := b.Update(ctx, key, value, expected)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// Changed between the read and the write: say how.
		cur, err := get(ctx, b, key)
		if err != nil {
			return 0, fail(err)
		}
		return 0, fail(conflict(expected, cur.Revision()))
	}
	if err != nil {
		return 0, fail(err)
	}
	return rev, nil
}

// UpdateStatus is Update: a KV bucket keeps an object whole, status
// included.
func (s *KV) UpdateStatus(ctx context.Context, kind Kind, namespace, name string, value []byte, expected uint64) (uint64, error) {
	return s.Update(ctx, kind, namespace, name, value, expected)
}

// Delete removes the object and its kept revisions, leaving a delete
// marker that watches report as a Delete event. expected 0 deletes whatever is stored; otherwise
// ErrConflict if the revision moved. ErrNotFound if absent.
func (s *KV) Delete(ctx context.Context, kind Kind, namespace, name string, expected uint64) error {
	fail := opError("delete", kind, namespace, name)
	b, key, err := s.open(ctx, kind, namespace, name)
	if err != nil {
		return fail(err)
	}
	for {
		cur, err := get(ctx, b, key)
		if err != nil {
			return fail(err)
		}
		if expected != 0 && cur.Revision() != expected {
			return fail(conflict(expected, cur.Revision()))
		}
		// Delete exactly the revision just read: an unconditional delete
		// must still not race a concurrent delete into a double marker.
		err = b.Purge(ctx, key, jetstream.LastRevision(cur.Revision()))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			if err := ctx.Err(); err != nil {
				return fail(err)
			}
			continue // changed meanwhile: read again and decide again
		}
		if err != nil {
			return fail(err)
		}
		return nil
	}
}

// Watch streams the objects of a namespace ("" = all): every existing
// object as Put, one Synced, then changes in store order. Sends block
// until received, so a slow reader delays the watch; this package drops
// nothing, within the limit that BucketHistory describes.
// The channel is closed when ctx is done or the NATS connection closes.
func (s *KV) Watch(ctx context.Context, kind Kind, namespace string) (<-chan Event, error) {
	fail := func(err error) error { return fmt.Errorf("store: watch %s/%s: %w", kind, nsOrAll(namespace), err) }
	w, err := s.watchKeys(ctx, kind, namespace)
	if err != nil {
		return nil, fail(err)
	}
	out := make(chan Event)
	go func() {
		defer close(out)
		defer stopWatcher(w)
		// Until Synced, a delete marker is only news for a key already
		// sent as Put; otherwise it is an object that no longer exists.
		sent := make(map[string]struct{})
		synced := false
		for {
			var e jetstream.KeyValueEntry
			select {
			case <-ctx.Done():
				return
			case ent, ok := <-w.Updates():
				if !ok {
					return
				}
				e = ent
			}
			var ev Event
			switch {
			case e == nil:
				synced, sent = true, nil
				ev = Event{Type: Synced}
			default:
				ns, name, ok := splitKey(e.Key())
				if !ok {
					continue
				}
				entry := Entry{Namespace: ns, Name: name, Revision: e.Revision()}
				if e.Operation() == jetstream.KeyValuePut {
					entry.Value = e.Value()
					ev = Event{Type: Put, Entry: entry}
					if !synced {
						sent[e.Key()] = struct{}{}
					}
				} else {
					if !synced {
						if _, ok := sent[e.Key()]; !ok {
							continue
						}
						delete(sent, e.Key())
					}
					ev = Event{Type: Delete, Entry: entry}
				}
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// open validates the names and returns the bucket and key.
func (s *KV) open(ctx context.Context, kind Kind, namespace, name string) (jetstream.KeyValue, string, error) {
	if err := CheckLabel("namespace", namespace); err != nil {
		return nil, "", err
	}
	if err := CheckLabel("name", name); err != nil {
		return nil, "", err
	}
	b, err := s.bucket(ctx, kind)
	if err != nil {
		return nil, "", err
	}
	return b, namespace + "." + name, nil
}

// get reads the live value of key, mapping absent and deleted to
// ErrNotFound.
func get(ctx context.Context, b jetstream.KeyValue, key string) (jetstream.KeyValueEntry, error) {
	e, err := b.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, ErrNotFound
	}
	return e, err
}

// stopWatcher stops w and drains it until jetstream closes its channel:
// jetstream's delivery callback blocks on a full channel, and only
// returns (and lets the subscription finish) once somebody reads.
func stopWatcher(w jetstream.KeyWatcher) {
	_ = w.Stop()
	for range w.Updates() {
	}
}

func conflict(expected, current uint64) error {
	return fmt.Errorf("%w (expected revision %d, stored %d)", ErrConflict, expected, current)
}

func opError(op string, kind Kind, namespace, name string) func(error) error {
	return func(err error) error {
		return fmt.Errorf("store: %s %s/%s/%s: %w", op, kind, namespace, name, err)
	}
}

func nsOrAll(namespace string) string { return cmp.Or(namespace, "*") }

// keyFilter returns the key pattern of one namespace, or of all.
func keyFilter(namespace string) (string, error) {
	if namespace == "" {
		return "*.*", nil
	}
	if err := CheckLabel("namespace", namespace); err != nil {
		return "", err
	}
	return namespace + ".*", nil
}

// splitKey splits "<namespace>.<name>"; ok is false for any other key.
func splitKey(key string) (namespace, name string, ok bool) {
	namespace, name, ok = strings.Cut(key, ".")
	return namespace, name, ok && isLabel(namespace) && isLabel(name)
}

// CheckLabel rejects what is not an RFC 1123 DNS label, as every Store
// does with namespaces and names (ErrInvalid). Besides being the
// documented shape of names, it keeps '.', '*' and '>' out of KV keys.
func CheckLabel(what, s string) error {
	if !isLabel(s) {
		return fmt.Errorf("%s %q: %w: must be a DNS label (1-63 lowercase letters, digits and '-', starting and ending with a letter or digit)", what, s, ErrInvalid)
	}
	return nil
}

func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}

// watchKeys opens a watch of one namespace's keys ("" = all) of a kind.
func (s *KV) watchKeys(ctx context.Context, kind Kind, namespace string) (jetstream.KeyWatcher, error) {
	filter, err := keyFilter(namespace)
	if err != nil {
		return nil, err
	}
	b, err := s.bucket(ctx, kind)
	if err != nil {
		return nil, err
	}
	return b.Watch(ctx, filter)
}
