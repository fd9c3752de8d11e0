// Package wasmrewrite instruments a WebAssembly module before wazero
// compiles it, so that wisp can stop a guest at any time cheaply and
// start instances fast: a fuel check at every function entry and loop
// header that visits the host every Fuel iterations and traps once the
// exported interrupt global (InterruptExport) is set; exports of the
// mutable globals (for snapshots); merged data segments; no DWARF.
//
// It is shared by runtime/wasm (functions) and runtime/proxywasm
// (filters). It only transforms bytes: it must not compile, instantiate
// or run modules. The reasons are in runtime/wasm/RATIONALE.md,
// "Interrupting guests" and "The rewrite also merges data segments".
package wasmrewrite
