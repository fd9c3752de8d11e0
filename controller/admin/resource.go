package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"knative.dev/pkg/apis"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
)

// object is what the admin API needs of a kind it serves: Kubernetes
// metadata, defaults and validation on create and on update.
type object[T any] interface {
	store.Object[T]
	SetDefaults()
	Validate() *apis.FieldError
	ValidateUpdate(old *T) *apis.FieldError
}

// resource serves one kind under Prefix/namespaces/{namespace}/<plural>
// (and Prefix/<plural> for every namespace) with the same semantics for
// every kind: list (?watch=true streams), get, create, replace (a
// resourceVersion in the body must match; the status is the node's and
// is kept), delete. Every answer is the object or a Kubernetes Status.
type resource[T any, PT object[T]] struct {
	s    *Server
	kind string
	objs *store.Typed[T, PT]
	// list wraps stored objects in the kind's List document.
	list func([]PT) any
	// status returns a pointer to an object's status, which a client
	// never sets: create clears it, replace keeps the stored one.
	status func(PT) any
	// spec returns what bumps metadata.generation when it changes.
	spec func(PT) any
	// created, when set, fills the status of a new object.
	created func(PT)
	// admit, when set, checks what validation cannot see alone (the
	// store, the node); it answers and returns false to refuse.
	admit func(w http.ResponseWriter, r *http.Request, obj PT) bool
}

func (h *resource[T, PT]) register(m *http.ServeMux, plural string) {
	p := Prefix + "/namespaces/{namespace}/" + plural
	m.Handle("GET "+Prefix+"/"+plural, h.s.auth(h.listHandler))
	m.Handle("GET "+p, h.s.auth(h.listHandler))
	m.Handle("POST "+p, h.s.auth(h.create))
	m.Handle("GET "+p+"/{name}", h.s.auth(h.get))
	m.Handle("PUT "+p+"/{name}", h.s.auth(h.update))
	m.Handle("DELETE "+p+"/{name}", h.s.auth(h.delete))
}

func (h *resource[T, PT]) listHandler(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("namespace")
	if r.URL.Query().Get("watch") == "true" {
		watch(w, r, h.objs, ns, nil)
		return
	}
	items, err := h.objs.List(r.Context(), ns)
	if err != nil {
		h.s.storeError(w, err, h.kind, "")
		return
	}
	writeJSON(w, http.StatusOK, h.list(items))
}

func (h *resource[T, PT]) get(w http.ResponseWriter, r *http.Request) {
	obj, err := h.objs.Get(r.Context(), r.PathValue("namespace"), r.PathValue("name"))
	if err != nil {
		h.s.storeError(w, err, h.kind, r.PathValue("name"))
		return
	}
	writeJSON(w, http.StatusOK, obj)
}

func (h *resource[T, PT]) create(w http.ResponseWriter, r *http.Request) {
	obj, ok := h.decode(w, r)
	if !ok {
		return
	}
	obj.SetUID(uuid.NewUUID())
	obj.SetCreationTimestamp(metav1.NewTime(time.Now().UTC().Truncate(time.Second)))
	obj.SetGeneration(1)
	obj.SetResourceVersion("")
	st := reflect.ValueOf(h.status(obj)).Elem()
	st.Set(reflect.Zero(st.Type()))
	if h.created != nil {
		h.created(obj)
	}
	created, err := h.objs.Create(r.Context(), obj)
	if err != nil {
		h.s.storeError(w, err, h.kind, obj.GetName())
		return
	}
	h.s.opts.Log.Info(strings.ToLower(h.kind)+" created", "namespace", obj.GetNamespace(), "name", obj.GetName())
	writeJSON(w, http.StatusCreated, created)
}

func (h *resource[T, PT]) update(w http.ResponseWriter, r *http.Request) {
	obj, ok := h.decode(w, r)
	if !ok {
		return
	}
	if obj.GetName() != r.PathValue("name") {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("metadata.name %q does not match the name in the URL %q", obj.GetName(), r.PathValue("name")), []string{"metadata.name"})
		return
	}
	cur, err := h.objs.Get(r.Context(), obj.GetNamespace(), obj.GetName())
	if err != nil {
		h.s.storeError(w, err, h.kind, obj.GetName())
		return
	}
	switch rv := obj.GetResourceVersion(); {
	case rv == "":
		// No precondition: last write wins, like kubectl replace without one.
		obj.SetResourceVersion(cur.GetResourceVersion())
	case rv != cur.GetResourceVersion():
		h.s.storeError(w, store.ErrConflict, h.kind, obj.GetName())
		return
	}
	if fe := obj.ValidateUpdate((*T)(cur)); fe != nil {
		writeInvalid(w, h.kind, obj.GetName(), fe)
		return
	}
	obj.SetUID(cur.GetUID())
	obj.SetCreationTimestamp(cur.GetCreationTimestamp())
	reflect.ValueOf(h.status(obj)).Elem().Set(reflect.ValueOf(h.status(cur)).Elem())
	obj.SetGeneration(cur.GetGeneration())
	if !reflect.DeepEqual(h.spec(obj), h.spec(cur)) {
		obj.SetGeneration(cur.GetGeneration() + 1)
	}
	updated, err := h.objs.Update(r.Context(), obj)
	if err != nil {
		h.s.storeError(w, err, h.kind, obj.GetName())
		return
	}
	h.s.opts.Log.Info(strings.ToLower(h.kind)+" updated", "namespace", obj.GetNamespace(), "name", obj.GetName(), "generation", obj.GetGeneration())
	writeJSON(w, http.StatusOK, updated)
}

func (h *resource[T, PT]) delete(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if err := h.objs.Delete(r.Context(), ns, name, r.URL.Query().Get("resourceVersion")); err != nil {
		h.s.storeError(w, err, h.kind, name)
		return
	}
	h.s.opts.Log.Info(strings.ToLower(h.kind)+" deleted", "namespace", ns, "name", name)
	writeStatus(w, http.StatusOK, "", fmt.Sprintf("%s %s/%s deleted", strings.ToLower(h.kind), ns, name), nil)
}

// decode reads exactly one object of the kind from the body, defaults
// and validates it. On failure it has answered.
func (h *resource[T, PT]) decode(w http.ResponseWriter, r *http.Request) (PT, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeStatus(w, http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge,
			fmt.Sprintf("reading the request body: %v (at most %d bytes)", err, maxBody), nil)
		return nil, false
	}
	obj, err := decodeOne[T, PT](body, h.kind)
	if err != nil {
		var fe *apis.FieldError
		if errors.As(err, &fe) {
			writeInvalid(w, h.kind, "", fe)
		} else {
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error(), nil)
		}
		return nil, false
	}
	ns := r.PathValue("namespace")
	if obj.GetNamespace() == "" {
		obj.SetNamespace(ns)
	}
	if obj.GetNamespace() != ns {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("metadata.namespace %q does not match the namespace in the URL %q", obj.GetNamespace(), ns), []string{"metadata.namespace"})
		return nil, false
	}
	obj.SetDefaults()
	if fe := obj.Validate(); fe != nil {
		writeInvalid(w, h.kind, obj.GetName(), fe)
		return nil, false
	}
	if h.admit != nil && !h.admit(w, r, obj) {
		return nil, false
	}
	return obj, true
}

// decodeOne decodes a body holding exactly one object of kind (for a
// Function, a Knative Service converts to one).
func decodeOne[T any, PT object[T]](body []byte, kind string) (PT, error) {
	objs, err := api.Decode(body)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("the body holds %d documents; send exactly one %s", len(objs), kind)
	}
	obj, ok := any(objs[0]).(PT)
	if !ok {
		return nil, fmt.Errorf("the body holds a %s; send a %s", objs[0].GroupVersionKind().Kind, kind)
	}
	return obj, nil
}
