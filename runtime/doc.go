// Package runtime defines the seam between the data path and the things
// that actually run a function: an instance Provider per kind of source
// (runtime/process for executables, runtime/wasm for WebAssembly modules,
// later runtime/container). The activator asks a Provider for instances
// and forwards requests to them; the autoscaler decides how many.
//
// This package owns only the interfaces and the small types around them.
// It must not choose how many instances run, route requests or touch the
// store.
package runtime
