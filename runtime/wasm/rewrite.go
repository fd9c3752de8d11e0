package wasm

import "github.com/wisp-faas/wisp/internal/wasmrewrite"

// The rewrite of modules lives in internal/wasmrewrite, shared with the
// proxy-wasm host; these are its names in this package.
const (
	interruptExport      = wasmrewrite.InterruptExport
	snapshotGlobalPrefix = wasmrewrite.SnapshotGlobalPrefix
	fuel                 = wasmrewrite.Fuel
)
