// Package proxywasm is the gateway's proxy-wasm host: it runs filters
// written against the proxy-wasm ABI v0.2.1 (and v0.2.0, which the Go SDK
// exports) — the modules Envoy and Istio's WasmPlugin run — on wazero,
// behind the filter.Filter interface of activator/filter.
//
// It owns what happens between a module's bytes and a filtered request:
// compiling each module once per Host (by sha256, and in wazero's cache
// on disk), a pool of VMs per Plugin each with its root context
// (proxy_on_vm_start, proxy_on_configure), an HTTP context per request
// pinned to one VM (headers, bodies with buffering while the guest
// pauses, local responses, proxy_continue_stream, proxy_on_done / log /
// delete), the host functions (header maps, buffers, properties with
// Envoy's attribute paths, logs, ticks, shared data and queues, metrics,
// proxy_http_call), stopping guests that trap or overrun, recreating
// their VMs under a crash-loop limit, and Istio's failure strategy
// (FAIL_OPEN, FAIL_CLOSE).
//
// It must not fetch modules or know where they come from (the controller
// pulls them, e.g. from an OCI registry), decide which filters apply to a
// route or in what order (the gateway builds the filter.Chain), or route
// http calls itself (HostOptions.Functions and HostOptions.Client do).
// Plugins never see each other's shared data unless they share a VM id.
//
// The reasons behind the less obvious choices are in RATIONALE.md.
package proxywasm
