package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"knative.dev/pkg/apis"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
)

// triggerAPI serves the Trigger resources.
type triggerAPI struct {
	s        *Server
	triggers *store.Typed[api.Trigger, *api.Trigger]
}

// registerTriggers serves Triggers under Prefix/namespaces/{namespace}/triggers.
func (s *Server) registerTriggers(m *http.ServeMux) {
	h := &triggerAPI{s: s, triggers: store.NewTyped[api.Trigger](s.opts.Store, store.Triggers)}
	p := Prefix + "/namespaces/{namespace}/triggers"
	m.Handle("GET "+Prefix+"/triggers", s.auth(h.list))
	m.Handle("GET "+p, s.auth(h.list))
	m.Handle("POST "+p, s.auth(h.create))
	m.Handle("GET "+p+"/{name}", s.auth(h.get))
	m.Handle("PUT "+p+"/{name}", s.auth(h.update))
	m.Handle("DELETE "+p+"/{name}", s.auth(h.delete))
}

func (h *triggerAPI) list(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("namespace")
	if r.URL.Query().Get("watch") == "true" {
		watch(w, r, h.triggers, ns, nil)
		return
	}
	items, err := h.triggers.List(r.Context(), ns)
	if err != nil {
		h.s.storeError(w, err, api.KindTrigger, "")
		return
	}
	list := api.TriggerList{TypeMeta: metav1.TypeMeta{APIVersion: api.APIVersion, Kind: "TriggerList"}, Items: make([]api.Trigger, 0, len(items))}
	for _, t := range items {
		list.Items = append(list.Items, *t)
	}
	writeJSON(w, http.StatusOK, list)
}

func (h *triggerAPI) get(w http.ResponseWriter, r *http.Request) {
	t, err := h.triggers.Get(r.Context(), r.PathValue("namespace"), r.PathValue("name"))
	if err != nil {
		h.s.storeError(w, err, api.KindTrigger, r.PathValue("name"))
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (h *triggerAPI) create(w http.ResponseWriter, r *http.Request) {
	t, ok := h.decode(w, r)
	if !ok {
		return
	}
	t.UID = uuid.NewUUID()
	t.CreationTimestamp = metav1.NewTime(time.Now().UTC().Truncate(time.Second))
	t.Generation = 1
	t.ResourceVersion = ""
	t.Status = api.TriggerStatus{}
	created, err := h.triggers.Create(r.Context(), t)
	if err != nil {
		h.s.storeError(w, err, api.KindTrigger, t.Name)
		return
	}
	h.s.opts.Log.Info("trigger created", "namespace", t.Namespace, "name", t.Name)
	writeJSON(w, http.StatusCreated, created)
}

func (h *triggerAPI) update(w http.ResponseWriter, r *http.Request) {
	t, ok := h.decode(w, r)
	if !ok {
		return
	}
	if t.Name != r.PathValue("name") {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("metadata.name %q does not match the name in the URL %q", t.Name, r.PathValue("name")), []string{"metadata.name"})
		return
	}
	cur, err := h.triggers.Get(r.Context(), t.Namespace, t.Name)
	if err != nil {
		h.s.storeError(w, err, api.KindTrigger, t.Name)
		return
	}
	if t.ResourceVersion == "" {
		t.ResourceVersion = cur.ResourceVersion
	} else if t.ResourceVersion != cur.ResourceVersion {
		h.s.storeError(w, store.ErrConflict, api.KindTrigger, t.Name)
		return
	}
	if fe := t.ValidateUpdate(cur); fe != nil {
		writeInvalid(w, api.KindTrigger, t.Name, fe)
		return
	}
	// The node owns the status; a client's copy of it is ignored.
	t.UID, t.CreationTimestamp, t.Status, t.Generation = cur.UID, cur.CreationTimestamp, cur.Status, cur.Generation
	if !reflect.DeepEqual(t.Spec, cur.Spec) {
		t.Generation++
	}
	updated, err := h.triggers.Update(r.Context(), t)
	if err != nil {
		h.s.storeError(w, err, api.KindTrigger, t.Name)
		return
	}
	h.s.opts.Log.Info("trigger updated", "namespace", t.Namespace, "name", t.Name, "generation", t.Generation)
	writeJSON(w, http.StatusOK, updated)
}

func (h *triggerAPI) delete(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if err := h.triggers.Delete(r.Context(), ns, name, r.URL.Query().Get("resourceVersion")); err != nil {
		h.s.storeError(w, err, api.KindTrigger, name)
		return
	}
	h.s.opts.Log.Info("trigger deleted", "namespace", ns, "name", name)
	writeStatus(w, http.StatusOK, "", fmt.Sprintf("trigger %s/%s deleted", ns, name), nil)
}

// decode reads one Trigger from the body, defaults and validates it. On
// failure it has answered.
func (h *triggerAPI) decode(w http.ResponseWriter, r *http.Request) (*api.Trigger, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeStatus(w, http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge,
			fmt.Sprintf("reading the request body: %v (at most %d bytes)", err, maxBody), nil)
		return nil, false
	}
	objs, err := api.Decode(body)
	if err == nil && len(objs) != 1 {
		err = fmt.Errorf("the body holds %d documents; send exactly one Trigger", len(objs))
	}
	if err != nil {
		var fe *apis.FieldError
		if errors.As(err, &fe) {
			writeInvalid(w, api.KindTrigger, "", fe)
		} else {
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error(), nil)
		}
		return nil, false
	}
	t, ok := objs[0].(*api.Trigger)
	if !ok {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("the body holds a %s; send a Trigger", objs[0].GroupVersionKind().Kind), nil)
		return nil, false
	}
	ns := r.PathValue("namespace")
	if t.Namespace == "" {
		t.Namespace = ns
	}
	if t.Namespace != ns {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("metadata.namespace %q does not match the namespace in the URL %q", t.Namespace, ns), []string{"metadata.namespace"})
		return nil, false
	}
	t.SetDefaults()
	if fe := t.Validate(); fe != nil {
		writeInvalid(w, api.KindTrigger, t.Name, fe)
		return nil, false
	}
	return t, true
}
