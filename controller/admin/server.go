package admin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/autoscaler"
	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/functions/modules"
	"github.com/wisp-faas/wisp/internal/logs"
)

// Prefix is the path under which the admin API serves wisp's resources.
const Prefix = "/apis/" + api.APIVersion

// maxBody bounds the size of a resource document sent to the API.
const maxBody = 4 << 20

// Info describes the node; GET Prefix+"/info" returns it so that clients
// can reach the gateway.
type Info struct {
	Version    string `json:"version"`
	GatewayURL string `json:"gatewayURL"`
	AdminURL   string `json:"adminURL"`
	Domain     string `json:"domain"`
}

// Options configure a Server.
type Options struct {
	Store  store.Store
	Token  string
	Info   Info
	Log    *slog.Logger
	Gather prometheus.Gatherer
	// Ready reports whether the node is ready to serve; nil means always.
	Ready func() error
	// Modules keeps uploaded WebAssembly modules.
	Modules *modules.Store
	// Logs holds the recent output of functions.
	Logs *logs.Book
	// Autoscaler, when set, checks a template's autoscaling annotations
	// at deploy time, so that a bad one is a 422, not a failed revision.
	Autoscaler *autoscaler.Config
	// Profiling serves Go's pprof handlers under /debug/pprof/ (token required).
	Profiling bool
}

// Server serves the admin API.
type Server struct {
	opts      Options
	functions *store.Typed[api.Function, *api.Function]
	revisions *store.Typed[api.Revision, *api.Revision]
	mux       *http.ServeMux
}

// New returns the admin API server.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:      opts,
		functions: store.NewTyped[api.Function](opts.Store, store.Functions),
		revisions: store.NewTyped[api.Revision](opts.Store, store.Revisions),
		mux:       http.NewServeMux(),
	}
	m := s.mux
	m.Handle("POST "+Prefix+"/modules", s.auth(s.uploadModule))
	if opts.Profiling {
		m.Handle("GET /debug/pprof/", s.auth(pprof.Index))
		m.Handle("GET /debug/pprof/profile", s.auth(pprof.Profile))
		m.Handle("GET /debug/pprof/trace", s.auth(pprof.Trace))
	}
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	m.HandleFunc("GET /readyz", s.readyz)
	if opts.Gather != nil {
		m.Handle("GET /metrics", promhttp.HandlerFor(opts.Gather, promhttp.HandlerOpts{}))
	}
	m.Handle("GET "+Prefix+"/info", s.auth(s.info))

	fn := Prefix + "/namespaces/{namespace}/functions"
	(&resource[api.Function, *api.Function]{
		s: s, kind: api.KindFunction, objs: s.functions, admit: s.admitFunction,
		list: func(items []*api.Function) any {
			l := api.FunctionList{TypeMeta: metav1.TypeMeta{APIVersion: api.APIVersion, Kind: "FunctionList"}, Items: make([]api.Function, 0, len(items))}
			for _, f := range items {
				l.Items = append(l.Items, *f)
			}
			return l
		},
		status: func(f *api.Function) any { return &f.Status },
		spec:   func(f *api.Function) any { return f.Spec },
	}).register(m, "functions")
	m.Handle("GET "+fn+"/{name}/logs", s.auth(s.functionLogs))

	rev := Prefix + "/namespaces/{namespace}/revisions"
	m.Handle("GET "+Prefix+"/revisions", s.auth(s.listRevisions))
	m.Handle("GET "+rev, s.auth(s.listRevisions))
	m.Handle("GET "+rev+"/{name}", s.auth(s.getRevision))
	m.Handle("DELETE "+rev+"/{name}", s.auth(s.deleteRevision))
	m.Handle("POST "+rev, s.auth(revisionsAreImmutable))
	m.Handle("PUT "+rev+"/{name}", s.auth(revisionsAreImmutable))

	s.registerFilters(m)
	s.registerTriggers(m)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// NewToken returns a new random bearer token.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating admin token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func (s *Server) auth(h http.HandlerFunc) http.Handler {
	want := []byte("Bearer " + s.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wisp"`)
			writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized,
				"missing or wrong bearer token: send 'Authorization: Bearer <token>' with the token from <data-dir>/token", nil)
			return
		}
		h(w, r)
	})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, err.Error(), nil)
			return
		}
	}
	_, _ = io.WriteString(w, "ok\n")
}

func (s *Server) info(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.opts.Info)
}

// ModuleRef is the answer to a module upload.
type ModuleRef struct {
	// Digest names the module in a Function's spec.template.spec.wasm.module.
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// uploadModule stores the WebAssembly module in the body and answers with
// its digest.
func (s *Server) uploadModule(w http.ResponseWriter, r *http.Request) {
	if s.opts.Modules == nil {
		writeStatus(w, http.StatusNotImplemented, metav1.StatusReasonMethodNotAllowed, "modules are not uploaded on Kubernetes, where every node must reach them: push the module to an OCI registry ('wisp plugin push FILE.wasm REGISTRY/REPO:TAG') and deploy it as oci://REGISTRY/REPO:TAG", nil)
		return
	}
	body := http.MaxBytesReader(w, r.Body, modules.MaxModuleBytes)
	cr := &countingReader{r: body}
	digest, err := s.opts.Modules.Put(cr)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "module upload: "+err.Error(), []string{"body"})
		return
	}
	s.opts.Log.Info("module stored", "digest", digest, "bytes", cr.n)
	writeJSON(w, http.StatusCreated, ModuleRef{Digest: digest, Size: cr.n})
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// --- Functions ---

// functionLogs answers with a function's recent output as JSON lines
// (?tail=N, default 100), and with follow=true keeps streaming new lines
// until the client goes away.
func (s *Server) functionLogs(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if _, err := s.functions.Get(r.Context(), ns, name); err != nil {
		s.storeError(w, err, api.KindFunction, name)
		return
	}
	if s.opts.Logs == nil {
		writeStatus(w, http.StatusNotImplemented, metav1.StatusReasonMethodNotAllowed, "function output is kept by each node that runs an instance: on Kubernetes, ask a node's admin API (--server http://NODE:8081 with the token in the node's /var/lib/wisp/token)", nil)
		return
	}
	tail := 100
	if v := r.URL.Query().Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("tail=%q: want a number of lines", v), []string{"tail"})
			return
		}
		tail = n
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	if r.URL.Query().Get("follow") != "true" {
		for _, l := range s.opts.Logs.Tail(ns, name, tail) {
			_ = enc.Encode(l)
		}
		return
	}
	lines, f := s.opts.Logs.Follow(ns, name, tail)
	defer f.Close()
	rc := http.NewResponseController(w)
	for _, l := range lines {
		_ = enc.Encode(l)
	}
	_ = rc.Flush()
	for {
		select {
		case l, ok := <-f.C:
			if !ok {
				return
			}
			if enc.Encode(l) != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// admitFunction checks what a Function's own validation cannot: that
// the revisions it names exist and that its autoscaling annotations make
// a valid autoscaler spec. On refusal it has answered.
func (s *Server) admitFunction(w http.ResponseWriter, r *http.Request, f *api.Function) bool {
	if fe, err := s.checkRevisionNames(r.Context(), f); err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error(), nil)
		return false
	} else if fe != nil {
		writeInvalid(w, api.KindFunction, f.Name, fe)
		return false
	}
	if s.opts.Autoscaler != nil {
		spec := &f.Spec.Template.Spec
		cc := int64(0)
		if spec.ContainerConcurrency != nil {
			cc = *spec.ContainerConcurrency
		}
		if spec.Wasm != nil {
			cc = 1
		}
		if _, err := autoscaler.SpecFor(*s.opts.Autoscaler, f.Spec.Template.Metadata.Annotations, cc); err != nil {
			writeStatus(w, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
				fmt.Sprintf("function %q is invalid: %v", f.Name, err), []string{"spec.template.metadata.annotations"})
			return false
		}
	}
	return true
}

// --- Revisions ---

func (s *Server) listRevisions(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("namespace")
	fn := functionFilter(r)
	if r.URL.Query().Get("watch") == "true" {
		watch(w, r, s.revisions, ns, fn)
		return
	}
	items, err := s.revisions.List(r.Context(), ns)
	if err != nil {
		s.storeError(w, err, api.KindRevision, "")
		return
	}
	list := api.RevisionList{TypeMeta: metav1.TypeMeta{APIVersion: api.APIVersion, Kind: "RevisionList"}, Items: make([]api.Revision, 0, len(items))}
	for _, rev := range items {
		if fn == nil || fn(rev) {
			list.Items = append(list.Items, *rev)
		}
	}
	writeJSON(w, http.StatusOK, list)
}

// functionFilter selects the Revisions of one Function when the request
// asks for them with ?function=NAME or ?labelSelector=wisp.dev/function=NAME.
func functionFilter(r *http.Request) func(*api.Revision) bool {
	name := r.URL.Query().Get("function")
	if sel, ok := strings.CutPrefix(r.URL.Query().Get("labelSelector"), api.LabelFunction+"="); ok {
		name = sel
	}
	if name == "" {
		return nil
	}
	return func(rev *api.Revision) bool { return rev.Labels[api.LabelFunction] == name }
}

func (s *Server) getRevision(w http.ResponseWriter, r *http.Request) {
	rev, err := s.revisions.Get(r.Context(), r.PathValue("namespace"), r.PathValue("name"))
	if err != nil {
		s.storeError(w, err, api.KindRevision, r.PathValue("name"))
		return
	}
	writeJSON(w, http.StatusOK, rev)
}

func (s *Server) deleteRevision(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	rev, err := s.revisions.Get(r.Context(), ns, name)
	if err != nil {
		s.storeError(w, err, api.KindRevision, name)
		return
	}
	fnName := rev.Labels[api.LabelFunction]
	if f, err := s.functions.Get(r.Context(), ns, fnName); err == nil {
		if f.Status.LatestCreatedRevisionName == name {
			writeStatus(w, http.StatusConflict, metav1.StatusReasonConflict,
				fmt.Sprintf("revision %s is the latest of function %s; update the function to cut a new one first", name, fnName), nil)
			return
		}
		for _, t := range append(f.Spec.Traffic, f.Status.Traffic...) {
			if t.RevisionName == name {
				writeStatus(w, http.StatusConflict, metav1.StatusReasonConflict,
					fmt.Sprintf("revision %s receives traffic of function %s; change the function's traffic first", name, fnName), []string{"spec.traffic"})
				return
			}
		}
	}
	if err := s.revisions.Delete(r.Context(), ns, name, rev.ResourceVersion); err != nil {
		s.storeError(w, err, api.KindRevision, name)
		return
	}
	writeStatus(w, http.StatusOK, "", fmt.Sprintf("revision %s/%s deleted", ns, name), nil)
}

func revisionsAreImmutable(w http.ResponseWriter, _ *http.Request) {
	writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed,
		"revisions are cut by the controller from a function's template and never change; create or update the function instead", nil)
}

// --- Watch ---

// watchEvent is one line of a ?watch=true stream, as in Kubernetes.
type watchEvent struct {
	Type   string `json:"type"`
	Object any    `json:"object"`
}

// watch streams newline-delimited watch events: ADDED for every existing
// object, then ADDED, MODIFIED and DELETED as they happen.
func watch[T any, PT interface {
	*T
	metav1.Object
}](w http.ResponseWriter, r *http.Request, t *store.Typed[T, PT], ns string, keep func(PT) bool) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	events, err := t.Watch(ctx, ns)
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error(), nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	seen := map[string]bool{}
	for ev := range events {
		if ev.Type == store.Synced || ev.Err != nil {
			continue
		}
		key := ev.Object.GetNamespace() + "/" + ev.Object.GetName()
		var typ string
		switch ev.Type {
		case store.Delete:
			typ = "DELETED"
			delete(seen, key)
		default:
			typ = "MODIFIED"
			if !seen[key] {
				typ = "ADDED"
			}
			seen[key] = true
		}
		if keep != nil && ev.Type != store.Delete && !keep(ev.Object) {
			continue
		}
		if err := enc.Encode(watchEvent{Type: typ, Object: ev.Object}); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// --- Errors and encoding ---

func (s *Server) storeError(w http.ResponseWriter, err error, kind, name string) {
	lk := strings.ToLower(kind)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("%s %q not found", lk, name), nil)
	case errors.Is(err, store.ErrAlreadyExists):
		writeStatus(w, http.StatusConflict, metav1.StatusReasonAlreadyExists,
			fmt.Sprintf("%s %q already exists; update it instead, or delete it first", lk, name), nil)
	case errors.Is(err, store.ErrConflict):
		writeStatus(w, http.StatusConflict, metav1.StatusReasonConflict,
			fmt.Sprintf("%s %q was changed since you read it (resourceVersion differs); read it again and retry", lk, name), []string{"metadata.resourceVersion"})
	default:
		s.opts.Log.Error("store request failed", "kind", kind, "name", name, "error", err)
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error(), nil)
	}
}

func writeInvalid(w http.ResponseWriter, kind, name string, fe *apis.FieldError) {
	var fields []string
	for _, e := range fe.WrappedErrors() {
		fields = append(fields, e.Paths...)
	}
	if len(fields) == 0 {
		fields = fe.Paths
	}
	msg := fmt.Sprintf("%s %q is invalid: %s", strings.ToLower(kind), name, strings.ReplaceAll(fe.Error(), "\n", ": "))
	writeStatus(w, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, msg, fields)
}

// writeStatus answers with a Kubernetes-style Status object; fields name
// the fields at fault, if any.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string, fields []string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reason,
		Code:     int32(code),
	}
	if code < 300 {
		st.Status = metav1.StatusSuccess
	}
	if len(fields) > 0 {
		st.Details = &metav1.StatusDetails{}
		for _, f := range fields {
			st.Details.Causes = append(st.Details.Causes, metav1.StatusCause{Type: metav1.CauseTypeFieldValueInvalid, Field: f})
		}
	}
	writeJSON(w, code, st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// checkRevisionNames refuses a Function whose traffic, routes or mirrors
// name a revision that does not exist (other than the one its template
// names, which this very change creates), so that a typo is a 422 naming
// the field instead of a route that cannot be programmed.
func (s *Server) checkRevisionNames(ctx context.Context, f *api.Function) (*apis.FieldError, error) {
	var refs []struct{ name, field string }
	for i, t := range f.Spec.Traffic {
		if t.RevisionName != "" {
			refs = append(refs, struct{ name, field string }{t.RevisionName, fmt.Sprintf("spec.traffic[%d].revisionName", i)})
		}
	}
	for i, r := range f.Spec.Routes {
		if r.RevisionName != "" {
			refs = append(refs, struct{ name, field string }{r.RevisionName, fmt.Sprintf("spec.routes[%d].revisionName", i)})
		}
	}
	for i, g := range f.Spec.Filters {
		if g.Mirror != nil && g.Mirror.RevisionName != "" {
			refs = append(refs, struct{ name, field string }{g.Mirror.RevisionName, fmt.Sprintf("spec.filters[%d].mirror.revisionName", i)})
		}
	}
	if len(refs) == 0 {
		return nil, nil
	}
	revs, err := s.revisions.List(ctx, f.Namespace)
	if err != nil {
		return nil, fmt.Errorf("listing revisions: %w", err)
	}
	exists := map[string]bool{f.Spec.Template.Metadata.Name: true}
	for _, r := range revs {
		if r.Labels[api.LabelFunction] == f.Name {
			exists[r.Name] = true
		}
	}
	var errs *apis.FieldError
	for _, ref := range refs {
		if !exists[ref.name] {
			errs = errs.Also(apis.ErrInvalidValue(ref.name, ref.field,
				fmt.Sprintf("function %s has no such revision; see 'wisp revision list %s'", f.Name, f.Name)))
		}
	}
	return errs, nil
}
