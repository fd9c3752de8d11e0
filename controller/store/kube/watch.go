package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/wisp-faas/wisp/controller/store"
)

// Backoff between attempts to watch or list again after a failure.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// Watch streams the objects of a namespace ("" = all): every existing
// object as Put in resourceVersion order, one Synced, then changes as
// they happen. It survives broken watches, apiserver restarts and expired
// resourceVersions (see the package doc); the channel is closed only when
// ctx is done. The first list is made before Watch returns, so that a
// missing CRD or an RBAC refusal is Watch's error.
func (s *Store) Watch(ctx context.Context, kind store.Kind, namespace string) (<-chan store.Event, error) {
	r, ri, err := s.resource(kind, namespace)
	if err != nil {
		return nil, fmt.Errorf("store: watch %s/%s: %w", kind, nsOrAll(namespace), err)
	}
	items, rv, err := s.list(ctx, kind, namespace)
	if err != nil {
		return nil, err
	}
	w := &watcher{s: s, kind: kind, res: r, ri: ri, namespace: namespace, known: make(map[string]uint64, len(items))}
	in := make(chan store.Event)
	out := make(chan store.Event)
	go pump(ctx, in, out)
	go func() {
		defer close(in)
		slices.SortFunc(items, func(a, b store.Entry) int { return cmp.Compare(a.Revision, b.Revision) })
		for _, e := range items {
			if !w.send(ctx, in, store.Event{Type: store.Put, Entry: e}) {
				return
			}
		}
		if !w.send(ctx, in, store.Event{Type: store.Synced}) {
			return
		}
		w.follow(ctx, in, rv)
	}()
	return out, nil
}

// pump forwards events from in to out through an unbounded queue, so
// that the apiserver's watch is read as fast as it sends, and closes out
// when in is closed and drained or ctx is done.
func pump(ctx context.Context, in <-chan store.Event, out chan<- store.Event) {
	defer close(out)
	var queue []store.Event
	for {
		var send chan<- store.Event
		var next store.Event
		if len(queue) > 0 {
			send, next = out, queue[0]
		} else if in == nil {
			return
		}
		select {
		case ev, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			queue = append(queue, ev)
		case send <- next:
			queue[0] = store.Event{}
			queue = queue[1:]
		case <-ctx.Done():
			return
		}
	}
}

// watcher follows one kind in one namespace and knows what it has sent.
type watcher struct {
	s         *Store
	kind      store.Kind
	res       Resource
	ri        dynamic.ResourceInterface
	namespace string
	// known holds the revision of every object sent as Put and not
	// since deleted, by namespace/name.
	known map[string]uint64
}

func (w *watcher) send(ctx context.Context, in chan<- store.Event, ev store.Event) bool {
	key := ev.Entry.Namespace + "/" + ev.Entry.Name
	switch ev.Type {
	case store.Put:
		w.known[key] = ev.Entry.Revision
	case store.Delete:
		delete(w.known, key)
	}
	select {
	case in <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// follow watches from rv until ctx ends, resuming after every break and
// listing again when rv has expired.
func (w *watcher) follow(ctx context.Context, in chan<- store.Event, rv string) {
	backoff := minBackoff
	needList := false
	for ctx.Err() == nil {
		var err error
		if needList {
			var listed string
			if listed, err = w.relist(ctx, in); err == nil {
				rv, needList, backoff = listed, false, minBackoff
				continue
			}
		} else {
			err = w.watchOnce(ctx, in, &rv, &backoff)
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				needList = true
				continue
			}
			if err == nil {
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		w.s.log.Warn("watch broken; retrying", "kind", w.kind, "namespace", nsOrAll(w.namespace),
			"resourceVersion", rv, "in", backoff, "error", w.s.fail("watch", w.res.Resource, w.namespace, "", err))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// errEndedAtOnce is a watch that the apiserver closed before it sent
// anything: it is shutting down, or restarting.
var errEndedAtOnce = errors.New("the apiserver ended the watch at once")

// watchOnce runs one apiserver watch from *rv to its end. It returns nil
// when the watch ran and ended normally, a 410 Gone error when *rv has
// expired, and any other failure as it came.
func (w *watcher) watchOnce(ctx context.Context, in chan<- store.Event, rv *string, backoff *time.Duration) error {
	// Ask the apiserver to end the watch after a while, as client-go's
	// reflector does, so that load spreads over apiservers.
	timeout := int64(300 + rand.IntN(300))
	started := time.Now()
	wi, err := w.ri.Watch(ctx, metav1.ListOptions{ResourceVersion: *rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout})
	if err != nil {
		return err
	}
	var progressed bool
	*rv, progressed, err = w.consume(ctx, in, wi, *rv)
	if progressed || time.Since(started) > time.Second {
		*backoff = minBackoff
	} else if err == nil && ctx.Err() == nil {
		err = errEndedAtOnce
	}
	return err
}

// consume sends the events of one apiserver watch until it ends. It
// returns the last resourceVersion seen and whether any event came; the
// error is the watch's own (410 Gone when rv expired).
func (w *watcher) consume(ctx context.Context, in chan<- store.Event, wi watch.Interface, rv string) (string, bool, error) {
	defer wi.Stop()
	progressed := false
	for {
		var ev watch.Event
		var ok bool
		select {
		case ev, ok = <-wi.ResultChan():
		case <-ctx.Done():
			return rv, progressed, nil
		}
		if !ok {
			return rv, progressed, nil
		}
		progressed = true
		switch ev.Type {
		case watch.Error:
			return rv, progressed, apierrors.FromObject(ev.Object)
		case watch.Bookmark:
			if u, ok := ev.Object.(*unstructured.Unstructured); ok {
				rv = u.GetResourceVersion()
			}
			continue
		}
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return rv, progressed, fmt.Errorf("watch sent a %T, not an object", ev.Object)
		}
		e, err := w.s.entry(u, w.kind)
		if err != nil {
			return rv, progressed, err
		}
		rv = strconv.FormatUint(e.Revision, 10)
		out := store.Event{Type: store.Put, Entry: e}
		if ev.Type == watch.Deleted {
			out = store.Event{Type: store.Delete, Entry: store.Entry{Namespace: e.Namespace, Name: e.Name, Revision: e.Revision}}
		}
		if !w.send(ctx, in, out) {
			return rv, progressed, nil
		}
	}
}

// relist lists again and sends the difference with what was sent: a Put
// for every object whose revision changed, a Delete (at the list's
// revision) for every object that is gone. It returns the list's
// resourceVersion.
func (w *watcher) relist(ctx context.Context, in chan<- store.Event) (string, error) {
	items, rv, err := w.s.list(ctx, w.kind, w.namespace)
	if err != nil {
		return "", err
	}
	listRev, _ := strconv.ParseUint(rv, 10, 64)
	w.s.log.Info("watch resumed from a new list", "kind", w.kind, "namespace", nsOrAll(w.namespace), "resourceVersion", rv)
	slices.SortFunc(items, func(a, b store.Entry) int { return cmp.Compare(a.Revision, b.Revision) })
	listed := make(map[string]bool, len(items))
	for _, e := range items {
		key := e.Namespace + "/" + e.Name
		listed[key] = true
		if w.known[key] == e.Revision {
			continue
		}
		if !w.send(ctx, in, store.Event{Type: store.Put, Entry: e}) {
			return rv, nil
		}
	}
	var gone []string
	for key := range w.known {
		if !listed[key] {
			gone = append(gone, key)
		}
	}
	slices.Sort(gone)
	for _, key := range gone {
		ns, name, _ := strings.Cut(key, "/")
		if !w.send(ctx, in, store.Event{Type: store.Delete, Entry: store.Entry{Namespace: ns, Name: name, Revision: listRev}}) {
			return rv, nil
		}
	}
	return rv, nil
}
