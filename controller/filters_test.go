package controller

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
)

// headerPlugin stands in for a proxy-wasm plugin in this test of the
// manager's wiring: it sets X-Filter to its configuration on responses.
type headerPlugin struct {
	name, value string
	inFlight    atomic.Int64
	closed      atomic.Bool
	sick        atomic.Pointer[string]
}

func (p *headerPlugin) Health() error {
	if msg := p.sick.Load(); msg != nil {
		return errors.New(*msg)
	}
	return nil
}

func (p *headerPlugin) Name() string { return p.name }
func (p *headerPlugin) Start(*filter.Exchange) filter.Stream {
	p.inFlight.Add(1)
	return p
}
func (p *headerPlugin) Request(*filter.Exchange) *filter.Response { return nil }
func (p *headerPlugin) Response(x *filter.Exchange) *filter.Response {
	x.Header.Set("X-Filter", p.value)
	return nil
}
func (p *headerPlugin) Done(*filter.Exchange) { p.inFlight.Add(-1) }
func (p *headerPlugin) Close(context.Context) error {
	p.closed.Store(true)
	return nil
}

func TestFilterManagerLoadsSwapsAndFails(t *testing.T) {
	var mu sync.Mutex
	var plugins []*headerPlugin
	var e *env
	var fm *FilterManager
	e = start(t, func(o *Options) {
		fm = NewFilterManager(FilterManagerOptions{
			Store: o.Store, Log: slog.New(slog.DiscardHandler), HealthEvery: 20 * time.Millisecond,
			OnChange: func(ns string) { e.ctrl.Resync(ns) },
			Fetch: func(_ context.Context, f *api.Filter) ([]byte, error) {
				if strings.Contains(f.Spec.Source, "missing") {
					return nil, errors.New("manifest unknown")
				}
				return []byte("\x00asm module of " + f.Name), nil
			},
			Load: func(_ context.Context, s PluginSpec) (Plugin, error) {
				p := &headerPlugin{name: s.Name, value: string(s.PluginConfig)}
				mu.Lock()
				plugins = append(plugins, p)
				mu.Unlock()
				return p, nil
			},
		})
		o.ExtraFilters = fm.For
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = fm.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	filters := store.NewTyped[api.Filter](e.store, store.Filters)
	for _, name := range []string{"hello", "other"} {
		if _, err := e.functions.Create(ctx, function(name, "V", "1")); err != nil {
			t.Fatal(err)
		}
		e.waitFor(name, ready)
	}
	header := func(host string) (int, string) {
		rec := httptest.NewRecorder()
		e.gateway.ServeHTTP(rec, httptest.NewRequest("GET", "http://"+host+"/", nil))
		return rec.Code, rec.Header().Get("X-Filter")
	}
	until := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	f := &api.Filter{ObjectMeta: metav1.ObjectMeta{Name: "tagger", Namespace: "default"}}
	f.Spec.Source = "oci://registry.example/tagger:v1"
	f.Spec.PluginConfig = []byte(`"v1"`)
	f.Spec.Selector = &api.FilterSelector{Functions: []string{"hello"}}
	f.SetDefaults()
	if _, err := filters.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	until("the filter never reached the selected function", func() bool { _, h := header("hello.default.example.test"); return h == "v1" })
	if _, h := header("other.default.example.test"); h != "" {
		t.Fatalf("a function the selector does not pick got the filter: %q", h)
	}
	until("status never turned Ready", func() bool {
		got, err := filters.Get(ctx, "default", "tagger")
		return err == nil && got.Status.IsReady() && strings.HasPrefix(got.Status.ResolvedModule, "sha256:")
	})

	// A new version swaps in and the old one is closed.
	cur, _ := filters.Get(ctx, "default", "tagger")
	cur.Spec.PluginConfig = []byte(`"v2"`)
	if _, err := filters.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	until("the new version never served", func() bool { _, h := header("hello.default.example.test"); return h == "v2" })
	until("the replaced plugin was never closed", func() bool { mu.Lock(); defer mu.Unlock(); return plugins[0].closed.Load() })

	// A plugin whose VMs crash-loop says so in its status, and recovers.
	mu.Lock()
	current := plugins[len(plugins)-1]
	mu.Unlock()
	msg := "3 VM crashes in 1m0s"
	current.sick.Store(&msg)
	reason := func() string {
		got, _ := filters.Get(ctx, "default", "tagger")
		if c := got.Status.GetCondition("Ready"); c != nil {
			return c.Reason + ": " + c.Message
		}
		return ""
	}
	until("a crash loop never showed in the status", func() bool { return reason() == api.ReasonCrashLoop+": "+msg })
	current.sick.Store(nil)
	until("the recovery never showed in the status", func() bool {
		got, _ := filters.Get(ctx, "default", "tagger")
		return got.Status.IsReady()
	})

	// A source that cannot be pulled: FAIL_CLOSE answers 503, status says why.
	cur, _ = filters.Get(ctx, "default", "tagger")
	cur.Spec.Source = "oci://registry.example/missing:v1"
	if _, err := filters.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	until("FAIL_CLOSE did not answer 503", func() bool { code, _ := header("hello.default.example.test"); return code == 503 })
	until("status does not say the pull failed", func() bool {
		got, _ := filters.Get(ctx, "default", "tagger")
		c := got.Status.GetCondition("Ready")
		return c != nil && c.Reason == api.ReasonPullFailed && strings.Contains(c.Message, "manifest unknown")
	})
	cur, _ = filters.Get(ctx, "default", "tagger")
	cur.Spec.FailStrategy = api.FailOpen
	if _, err := filters.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	until("FAIL_OPEN did not skip the filter", func() bool { code, h := header("hello.default.example.test"); return code == 200 && h == "" })

	if err := filters.Delete(ctx, "default", "tagger", ""); err != nil {
		t.Fatal(err)
	}
	until("the deleted filter still runs", func() bool { code, h := header("hello.default.example.test"); return code == 200 && h == "" })
	until("the deleted filter still applies", func() bool { entries, _ := fm.For(function("hello")); return len(entries) == 0 })
}
