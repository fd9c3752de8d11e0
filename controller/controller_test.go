package controller

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wisp-faas/wisp/activator"
	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/controller/store/storetest"
	"github.com/wisp-faas/wisp/runtime"
)

// memProvider runs instances in memory that answer with their revision's
// name; a revision whose env has FAIL=1 never starts.
type memProvider struct {
	mu      sync.Mutex
	running map[string]int // revision → running instances
	seq     atomic.Int64
}

func (p *memProvider) Prepare(context.Context, *api.Revision) error { return nil }
func (p *memProvider) Release(*api.Revision)                        {}

func (p *memProvider) Start(_ context.Context, rev *api.Revision, _ func(runtime.State)) (runtime.Instance, error) {
	for _, e := range rev.Spec.Env {
		if e.Name == "FAIL" {
			return nil, fmt.Errorf("exited with status 1 before becoming ready: %s", e.Value)
		}
	}
	p.mu.Lock()
	p.running[rev.Name]++
	p.mu.Unlock()
	return &memInstance{p: p, rev: rev.Name, id: fmt.Sprint(p.seq.Add(1)), done: make(chan struct{})}, nil
}

func (p *memProvider) count(rev string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running[rev]
}

type memInstance struct {
	p        *memProvider
	rev, id  string
	done     chan struct{}
	stopOnce sync.Once
}

func (i *memInstance) ServeHTTP(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, i.rev) }
func (i *memInstance) ID() string                                       { return i.id }
func (i *memInstance) Ready() bool                                      { return true }
func (i *memInstance) Done() <-chan struct{}                            { return i.done }
func (i *memInstance) Stop(context.Context) error {
	i.stopOnce.Do(func() {
		i.p.mu.Lock()
		i.p.running[i.rev]--
		i.p.mu.Unlock()
		close(i.done)
	})
	return nil
}

type env struct {
	t         *testing.T
	functions *store.Typed[api.Function, *api.Function]
	revisions *store.Typed[api.Revision, *api.Revision]
	routes    *activator.Routes
	gateway   http.Handler
	provider  *memProvider
	ctrl      *Controller
	store     store.Store
}

func start(t *testing.T, opts ...func(*Options)) *env {
	t.Helper()
	st := storetest.NewKV(t)
	log := slog.New(slog.DiscardHandler)
	e := &env{
		t:         t,
		functions: store.NewTyped[api.Function](st, store.Functions),
		revisions: store.NewTyped[api.Revision](st, store.Revisions),
		routes:    activator.NewRoutes("example.test"),
		provider:  &memProvider{running: map[string]int{}},
	}
	pools := activator.NewPools()
	gw, err := activator.NewGateway(e.routes, pools, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e.gateway = gw
	o := Options{
		Store: st, Routes: e.routes, Pools: pools, Providers: Providers{Process: e.provider},
		Domain: "example.test", GatewayURL: "http://127.0.0.1:8080", Log: log, StopWait: time.Second,
	}
	for _, f := range opts {
		f(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.ctrl, e.store = c, st
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		pools.CloseAll(context.Background())
	})
	return e
}

func function(name string, env ...string) *api.Function {
	f := &api.Function{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	f.Spec.Template.Spec.Process = &api.ProcessSource{Command: "/bin/srv"}
	for i := 0; i+1 < len(env); i += 2 {
		f.Spec.Template.Spec.Env = append(f.Spec.Template.Spec.Env, api.EnvVar{Name: env[i], Value: env[i+1]})
	}
	f.SetDefaults()
	return f
}

// waitFor polls the function until cond holds.
func (e *env) waitFor(name string, cond func(*api.Function) bool) *api.Function {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := e.functions.Get(context.Background(), "default", name)
		if err == nil && cond(f) {
			return f
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("function %s never reached the condition; last: %+v (err %v)", name, f, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ready(f *api.Function) bool {
	c := f.Status.GetCondition(api.ConditionReady)
	return f.Status.ObservedGeneration == f.Generation && c != nil && c.IsTrue()
}

func (e *env) get(host string) string {
	e.t.Helper()
	req := httptest.NewRequest("GET", "http://"+host+"/", nil)
	rec := httptest.NewRecorder()
	e.gateway.ServeHTTP(rec, req)
	return rec.Body.String()
}

func TestTemplateChangeCutsRevisionAndMovesTraffic(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	f, err := e.functions.Create(ctx, function("hello", "V", "1"))
	if err != nil {
		t.Fatal(err)
	}
	f = e.waitFor("hello", ready)
	if f.Status.LatestReadyRevisionName != "hello-00001" || f.Status.URL != "http://hello.default.example.test:8080" ||
		f.Status.Address != "http://127.0.0.1:8080/fn/default/hello" {
		t.Fatalf("status: %+v", f.Status)
	}
	if got := e.get("hello.default.example.test"); got != "hello-00001" {
		t.Fatalf("served by %q", got)
	}

	// A template change cuts hello-00002, which takes the traffic.
	f.Spec.Template.Spec.Env[0].Value = "2"
	f.Generation++
	if _, err := e.functions.Update(ctx, f); err != nil {
		t.Fatal(err)
	}
	f = e.waitFor("hello", func(f *api.Function) bool { return ready(f) && f.Status.LatestReadyRevisionName == "hello-00002" })
	if got := e.get("hello.default.example.test"); got != "hello-00002" {
		t.Fatalf("after update served by %q", got)
	}
	// The old revision is no longer routed: its instances are stopped.
	deadline := time.Now().Add(5 * time.Second)
	for e.provider.count("hello-00001") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("unrouted revision still runs %d instances", e.provider.count("hello-00001"))
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Split 50/50 with a tag on the old revision: both answer, the tag host
	// reaches the old one.
	pct := func(n int64) *int64 { return &n }
	f.Spec.Traffic = []api.TrafficTarget{
		{RevisionName: "hello-00001", Percent: pct(50), Tag: "old", LatestRevision: new(false)},
		{LatestRevision: new(true), Percent: pct(50)},
	}
	f.Generation++
	if _, err := e.functions.Update(ctx, f); err != nil {
		t.Fatal(err)
	}
	f = e.waitFor("hello", func(f *api.Function) bool { return ready(f) && len(f.Status.Traffic) == 2 })
	if f.Status.Traffic[0].URL != "http://old-hello.default.example.test:8080" {
		t.Fatalf("tag URL %q", f.Status.Traffic[0].URL)
	}
	if got := e.get("old-hello.default.example.test"); got != "hello-00001" {
		t.Fatalf("tag served by %q", got)
	}
	seen := map[string]int{}
	for range 200 {
		seen[e.get("hello.default.example.test")]++
	}
	if seen["hello-00001"] < 60 || seen["hello-00002"] < 60 {
		t.Fatalf("50/50 split served %v", seen)
	}
	revs, _ := e.revisions.List(ctx, "default")
	if len(revs) != 2 {
		t.Fatalf("%d revisions, want 2 (traffic changes cut none)", len(revs))
	}
}

func TestFailingRevisionKeepsTheOldOneServing(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	if _, err := e.functions.Create(ctx, function("svc")); err != nil {
		t.Fatal(err)
	}
	f := e.waitFor("svc", ready)
	f.Spec.Template.Spec.Env = []api.EnvVar{{Name: "FAIL", Value: "no config"}}
	f.Generation++
	if _, err := e.functions.Update(ctx, f); err != nil {
		t.Fatal(err)
	}
	f = e.waitFor("svc", func(f *api.Function) bool {
		c := f.Status.GetCondition(api.ConditionReady)
		return f.Status.ObservedGeneration == f.Generation && c != nil && c.IsFalse()
	})
	c := f.Status.GetCondition(api.ConditionConfigurationsReady)
	if c == nil || c.Reason != "InstanceFailed" || f.Status.LatestCreatedRevisionName != "svc-00002" || f.Status.LatestReadyRevisionName != "svc-00001" {
		t.Fatalf("status after a failing update: %+v", f.Status)
	}
	if got := e.get("svc.default.example.test"); got != "svc-00001" {
		t.Fatalf("old revision no longer serves: %q", got)
	}
}

func TestMissingTrafficRevisionAndDeletion(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	f := function("gone")
	pct := int64(100)
	f.Spec.Traffic = []api.TrafficTarget{{RevisionName: "gone-00042", Percent: &pct}}
	if _, err := e.functions.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	f = e.waitFor("gone", func(f *api.Function) bool {
		c := f.Status.GetCondition(api.ConditionRoutesReady)
		return c != nil && c.IsFalse()
	})
	if c := f.Status.GetCondition(api.ConditionRoutesReady); c.Message != `spec.traffic[0].revisionName: revision "gone-00042" does not exist` {
		t.Fatalf("routes condition: %+v", c)
	}
	if err := e.functions.Delete(ctx, "default", "gone", ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		revs, _ := e.revisions.List(ctx, "default")
		if len(revs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revisions left after delete: %d", len(revs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := e.routes.Get("default", "gone"); ok {
		t.Fatal("route left after delete")
	}
}

// TestUnroutedRevisionsBeyondTheRetainCountAreDeleted: with 2 retained,
// the oldest unrouted revisions go; routed, tagged and latest ones stay.
func TestUnroutedRevisionsBeyondTheRetainCountAreDeleted(t *testing.T) {
	e := start(t, func(o *Options) { o.RetainRevisions = 2 })
	ctx := context.Background()
	f, err := e.functions.Create(ctx, function("gc", "V", "1"))
	if err != nil {
		t.Fatal(err)
	}
	f = e.waitFor("gc", ready)
	// Keep hello-00001 routed through a tag at 0%.
	f.Spec.Traffic = []api.TrafficTarget{
		{RevisionName: "gc-00001", Percent: new(int64(0)), Tag: "first", LatestRevision: new(false)},
		{LatestRevision: new(true), Percent: new(int64(100))},
	}
	for v := 2; v <= 6; v++ {
		f.Spec.Template.Spec.Env[0].Value = fmt.Sprint(v)
		f.Generation++
		if f, err = e.functions.Update(ctx, f); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("gc-%05d", v)
		f = e.waitFor("gc", func(f *api.Function) bool { return ready(f) && f.Status.LatestReadyRevisionName == want })
	}
	var names []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		revs, err := e.revisions.List(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		names = names[:0]
		for _, r := range revs {
			names = append(names, r.Name)
		}
		slices.Sort(names)
		// 00001 is tagged, 00006 is latest, 00004 and 00005 are the two retained.
		if strings.Join(names, " ") == "gc-00001 gc-00004 gc-00005 gc-00006" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revisions %v; want gc-00001 (tagged), gc-00004 and gc-00005 (retained), gc-00006 (latest)", names)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := e.get("first-gc.default.example.test"); got != "gc-00001" {
		t.Fatalf("tagged revision served by %q", got)
	}
}
