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

// filterAPI serves Filters: list (and ?watch=true), get, create, update
// and delete, as Functions are served. It stores what it is given and
// never pulls a module: the gateway loads filters and writes their status.
type filterAPI struct {
	s       *Server
	filters *store.Typed[api.Filter, *api.Filter]
}

// registerFilters adds the Filter routes to m.
func (s *Server) registerFilters(m *http.ServeMux) {
	h := &filterAPI{s: s, filters: store.NewTyped[api.Filter](s.opts.Store, store.Filters)}
	p := Prefix + "/namespaces/{namespace}/filters"
	m.Handle("GET "+Prefix+"/filters", s.auth(h.list))
	m.Handle("GET "+p, s.auth(h.list))
	m.Handle("POST "+p, s.auth(h.create))
	m.Handle("GET "+p+"/{name}", s.auth(h.get))
	m.Handle("PUT "+p+"/{name}", s.auth(h.update))
	m.Handle("DELETE "+p+"/{name}", s.auth(h.delete))
}

func (h *filterAPI) list(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("namespace")
	if r.URL.Query().Get("watch") == "true" {
		watch(w, r, h.filters, ns, nil)
		return
	}
	items, err := h.filters.List(r.Context(), ns)
	if err != nil {
		h.s.storeError(w, err, api.KindFilter, "")
		return
	}
	list := api.FilterList{TypeMeta: metav1.TypeMeta{APIVersion: api.APIVersion, Kind: "FilterList"}, Items: make([]api.Filter, 0, len(items))}
	for _, f := range items {
		list.Items = append(list.Items, *f)
	}
	writeJSON(w, http.StatusOK, list)
}

func (h *filterAPI) get(w http.ResponseWriter, r *http.Request) {
	f, err := h.filters.Get(r.Context(), r.PathValue("namespace"), r.PathValue("name"))
	if err != nil {
		h.s.storeError(w, err, api.KindFilter, r.PathValue("name"))
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// create stores a new Filter with its Ready condition Unknown (Pending)
// until a gateway loads it.
func (h *filterAPI) create(w http.ResponseWriter, r *http.Request) {
	f, ok := h.decode(w, r)
	if !ok {
		return
	}
	f.UID = uuid.NewUUID()
	f.CreationTimestamp = metav1.NewTime(time.Now().UTC().Truncate(time.Second))
	f.Generation = 1
	f.ResourceVersion = ""
	f.Status = api.FilterStatus{}
	f.Status.MarkUnknown(api.ReasonFilterPending, "no gateway has loaded the filter yet")
	created, err := h.filters.Create(r.Context(), f)
	if err != nil {
		h.s.storeError(w, err, api.KindFilter, f.Name)
		return
	}
	h.s.opts.Log.Info("filter created", "namespace", f.Namespace, "name", f.Name, "source", f.Spec.Source)
	writeJSON(w, http.StatusCreated, created)
}

// update replaces a Filter's spec and metadata, keeping its status; a
// resourceVersion in the body must match the stored one.
func (h *filterAPI) update(w http.ResponseWriter, r *http.Request) {
	f, ok := h.decode(w, r)
	if !ok {
		return
	}
	if f.Name != r.PathValue("name") {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("metadata.name %q does not match the name in the URL %q", f.Name, r.PathValue("name")), []string{"metadata.name"})
		return
	}
	cur, err := h.filters.Get(r.Context(), f.Namespace, f.Name)
	if err != nil {
		h.s.storeError(w, err, api.KindFilter, f.Name)
		return
	}
	if f.ResourceVersion == "" {
		// No precondition: last write wins, like kubectl replace without one.
		f.ResourceVersion = cur.ResourceVersion
	} else if f.ResourceVersion != cur.ResourceVersion {
		h.s.storeError(w, store.ErrConflict, api.KindFilter, f.Name)
		return
	}
	if fe := f.ValidateUpdate(cur); fe != nil {
		writeInvalid(w, api.KindFilter, f.Name, fe)
		return
	}
	f.UID, f.CreationTimestamp, f.Status = cur.UID, cur.CreationTimestamp, cur.Status
	f.Generation = cur.Generation
	if !reflect.DeepEqual(f.Spec, cur.Spec) {
		f.Generation++
	}
	updated, err := h.filters.Update(r.Context(), f)
	if err != nil {
		h.s.storeError(w, err, api.KindFilter, f.Name)
		return
	}
	h.s.opts.Log.Info("filter updated", "namespace", f.Namespace, "name", f.Name, "generation", f.Generation)
	writeJSON(w, http.StatusOK, updated)
}

func (h *filterAPI) delete(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if err := h.filters.Delete(r.Context(), ns, name, r.URL.Query().Get("resourceVersion")); err != nil {
		h.s.storeError(w, err, api.KindFilter, name)
		return
	}
	h.s.opts.Log.Info("filter deleted", "namespace", ns, "name", name)
	writeStatus(w, http.StatusOK, "", fmt.Sprintf("filter %s/%s deleted", ns, name), nil)
}

// decode reads one Filter from the body, defaults and validates it, and
// checks that an uploaded module it names is on this node. On failure it
// has answered.
func (h *filterAPI) decode(w http.ResponseWriter, r *http.Request) (*api.Filter, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeStatus(w, http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge,
			fmt.Sprintf("reading the request body: %v (at most %d bytes)", err, maxBody), nil)
		return nil, false
	}
	f, err := decodeOneFilter(body)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error(), nil)
		return nil, false
	}
	ns := r.PathValue("namespace")
	if f.Namespace == "" {
		f.Namespace = ns
	}
	if f.Namespace != ns {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("metadata.namespace %q does not match the namespace in the URL %q", f.Namespace, ns), []string{"metadata.namespace"})
		return nil, false
	}
	f.SetDefaults()
	if fe := f.Validate(); fe != nil {
		writeInvalid(w, api.KindFilter, f.Name, fe)
		return nil, false
	}
	if src := f.Spec.Source; strings.HasPrefix(src, "sha256:") && h.s.opts.Modules != nil && !h.s.opts.Modules.Has(src) {
		writeInvalid(w, api.KindFilter, f.Name, &apis.FieldError{
			Message: fmt.Sprintf("module %s is not on this node", src),
			Paths:   []string{"spec.source"},
			Details: "upload it first (POST " + Prefix + "/modules, or wisp filter create --source FILE)",
		})
		return nil, false
	}
	return f, true
}

// decodeOneFilter decodes a body holding exactly one Filter.
func decodeOneFilter(body []byte) (*api.Filter, error) {
	objs, err := api.Decode(body)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("the body holds %d documents; send exactly one Filter", len(objs))
	}
	f, ok := objs[0].(*api.Filter)
	if !ok {
		return nil, errors.New("the body holds a " + objs[0].GroupVersionKind().Kind + "; send a Filter")
	}
	return f, nil
}
