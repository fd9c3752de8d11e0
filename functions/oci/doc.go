// Package oci distributes WebAssembly modules through OCI registries with
// ORAS: it parses references, resolves tags to manifest digests, pulls a
// module out of any of the common Wasm artifact layouts into the node's
// module store (functions/modules), pushes modules in the layout Istio's
// WasmPlugin fetcher accepts, and inspects what a reference points at.
// Functions and proxy-wasm gateway filters share it.
//
// It owns the bytes in transit and a small on-disk index from manifest
// digests (and tags) to module digests, so that a pull by digest that the
// node has already made needs no network. It must not compile, validate
// beyond the `\0asm` magic, or run modules (runtime/wasm and
// runtime/proxywasm do), and it must not decide which module a Revision or
// Filter runs (the controller does).
//
// # Layouts read by Pull
//
//   - [FormatWasm]: the CNCF TAG Runtime Wasm OCI artifact, config
//     application/vnd.wasm.config.v0+json and one application/wasm layer
//     (wkg, runwasi, Spin).
//   - [FormatModule]: Solo's "oci" variant, read by Istio: a layer of type
//     application/vnd.module.wasm.content.layer.v1+wasm, beside a config
//     (manifest config or second layer application/vnd.module.wasm.config.v1+json).
//   - [FormatImage]: Solo's "compat" variant, read by Istio: an OCI or Docker
//     image whose last layer (tar+gzip) holds a file named plugin.wasm.
//   - [FormatRaw]: a single layer of any other media type whose bytes are a
//     WebAssembly binary (a bare `oras push ref module.wasm`).
//
// # The layout written by Push
//
// Istio's fetcher (istio/istio pkg/wasm/imagefetcher.go) reads a
// non-Docker manifest first as the compat variant (last layer
// application/vnd.oci.image.layer.v1.tar+gzip holding plugin.wasm) and then
// as the oci variant, which requires exactly two layers, one of them of
// type application/vnd.module.wasm.content.layer.v1+wasm whose blob is the
// raw module; it reads neither the manifest config nor the other layer.
// Push writes an OCI image manifest with config and first layer the same
// small JSON blob of type application/vnd.module.wasm.config.v1+json
// (title runtime-config.json), and second layer the module (title
// plugin.wasm), as Solo's spec and Higress do. The manifest carries no
// timestamp, so pushing the same bytes twice yields the same digest.
//
// # Verification
//
// Every blob is checked against its descriptor's digest and size. With
// Options.ModuleSHA256 set (Istio's WasmPlugin sha256), Pull also refuses
// a module of any other sha256: from the layer's descriptor before
// downloading when the layer is the module, after extraction for the image
// layout. Options.Insecure skips TLS certificate verification; there is no
// silent fallback from HTTPS to HTTP (Options.PlainHTTP says so).
//
// # Pull policy and cache
//
// A digest names immutable content: a pull by digest whose manifest digest
// the index maps to a module the store holds touches no network under any
// policy. A tag is re-resolved on every pull under [PullAlways]; under
// [PullIfNotPresent] a tag pulled before is served from the cache without
// asking the registry; [PullDefault] is PullIfNotPresent except for the tag
// "latest", which is PullAlways, as in Istio and Kubernetes. The index is
// keyed by manifest digest alone, not by registry: the same digest names
// the same bytes wherever they came from.
package oci
