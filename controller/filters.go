package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
)

// PluginSpec is what a PluginLoader needs to load one proxy-wasm filter.
type PluginSpec struct {
	// Name is "<namespace>/<name>" of the Filter.
	Name, RootID           string
	Wasm                   []byte
	PluginConfig, VMConfig []byte
	Env                    map[string]string
	FailOpen               bool
}

// Plugin is a loaded proxy-wasm filter.
type Plugin interface {
	filter.Filter
	// Close waits for the requests that started on the plugin to finish
	// (or ctx to end) and frees it.
	Close(ctx context.Context) error
}

// PluginLoader loads proxy-wasm filters (runtime/proxywasm in a node).
type PluginLoader func(ctx context.Context, spec PluginSpec) (Plugin, error)

// ModuleFetcher returns the module a Filter's source names, checked
// against its sha256 when it gives one.
type ModuleFetcher func(ctx context.Context, f *api.Filter) ([]byte, error)

// FilterManagerOptions configure a FilterManager.
type FilterManagerOptions struct {
	Store store.Store
	Load  PluginLoader
	Fetch ModuleFetcher
	Log   *slog.Logger
	// OnChange is called after the filters of a namespace changed, so
	// that the chains of its Functions are rebuilt.
	OnChange func(namespace string)
	// CloseWait bounds how long a replaced plugin may finish the requests
	// that started on it; default 30s.
	CloseWait time.Duration
	// HealthEvery is how often loaded plugins are asked whether their VMs
	// crash-loop, to report it in their status; default 5s.
	HealthEvery time.Duration
	// Leading says whether this node writes the Filters' status (one
	// node of a cluster, the leader, does); nil means always.
	Leading func() bool
}

// FilterManager keeps every Filter resource loaded: it fetches the
// module, loads it as a plugin, swaps new versions in without failing
// requests in flight, reports each Filter's status, and gives the
// controller the filters that apply to a Function.
type FilterManager struct {
	opts    FilterManagerOptions
	log     *slog.Logger
	filters *store.Typed[api.Filter, *api.Filter]

	mu     sync.Mutex
	loaded map[string]*loadedFilter // by namespace/name
	seq    uint64
}

type loadedFilter struct {
	filter   *api.Filter
	specHash string
	entry    filter.Entry
	plugin   Plugin // nil when the Filter failed to load
	seq      uint64 // changes with every swap, for chain cache keys
	digest   string
	sick     bool // the last health check failed
}

// healthChecker is a Plugin that can tell when its VMs crash-loop.
type healthChecker interface{ Health() error }

// NewFilterManager returns a FilterManager; Run starts it.
func NewFilterManager(o FilterManagerOptions) *FilterManager {
	if o.CloseWait <= 0 {
		o.CloseWait = 30 * time.Second
	}
	if o.HealthEvery <= 0 {
		o.HealthEvery = 5 * time.Second
	}
	if o.OnChange == nil {
		o.OnChange = func(string) {}
	}
	return &FilterManager{
		opts:    o,
		log:     o.Log.With("component", "filters"),
		filters: store.NewTyped[api.Filter](o.Store, store.Filters),
		loaded:  map[string]*loadedFilter{},
	}
}

// Run loads and unloads filters as the store says until ctx ends, then
// closes every plugin.
func (m *FilterManager) Run(ctx context.Context) error {
	events, err := m.filters.Watch(ctx, "")
	if err != nil {
		return fmt.Errorf("filters: watching: %w", err)
	}
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		t := time.NewTicker(m.opts.HealthEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.checkHealth(ctx)
			}
		}
	}()
	defer func() { <-healthDone }()
	for ev := range events {
		switch {
		case ev.Err != nil:
			m.log.Warn("a stored filter cannot be read", "namespace", ev.Object.Namespace, "filter", ev.Object.Name, "error", ev.Err)
		case ev.Type == store.Put:
			m.apply(ctx, ev.Object)
		case ev.Type == store.Delete:
			m.remove(ev.Object.Namespace, ev.Object.Name)
		}
	}
	m.mu.Lock()
	all := m.loaded
	m.loaded = map[string]*loadedFilter{}
	m.mu.Unlock()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.opts.CloseWait)
	defer cancel()
	for _, l := range all {
		if l.plugin != nil {
			_ = l.plugin.Close(cctx)
		}
	}
	return nil
}

// For returns the filters that select fn, and a key that changes
// whenever they do. It is the controller's ExtraFilters.
func (m *FilterManager) For(fn *api.Function) ([]filter.Entry, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for _, l := range m.loaded {
		f := l.filter
		if f.Namespace == fn.Namespace && f.Spec.Selector.Selects(fn.Name, fn.Labels) {
			names = append(names, f.Name)
		}
	}
	slices.Sort(names)
	entries := make([]filter.Entry, 0, len(names))
	var key strings.Builder
	for _, n := range names {
		l := m.loaded[fn.Namespace+"/"+n]
		entries = append(entries, l.entry)
		key.WriteString(n + "@" + strconv.FormatUint(l.seq, 10) + ";")
	}
	return entries, key.String()
}

func specHash(f *api.Filter) string {
	b, _ := json.Marshal(f.Spec)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// apply loads a new or changed Filter; a Put that changed only its
// status (the manager's own writes) changes nothing.
func (m *FilterManager) apply(ctx context.Context, f *api.Filter) {
	f.SetDefaults()
	key := f.Namespace + "/" + f.Name
	hash := specHash(f)
	m.mu.Lock()
	old := m.loaded[key]
	m.mu.Unlock()
	if old != nil && old.specHash == hash {
		return // a status write of ours, or metadata only
	}
	begin := time.Now()
	phase, _ := filter.ParsePhase(f.Spec.Phase)
	entry := filter.Entry{Phase: phase, Priority: f.Spec.Priority}
	failOpen := f.Spec.FailStrategy == api.FailOpen
	var plugin Plugin
	digest, reason, err := "", "", error(nil)
	wasm, err := m.opts.Fetch(ctx, f)
	if err != nil {
		reason = api.ReasonPullFailed
	} else {
		sum := sha256.Sum256(wasm)
		digest = "sha256:" + hex.EncodeToString(sum[:])
		plugin, err = m.opts.Load(ctx, pluginSpec(f, wasm))
		if err != nil {
			plugin, reason = nil, api.ReasonLoadFailed
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		entry.Filter = filter.Unavailable(key, failOpen, err.Error())
		m.log.Warn("filter not loaded", "namespace", f.Namespace, "filter", f.Name, "reason", reason, "error", err, "fail_open", failOpen)
	} else {
		entry.Filter = plugin
		m.log.Info("filter loaded", "namespace", f.Namespace, "filter", f.Name, "module", digest, "duration", time.Since(begin))
	}

	m.mu.Lock()
	m.seq++
	m.loaded[key] = &loadedFilter{filter: f.DeepCopy(), specHash: hash, entry: entry, plugin: plugin, seq: m.seq, digest: digest}
	m.mu.Unlock()
	m.opts.OnChange(f.Namespace)
	m.closeLater(old)

	m.writeStatus(ctx, f, func(s *api.FilterStatus) {
		if err != nil {
			s.MarkFailed(reason, err.Error())
			return
		}
		s.MarkReady(digest)
	})
}

func pluginSpec(f *api.Filter, wasm []byte) PluginSpec {
	s := PluginSpec{
		Name:         f.Namespace + "/" + f.Name,
		RootID:       f.Spec.PluginName,
		Wasm:         wasm,
		PluginConfig: f.Spec.PluginConfigBytes(),
		FailOpen:     f.Spec.FailStrategy == api.FailOpen,
	}
	if vm := f.Spec.VMConfig; vm != nil && len(vm.Env) > 0 {
		s.Env = map[string]string{}
		for _, e := range vm.Env {
			// HOST values come from the node's environment, as Istio's do.
			if e.ValueFrom == api.EnvHost {
				s.Env[e.Name] = os.Getenv(e.Name)
			} else {
				s.Env[e.Name] = e.Value
			}
		}
	}
	return s
}

// remove unloads a deleted Filter.
func (m *FilterManager) remove(namespace, name string) {
	key := namespace + "/" + name
	m.mu.Lock()
	old := m.loaded[key]
	delete(m.loaded, key)
	m.mu.Unlock()
	if old == nil {
		return
	}
	m.opts.OnChange(namespace)
	m.closeLater(old)
	m.log.Info("filter removed", "namespace", namespace, "filter", name)
}

// closeLater closes a replaced plugin once the requests that started on
// it are done; new requests already use the new chain.
func (m *FilterManager) closeLater(old *loadedFilter) {
	if old == nil || old.plugin == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.opts.CloseWait)
		defer cancel()
		if err := old.plugin.Close(ctx); err != nil {
			m.log.Warn("closing a replaced filter", "filter", old.filter.Namespace+"/"+old.filter.Name, "error", err)
		}
	}()
}

// writeStatus sets a Filter's status, retrying once on a conflict with
// a concurrent update.
func (m *FilterManager) writeStatus(ctx context.Context, f *api.Filter, set func(*api.FilterStatus)) {
	if m.opts.Leading != nil && !m.opts.Leading() {
		return
	}
	for range 2 {
		cur, err := m.filters.Get(ctx, f.Namespace, f.Name)
		if err != nil {
			return // deleted meanwhile, or the store is closing
		}
		if specHash(withDefaults(cur)) != specHash(f) {
			return // changed again: the next event writes its status
		}
		next := cur.Status
		set(&next)
		next.ObservedGeneration = cur.Generation
		if jsonEqual(next, cur.Status) {
			return
		}
		cur.Status = next
		if _, err = m.filters.UpdateStatus(ctx, cur); err == nil || !errors.Is(err, store.ErrConflict) {
			if err != nil {
				m.log.Warn("writing filter status", "filter", f.Namespace+"/"+f.Name, "error", err)
			}
			return
		}
	}
}

func withDefaults(f *api.Filter) *api.Filter {
	f = f.DeepCopy()
	f.SetDefaults()
	return f
}

// checkHealth reports in their status the plugins whose VMs crash-loop,
// and those that recovered.
func (m *FilterManager) checkHealth(ctx context.Context) {
	type change struct {
		l   *loadedFilter
		err error
	}
	var changes []change
	m.mu.Lock()
	for _, l := range m.loaded {
		hc, ok := l.plugin.(healthChecker)
		if !ok {
			continue
		}
		err := hc.Health()
		if (err != nil) != l.sick {
			l.sick = err != nil
			changes = append(changes, change{l, err})
		}
	}
	m.mu.Unlock()
	for _, c := range changes {
		f, digest, err := c.l.filter, c.l.digest, c.err
		if err != nil {
			m.log.Warn("filter crash-looping", "namespace", f.Namespace, "filter", f.Name, "error", err)
		}
		m.writeStatus(ctx, f, func(s *api.FilterStatus) {
			if err != nil {
				s.MarkFailed(api.ReasonCrashLoop, err.Error())
				return
			}
			s.MarkReady(digest)
		})
	}
}
