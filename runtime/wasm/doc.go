// Package wasm is the runtime.Provider for Revisions whose source is a
// WebAssembly module (spec.wasm), run in process on wazero.
//
// It owns what happens between a module's bytes and a served request:
// compiling each Revision's module once (into wazero's compilation cache,
// on disk when Options.CacheDir is set), detecting its ABI, instantiating
// it with the Revision's environment, memory limit and directory grants
// and nothing else of the host, running requests through one of the two
// ABIs that docs/abi.md specifies (wagi: a WASI command per request,
// CGI-style; http: a reactor reused across requests, one at a time), and
// stopping guests that overrun their request's deadline, trap or exhaust
// their memory, discarding their instance. It reports crashing guests
// through the instances' notify Reason (CrashPrefix, CrashLoopPrefix).
//
// It must not fetch modules (Options.Load does), decide how many
// instances run (the autoscaler does), choose an instance for a request,
// retry or buffer requests (the activator does), or read or write the
// store. An Instance serves one request at a time; a request that finds
// it busy waits for it, bounded by the request's context.
//
// The reasons behind the less obvious choices are in RATIONALE.md.
package wasm
