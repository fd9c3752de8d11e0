package kube_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/controller/store/kube"
	"github.com/wisp-faas/wisp/controller/store/storetest"
	"github.com/wisp-faas/wisp/internal/kubetest"
)

func TestMain(m *testing.M) {
	os.Exit(kubetest.Main(m, func(c *kubetest.Cluster) error {
		return c.CreateNamespaces(context.Background(), storetest.Namespaces()...)
	}))
}

func newStore(t *testing.T) *kube.Store {
	t.Helper()
	c := kubetest.Shared(t)
	clear(t, c)
	s, err := kube.New(t.Context(), c.Admin(), kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clear deletes every wisp object the tests may have stored.
func clear(t *testing.T, c *kubetest.Cluster) {
	t.Helper()
	dc, err := dynamic.NewForConfig(c.Admin())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range kube.Resources() {
		for _, ns := range storetest.Namespaces() {
			if err := dc.Resource(r.GVR()).Namespace(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
				t.Fatalf("clear %s in %s: %v", r.Resource, ns, err)
			}
		}
	}
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
}

func functionDoc(t *testing.T, image string) []byte {
	t.Helper()
	f := api.Function{}
	f.Spec.Template.Spec.Wasm = &api.WasmSource{Module: image}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStatusSubresource: Update keeps the stored status, UpdateStatus
// writes only the status, and the apiserver's generation shows.
func TestStatusSubresource(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	fns := store.NewTyped[api.Function](s, store.Functions)
	f, err := fns.Create(ctx, &api.Function{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello"}, Spec: api.FunctionSpec{Template: api.RevisionTemplate{Spec: api.RevisionSpec{Wasm: &api.WasmSource{Module: "oci://x/a:1"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Generation != 1 || f.UID == "" || f.CreationTimestamp.IsZero() {
		t.Fatalf("created object lacks server metadata: generation %d uid %q created %v", f.Generation, f.UID, f.CreationTimestamp)
	}
	f.Status.URL = "http://hello.default.example"
	f.Status.ObservedGeneration = f.Generation
	f.Spec.Template.Spec.Wasm.Module = "oci://x/ignored:1"
	st, err := fns.UpdateStatus(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.URL != "http://hello.default.example" || st.Spec.Template.Spec.Wasm.Module != "oci://x/a:1" || st.Generation != 1 {
		t.Fatalf("UpdateStatus: url %q image %q generation %d; want the status only written", st.Status.URL, st.Spec.Template.Spec.Wasm.Module, st.Generation)
	}
	st.Spec.Template.Spec.Wasm.Module = "oci://x/b:2"
	st.Status.URL = "http://overwritten"
	up, err := fns.Update(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if up.Status.URL != "http://hello.default.example" || up.Spec.Template.Spec.Wasm.Module != "oci://x/b:2" || up.Generation != 2 {
		t.Fatalf("Update: url %q image %q generation %d; want spec written, status kept, generation 2", up.Status.URL, up.Spec.Template.Spec.Wasm.Module, up.Generation)
	}
}

// TestSchemaRefusesInvalid: the CRD's schema refuses what the types
// cannot hold, as ErrInvalid naming the field.
func TestSchemaRefusesInvalid(t *testing.T) {
	s := newStore(t)
	_, err := s.Create(t.Context(), store.Functions, "default", "bad", []byte(`{"spec":{"template":{"spec":{"containerConcurrency":"many"}}}}`))
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "containerConcurrency") {
		t.Fatalf("err = %v; want ErrInvalid naming spec.template.spec.containerConcurrency", err)
	}
}

func TestMissingNamespace(t *testing.T) {
	s := newStore(t)
	_, err := s.Create(t.Context(), store.Functions, "no-such-ns", "x", functionDoc(t, "oci://x/a:1"))
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "kubectl create namespace no-such-ns") {
		t.Fatalf("err = %v; want ErrInvalid saying kubectl create namespace", err)
	}
}

// TestMissingCRD: a cluster without a CRD is refused at New with the
// command that installs them.
func TestMissingCRD(t *testing.T) {
	c := kubetest.Shared(t)
	res := kube.Resources()
	r := res[store.Functions]
	r.Resource = "nosuchthings"
	res[store.Functions] = r
	_, err := kube.New(t.Context(), c.Admin(), kube.Options{Resources: res})
	if err == nil || !strings.Contains(err.Error(), "kubectl apply -k config/") || !strings.Contains(err.Error(), "nosuchthings.wisp.dev") {
		t.Fatalf("err = %v; want it to name nosuchthings.wisp.dev and 'kubectl apply -k config/'", err)
	}
}

// TestForbidden: RBAC's refusal is ErrForbidden, naming verb and resource.
func TestForbidden(t *testing.T) {
	c := kubetest.Shared(t)
	ctx := t.Context()
	cs := c.Clientset(t)
	// A user who may read functions in "other" and nothing more.
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "other"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{api.Group}, Resources: []string{"functions"}, Verbs: []string{"get", "list", "watch"}}},
	}
	if _, err := cs.RbacV1().Roles("other").Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "other"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "reader"}},
	}
	if _, err := cs.RbacV1().RoleBindings("other").Create(ctx, bind, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.RbacV1().RoleBindings("other").Delete(context.Background(), "reader", metav1.DeleteOptions{})
		cs.RbacV1().Roles("other").Delete(context.Background(), "reader", metav1.DeleteOptions{})
	})
	clear(t, c)
	s, err := kube.New(ctx, c.As("reader"), kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// RBAC caches take a moment to see a new binding.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = s.List(ctx, store.Functions, "other")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("list allowed by the role: %v", err)
	}
	_, err = s.Create(ctx, store.Functions, "other", "x", functionDoc(t, "oci://x/a:1"))
	if !errors.Is(err, store.ErrForbidden) || !strings.Contains(err.Error(), `cannot create resource "functions"`) {
		t.Fatalf("create: %v; want ErrForbidden naming verb create and resource functions", err)
	}
	_, err = s.List(ctx, store.Functions, "default")
	if !errors.Is(err, store.ErrForbidden) || !strings.Contains(err.Error(), `cannot list resource "functions"`) {
		t.Fatalf("list in default: %v; want ErrForbidden naming verb list", err)
	}
}

// TestWatchSurvivesRestart: a watch resumes after the apiserver restarts,
// and nothing written while it was down or after is lost.
func TestWatchSurvivesRestart(t *testing.T) {
	s := newStore(t)
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ch, err := s.Watch(ctx, store.Functions, "default")
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != store.Synced {
		t.Fatalf("first event %v; want Synced", ev.Type)
	}
	if _, err := s.Create(ctx, store.Functions, "default", "before", functionDoc(t, "oci://x/a:1")); err != nil {
		t.Fatal(err)
	}
	waitPut(t, ch, "before")
	c.StopAPIServer()
	if err := c.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, store.Functions, "default", "after", functionDoc(t, "oci://x/a:1")); err != nil {
		t.Fatal(err)
	}
	waitPut(t, ch, "after")
}

func waitPut(t *testing.T, ch <-chan store.Event, name string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed before %s came", name)
			}
			if ev.Type == store.Put && ev.Entry.Name == name {
				return
			}
		case <-timeout:
			t.Fatalf("no Put of %s within 60s", name)
		}
	}
}

// TestWatchRelistsWhenExpired: while a watch's apiserver is down, another
// apiserver of the same cluster takes writes; the restarted apiserver's
// watch cache starts after the watch's resourceVersion, so resuming gets
// 410 Gone, and the watch lists again and sends the difference: the new
// object, the changed one, and the deletion.
func TestWatchRelistsWhenExpired(t *testing.T) {
	c := kubetest.Shared(t)
	clear(t, c)
	var logs syncBuffer
	s, err := kube.New(t.Context(), c.Admin(), kube.Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for _, n := range []string{"keep", "change", "drop"} {
		if _, err := s.Create(ctx, store.Functions, "default", n, functionDoc(t, "oci://x/a:1")); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := s.Watch(ctx, store.Functions, "default")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]store.Event{}
	for ev := range ch {
		if ev.Type == store.Synced {
			break
		}
		seen[ev.Entry.Name] = ev
	}
	if len(seen) != 3 {
		t.Fatalf("initial list sent %d objects; want 3", len(seen))
	}
	second, stopSecond, err := c.StartSecondAPIServer()
	if err != nil {
		t.Fatal(err)
	}
	defer stopSecond()
	other, err := kube.New(ctx, second, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.StopAPIServer()
	restarted := false
	defer func() {
		if !restarted {
			c.StartAPIServer()
		}
	}()
	ch2 := seen["change"].Entry
	if _, err := other.Update(ctx, store.Functions, "default", "change", functionDoc(t, "oci://x/b:2"), ch2.Revision); err != nil {
		t.Fatal(err)
	}
	if err := other.Delete(ctx, store.Functions, "default", "drop", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Create(ctx, store.Functions, "default", "new", functionDoc(t, "oci://x/a:1")); err != nil {
		t.Fatal(err)
	}
	// Many writes, so that the restarted apiserver's cache begins well
	// after the watch's resourceVersion.
	for i := range 20 {
		if _, err := other.Create(ctx, store.Functions, "other", fmt.Sprintf("noise-%d", i), functionDoc(t, "oci://x/a:1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	got := map[string]store.EventType{}
	timeout := time.After(90 * time.Second)
	for len(got) < 3 {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("watch closed")
			}
			if ev.Entry.Name == "keep" {
				t.Fatalf("unchanged object sent again: %+v", ev)
			}
			got[ev.Entry.Name] = ev.Type
		case <-timeout:
			t.Fatalf("after the restart the watch sent %v; want change, drop and new", got)
		}
	}
	if !strings.Contains(logs.String(), "watch resumed from a new list") {
		t.Fatalf("the watch did not list again; its log:\n%s", logs.String())
	}
	want := map[string]store.EventType{"change": store.Put, "drop": store.Delete, "new": store.Put}
	for n, ty := range want {
		if got[n] != ty {
			t.Fatalf("after the restart: %v; want %v", got, want)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
