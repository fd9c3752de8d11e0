package proxywasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/internal/wasmcode"
)

// PluginSpec is one plugin to load: a module and its configuration, as
// an Istio WasmPlugin or Envoy's wasm filter configuration states them.
type PluginSpec struct {
	// Name names the plugin in logs, errors, metrics (label plugin) and
	// the property plugin_name. Required.
	Name string
	// RootID is the root context's id (Istio's pluginName), the property
	// plugin_root_id.
	RootID string
	// VMID scopes shared data and shared queues: plugins with the same
	// VMID share them, as in Envoy. Empty means Name, so that plugins do
	// not see each other's data unless they ask to.
	VMID string
	// Wasm is the module. Modules are compiled once per Host, keyed by
	// the sha256 of these bytes.
	Wasm []byte
	// PluginConfig is what the guest reads from the buffer
	// PLUGIN_CONFIGURATION in proxy_on_configure (Istio's pluginConfig,
	// as JSON); VMConfig what it reads from VM_CONFIGURATION in
	// proxy_on_vm_start.
	PluginConfig, VMConfig []byte
	// Env is the guest's environment (Istio's vmConfig.env).
	Env map[string]string
	// FailOpen is Istio's FAIL_OPEN: a request whose VM crashes under it,
	// or that finds no VM alive, goes on as if the plugin were absent.
	// False is FAIL_CLOSE: it is answered with a 503 naming the plugin.
	FailOpen bool
	// PoolSize is how many VMs serve the plugin's requests; zero means
	// GOMAXPROCS.
	PoolSize int
}

// Plugin is a loaded plugin: a pool of VMs running one module with one
// configuration. It is the filter.Filter for the gateway's chain and is
// safe for concurrent use. Close it when it is replaced or removed.
type Plugin struct {
	h    *Host
	spec PluginSpec
	code *wasmcode.Code
	log  *slog.Logger

	slots []atomic.Pointer[vm]
	next  atomic.Uint32

	ctx    context.Context // ends at Close: stops recreation and the watchdog
	cancel context.CancelFunc
	bg     sync.WaitGroup // background goroutines: recreation, watchdog, http calls
	active sync.WaitGroup // streams in flight

	mu        sync.Mutex
	restarts  []time.Time // recent VM recreations, for the crash-loop limit
	unhealthy error
}

var _ filter.Filter = (*Plugin)(nil)

// Load compiles spec.Wasm (or reuses the Host's compiled copy of the same
// bytes, or wazero's cache on disk) and starts spec.PoolSize VMs. It
// fails when the module is not a proxy-wasm module of ABI v0.2.0 or
// v0.2.1, or when a VM does not start: its initialisation traps, or
// proxy_on_vm_start or proxy_on_configure returns false. The Plugin's
// digest is the sha256 of the module.
func (h *Host) Load(ctx context.Context, spec PluginSpec) (*Plugin, error) {
	if spec.Name == "" {
		return nil, errors.New("proxywasm: the plugin has no name")
	}
	if len(spec.Wasm) == 0 {
		return nil, fmt.Errorf("proxywasm: plugin %s: no module", spec.Name)
	}
	if spec.VMID == "" {
		spec.VMID = spec.Name
	}
	if spec.PoolSize <= 0 {
		spec.PoolSize = goruntime.GOMAXPROCS(0)
	}
	c, err := h.code.Acquire(ctx, spec.Wasm, "plugin", spec.Name)
	if err != nil {
		return nil, fmt.Errorf("proxywasm: plugin %s: %w", spec.Name, err)
	}
	if err := checkABI(c); err != nil {
		h.code.Release(ctx, c)
		return nil, fmt.Errorf("proxywasm: plugin %s: %w", spec.Name, err)
	}
	p := &Plugin{
		h:     h,
		spec:  spec,
		code:  c,
		log:   h.log.With("plugin", spec.Name),
		slots: make([]atomic.Pointer[vm], spec.PoolSize),
	}
	p.ctx, p.cancel = context.WithCancel(h.ctx)
	errs := make([]error, spec.PoolSize)
	var wg sync.WaitGroup
	for i := range p.slots {
		wg.Go(func() {
			v, err := startVM(p, i)
			if err != nil {
				errs[i] = err
				return
			}
			p.slots[i].Store(v)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		p.shutdown()
		return nil, fmt.Errorf("proxywasm: plugin %s: starting its VMs: %w", spec.Name, err)
	}
	p.bg.Go(p.watchdog)
	p.log.Info("proxy-wasm plugin loaded", "sha256", c.Digest, "vms", spec.PoolSize)
	return p, nil
}

// checkABI refuses modules that do not declare an ABI version this host
// speaks.
func checkABI(c *wasmcode.Code) error {
	exports := c.Compiled.ExportedFunctions()
	for _, v := range abiVersions {
		if _, ok := exports[v]; ok {
			return nil
		}
	}
	if _, ok := exports["proxy_abi_version_0_1_0"]; ok {
		return errors.New("the module speaks proxy-wasm ABI v0.1.0; rebuild it with an SDK for v0.2.0 or v0.2.1")
	}
	return errors.New("the module exports no proxy_abi_version_0_2_x: it is not a proxy-wasm v0.2 module")
}

// Name returns the plugin's name.
func (p *Plugin) Name() string { return p.spec.Name }

// Digest returns the sha256 of the plugin's module, in hex.
func (p *Plugin) Digest() string { return p.code.Digest }

// Health returns nil while the plugin's VMs are being recreated at an
// acceptable rate, and an error saying why once they crash-loop.
func (p *Plugin) Health() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unhealthy
}

// Close stops the plugin: it waits for the requests in flight to finish
// (or for ctx to end), tells each VM's root context that it is done, and
// releases the VMs and, if no other plugin uses it, the compiled module.
// The gateway calls it after swapping a new version in (hot reload) or
// removing the plugin; requests must no longer Start on it.
func (p *Plugin) Close(ctx context.Context) error {
	drained := make(chan struct{})
	go func() {
		p.active.Wait()
		close(drained)
	}()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = fmt.Errorf("proxywasm: plugin %s closed with requests in flight: %w", p.spec.Name, ctx.Err())
	}
	p.shutdown()
	return err
}

func (p *Plugin) shutdown() {
	p.cancel()
	for i := range p.slots {
		if v := p.slots[i].Load(); v != nil {
			v.close()
		}
	}
	p.bg.Wait()
	p.h.code.Release(context.Background(), p.code)
}

// pick returns a live VM for a new request, round robin, or nil.
func (p *Plugin) pick() *vm {
	n := uint32(len(p.slots))
	start := p.next.Add(1)
	for i := range n {
		if v := p.slots[(start+i)%n].Load(); v != nil && !v.isDead() {
			return v
		}
	}
	return nil
}

func (v *vm) isDead() bool {
	select {
	case <-v.done:
		return true
	default:
		return false
	}
}

// crashed recreates a crashed vm in the background.
func (p *Plugin) crashed(v *vm, _ error) {
	p.bg.Go(func() { p.recreate(v.slot) })
}

// recreate starts a new vm in slot, at most CrashLoopRestarts times per
// CrashLoopWindow; beyond that the plugin is unhealthy until the window
// lets it try again.
func (p *Plugin) recreate(slot int) {
	limit, window := p.h.opts.CrashLoopRestarts, p.h.opts.CrashLoopWindow
	for {
		p.mu.Lock()
		now := time.Now()
		p.restarts = slices.DeleteFunc(p.restarts, func(t time.Time) bool { return now.Sub(t) >= window })
		var wait time.Duration
		if len(p.restarts) >= limit {
			wait = p.restarts[0].Add(window).Sub(now)
			p.unhealthy = fmt.Errorf("proxywasm: plugin %s is crash-looping: %d VM restarts within %s", p.spec.Name, len(p.restarts), window)
			p.log.Error("proxy-wasm plugin crash-looping; its VM stays down", "slot", slot, "retryIn", wait)
		} else {
			p.restarts = append(p.restarts, now)
		}
		p.mu.Unlock()
		if wait > 0 {
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(wait):
				continue
			}
		}
		if p.ctx.Err() != nil {
			return
		}
		v, err := startVM(p, slot)
		if err != nil {
			p.log.Error("proxy-wasm VM did not restart", "slot", slot, "error", err)
			continue
		}
		p.slots[slot].Store(v)
		p.mu.Lock()
		if len(p.restarts) < limit {
			p.unhealthy = nil
		}
		p.mu.Unlock()
		if p.ctx.Err() != nil { // closed meanwhile
			v.close()
		}
		return
	}
}

// watchdog stops guests whose call overruns CallTimeout.
func (p *Plugin) watchdog() {
	limit := p.h.opts.CallTimeout
	t := time.NewTicker(max(limit/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-t.C:
			for i := range p.slots {
				v := p.slots[i].Load()
				if v == nil {
					continue
				}
				if since := v.busySince.Load(); since != 0 && now.UnixNano()-since > int64(limit) {
					p.log.Error("proxy-wasm guest overran its call timeout; stopping its VM", "slot", i, "timeout", limit)
					v.stop()
				}
			}
		}
	}
}

// closedStream answers every request with resp.
type closedStream struct{ resp *filter.Response }

func (c closedStream) Request(*filter.Exchange) *filter.Response  { return c.resp }
func (c closedStream) Response(*filter.Exchange) *filter.Response { return nil }
func (c closedStream) Done(*filter.Exchange)                      {}

// unavailable is the FAIL_CLOSE answer.
func unavailable(plugin string) *filter.Response {
	return &filter.Response{
		Status: http.StatusServiceUnavailable,
		Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
		Body:   []byte("proxy-wasm plugin " + plugin + " is unavailable\n"),
	}
}
