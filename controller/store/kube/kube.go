package kube

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
)

// Resource is the custom resource that holds one store Kind.
type Resource struct {
	Group, Version string
	// Resource is the plural, lower-case name in URLs ("functions").
	Resource string
	// Kind is the object kind ("Function").
	Kind string
}

// GVR returns the resource's group, version and plural name.
func (r Resource) GVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: r.Group, Version: r.Version, Resource: r.Resource}
}

// APIVersion returns "group/version".
func (r Resource) APIVersion() string { return r.Group + "/" + r.Version }

// Resources returns wisp's kinds and the custom resources of config/crd
// that hold them.
func Resources() map[store.Kind]Resource {
	w := func(plural, kind string) Resource {
		return Resource{Group: api.Group, Version: api.Version, Resource: plural, Kind: kind}
	}
	return map[store.Kind]Resource{
		store.Functions: w("functions", api.KindFunction),
		store.Revisions: w("revisions", api.KindRevision),
		store.Filters:   w("filters", api.KindFilter),
		store.Triggers:  w("triggers", api.KindTrigger),
		store.Nodes:     w("wispnodes", api.KindWispNode),
	}
}

// Options configure a Store.
type Options struct {
	// Resources maps store kinds to custom resources; nil means
	// Resources().
	Resources map[store.Kind]Resource
	// Log receives what watches do to recover; nil discards it.
	Log *slog.Logger
}

// Store is a store.Store on a Kubernetes API server. See the package doc.
type Store struct {
	client dynamic.Interface
	res    map[store.Kind]Resource
	host   string
	log    *slog.Logger
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.EntryWriter = (*Store)(nil)
)

// New returns a Store on the apiserver cfg reaches. It checks that the
// apiserver answers and serves every resource, so that a cluster without
// wisp's CRDs fails here, with the command that installs them.
func New(ctx context.Context, cfg *rest.Config, opts Options) (*Store, error) {
	res := opts.Resources
	if res == nil {
		res = Resources()
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("store: Kubernetes client for %s: %w", cfg.Host, err)
	}
	s := &Store{client: client, res: res, host: cfg.Host, log: log}
	if err := s.check(ctx, cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// check asks discovery for every group version the store uses and fails
// when one of its resources is not served.
func (s *Store) check(ctx context.Context, cfg *rest.Config) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("store: Kubernetes discovery client for %s: %w", cfg.Host, err)
	}
	byGV := map[string][]string{}
	for _, r := range s.res {
		byGV[r.APIVersion()] = append(byGV[r.APIVersion()], r.Resource)
	}
	for gv, want := range byGV {
		if err := ctx.Err(); err != nil {
			return err
		}
		list, err := dc.ServerResourcesForGroupVersion(gv)
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("store: the Kubernetes API at %s does not serve %s: install wisp's CRDs with 'kubectl apply -k config/' (or 'kubectl apply -f config/crd/')", s.host, gv)
		}
		if err != nil {
			return s.fail("reach", "", "", "", err)
		}
		served := map[string]bool{}
		for _, r := range list.APIResources {
			served[r.Name] = true
		}
		var missing []string
		for _, r := range want {
			if !served[r] {
				missing = append(missing, r+"."+strings.Split(gv, "/")[0])
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			return fmt.Errorf("store: the Kubernetes API at %s does not serve %s: install wisp's CRDs with 'kubectl apply -k config/'", s.host, strings.Join(missing, ", "))
		}
	}
	return nil
}

// resource returns the dynamic client of kind in namespace ("" = all),
// checking the names that form the key.
func (s *Store) resource(kind store.Kind, namespace string) (Resource, dynamic.ResourceInterface, error) {
	r, ok := s.res[kind]
	if !ok {
		return Resource{}, nil, fmt.Errorf("kind %q: %w: this store holds %s", kind, store.ErrInvalid, s.kinds())
	}
	nri := s.client.Resource(r.GVR())
	if namespace == "" {
		return r, nri, nil
	}
	if err := store.CheckLabel("namespace", namespace); err != nil {
		return Resource{}, nil, err
	}
	return r, nri.Namespace(namespace), nil
}

func (s *Store) kinds() string {
	var ks []string
	for k := range s.res {
		ks = append(ks, string(k))
	}
	slices.Sort(ks)
	return strings.Join(ks, ", ")
}

// Get returns the object or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, kind store.Kind, namespace, name string) (store.Entry, error) {
	r, ri, err := s.named(kind, namespace, name)
	if err != nil {
		return store.Entry{}, opError("get", kind, namespace, name, err)
	}
	u, err := ri.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return store.Entry{}, s.fail("get", r.Resource, namespace, name, err)
	}
	return s.entry(u, kind)
}

// List returns the objects of one namespace, or of all when namespace
// is "", ordered by namespace then name, read in pages from one snapshot.
func (s *Store) List(ctx context.Context, kind store.Kind, namespace string) ([]store.Entry, error) {
	items, _, err := s.list(ctx, kind, namespace)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(items, func(a, b store.Entry) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return items, nil
}

// listPage is how many objects one list request asks for.
const listPage = 500

// list reads every object of a namespace ("" = all) and the
// resourceVersion of the snapshot they were read at.
func (s *Store) list(ctx context.Context, kind store.Kind, namespace string) ([]store.Entry, string, error) {
	r, ri, err := s.resource(kind, namespace)
	if err != nil {
		return nil, "", fmt.Errorf("store: list %s/%s: %w", kind, nsOrAll(namespace), err)
	}
	var out []store.Entry
	opts := metav1.ListOptions{Limit: listPage}
	rv := ""
	for {
		l, err := ri.List(ctx, opts)
		if apierrors.IsResourceExpired(err) && opts.Continue != "" {
			// The snapshot expired between pages: start again.
			out, opts, rv = nil, metav1.ListOptions{Limit: listPage}, ""
			continue
		}
		if err != nil {
			return nil, "", s.fail("list", r.Resource, namespace, "", err)
		}
		if rv == "" {
			rv = l.GetResourceVersion()
		}
		for i := range l.Items {
			e, err := s.entry(&l.Items[i], kind)
			if err != nil {
				return nil, "", err
			}
			out = append(out, e)
		}
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return out, rv, nil
		}
	}
}

// Create stores a new object; store.ErrAlreadyExists if the name is taken.
func (s *Store) Create(ctx context.Context, kind store.Kind, namespace, name string, value []byte) (uint64, error) {
	e, err := s.CreateEntry(ctx, kind, namespace, name, value)
	return e.Revision, err
}

// CreateEntry is Create, returning the object as the apiserver stored it.
func (s *Store) CreateEntry(ctx context.Context, kind store.Kind, namespace, name string, value []byte) (store.Entry, error) {
	r, ri, err := s.named(kind, namespace, name)
	if err != nil {
		return store.Entry{}, opError("create", kind, namespace, name, err)
	}
	u, err := object(r, namespace, name, value, 0)
	if err != nil {
		return store.Entry{}, opError("create", kind, namespace, name, err)
	}
	created, err := ri.Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return store.Entry{}, s.fail("create", r.Resource, namespace, name, err)
	}
	return s.entry(created, kind)
}

// Update replaces the object's metadata and spec if its revision is
// still expected, keeping the stored status.
func (s *Store) Update(ctx context.Context, kind store.Kind, namespace, name string, value []byte, expected uint64) (uint64, error) {
	e, err := s.UpdateEntry(ctx, kind, namespace, name, value, expected)
	return e.Revision, err
}

// UpdateEntry is Update, returning the object as the apiserver stored it.
func (s *Store) UpdateEntry(ctx context.Context, kind store.Kind, namespace, name string, value []byte, expected uint64) (store.Entry, error) {
	return s.update(ctx, "update", kind, namespace, name, value, expected)
}

// UpdateStatus replaces the object's status if its revision is still
// expected.
func (s *Store) UpdateStatus(ctx context.Context, kind store.Kind, namespace, name string, value []byte, expected uint64) (uint64, error) {
	e, err := s.UpdateStatusEntry(ctx, kind, namespace, name, value, expected)
	return e.Revision, err
}

// UpdateStatusEntry is UpdateStatus, returning the object as stored.
func (s *Store) UpdateStatusEntry(ctx context.Context, kind store.Kind, namespace, name string, value []byte, expected uint64) (store.Entry, error) {
	return s.update(ctx, "update status of", kind, namespace, name, value, expected)
}

func (s *Store) update(ctx context.Context, op string, kind store.Kind, namespace, name string, value []byte, expected uint64) (store.Entry, error) {
	r, ri, err := s.named(kind, namespace, name)
	if err == nil && expected == 0 {
		err = fmt.Errorf("%w: revision 0 names no stored object", store.ErrInvalid)
	}
	if err != nil {
		return store.Entry{}, opError(op, kind, namespace, name, err)
	}
	u, err := object(r, namespace, name, value, expected)
	if err != nil {
		return store.Entry{}, opError(op, kind, namespace, name, err)
	}
	var updated *unstructured.Unstructured
	if op == "update" {
		updated, err = ri.Update(ctx, u, metav1.UpdateOptions{})
	} else {
		updated, err = ri.UpdateStatus(ctx, u, metav1.UpdateOptions{})
	}
	if err != nil {
		return store.Entry{}, s.fail(op, r.Resource, namespace, name, err)
	}
	return s.entry(updated, kind)
}

// Delete removes the object. expected 0 deletes whatever is stored;
// otherwise store.ErrConflict if the revision moved.
func (s *Store) Delete(ctx context.Context, kind store.Kind, namespace, name string, expected uint64) error {
	r, ri, err := s.named(kind, namespace, name)
	if err != nil {
		return opError("delete", kind, namespace, name, err)
	}
	opts := metav1.DeleteOptions{}
	if expected != 0 {
		rv := strconv.FormatUint(expected, 10)
		opts.Preconditions = &metav1.Preconditions{ResourceVersion: &rv}
	}
	if err := ri.Delete(ctx, name, opts); err != nil {
		return s.fail("delete", r.Resource, namespace, name, err)
	}
	return nil
}

// named checks both names and returns the kind's namespaced client.
func (s *Store) named(kind store.Kind, namespace, name string) (Resource, dynamic.ResourceInterface, error) {
	if err := store.CheckLabel("namespace", namespace); err != nil {
		return Resource{}, nil, err
	}
	if err := store.CheckLabel("name", name); err != nil {
		return Resource{}, nil, err
	}
	return s.resource(kind, namespace)
}

// object turns a stored document into the custom resource to send:
// apiVersion, kind, namespace and name from the key, resourceVersion as
// the precondition (0: none), no managedFields.
func object(r Resource, namespace, name string, value []byte, expected uint64) (*unstructured.Unstructured, error) {
	var m map[string]any
	if err := utiljson.Unmarshal(value, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: the value is not a JSON object", store.ErrInvalid)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(r.APIVersion())
	u.SetKind(r.Kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	u.SetManagedFields(nil)
	if expected != 0 {
		u.SetResourceVersion(strconv.FormatUint(expected, 10))
	} else {
		unstructured.RemoveNestedField(m, "metadata", "resourceVersion")
	}
	return u, nil
}

// entry turns a custom resource from the apiserver into a store entry.
// It changes u.
func (s *Store) entry(u *unstructured.Unstructured, kind store.Kind) (store.Entry, error) {
	rev, err := strconv.ParseUint(u.GetResourceVersion(), 10, 64)
	if err != nil {
		return store.Entry{}, fmt.Errorf("store: %s %s/%s: resourceVersion %q is not a number; wisp needs an apiserver on etcd", kind, u.GetNamespace(), u.GetName(), u.GetResourceVersion())
	}
	unstructured.RemoveNestedField(u.Object, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	b, err := json.Marshal(u.Object)
	if err != nil {
		return store.Entry{}, fmt.Errorf("store: encoding %s %s/%s: %w", kind, u.GetNamespace(), u.GetName(), err)
	}
	return store.Entry{Namespace: u.GetNamespace(), Name: u.GetName(), Value: b, Revision: rev}, nil
}

// fail maps an apiserver error to the store's errors, with what to do.
func (s *Store) fail(op, resource, namespace, name string, err error) error {
	what := resource
	if namespace != "" || name != "" {
		what = fmt.Sprintf("%s %s/%s", resource, cmp.Or(namespace, "*"), name)
	}
	wrap := func(sentinel error, msg string) error {
		return fmt.Errorf("store: %s %s: %s: %w", op, what, msg, sentinel)
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("store: %s %s: %w", op, what, err)
		}
		return fmt.Errorf("store: %s %s: cannot reach the Kubernetes API at %s: %w", op, what, s.host, err)
	}
	details := st.Status().Details
	switch {
	case apierrors.IsNotFound(err) && details != nil && details.Kind == "namespaces":
		return wrap(store.ErrInvalid, fmt.Sprintf("namespace %q does not exist; create it first: kubectl create namespace %s", namespace, namespace))
	case apierrors.IsNotFound(err) && (details == nil || details.Name == ""):
		return fmt.Errorf("store: %s %s: the Kubernetes API at %s does not serve %s: install wisp's CRDs with 'kubectl apply -k config/'", op, what, s.host, resource)
	case apierrors.IsNotFound(err):
		return wrap(store.ErrNotFound, "not found")
	case apierrors.IsAlreadyExists(err):
		return wrap(store.ErrAlreadyExists, "already exists")
	case apierrors.IsConflict(err):
		return wrap(store.ErrConflict, st.Status().Message)
	case apierrors.IsForbidden(err):
		return wrap(store.ErrForbidden, st.Status().Message)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return wrap(store.ErrInvalid, st.Status().Message)
	}
	return fmt.Errorf("store: %s %s: %w", op, what, err)
}

func opError(op string, kind store.Kind, namespace, name string, err error) error {
	return fmt.Errorf("store: %s %s/%s/%s: %w", op, kind, namespace, name, err)
}

func nsOrAll(namespace string) string { return cmp.Or(namespace, "*") }
