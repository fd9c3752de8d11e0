// Package filter is the gateway's filter chain: the one interface that
// built-in Go filters (header edits, rate limits, fault injection,
// mirroring, CORS) and proxy-wasm filters implement, and the Chain that
// runs them around a request with continue / local-response semantics.
//
// A Filter is configuration; for each request it starts a Stream, which
// sees the request headers (in chain order), optionally the request body,
// the response headers and optionally the response body (in reverse
// order), and is told when the exchange is done. Any phase may answer the
// client itself with a local Response instead of going on.
//
// Filters are ordered by Phase (AUTHN, AUTHZ, STATS, then unspecified, as
// Istio's WasmPlugin orders them) and, within a phase, by descending
// priority. The package knows nothing of routes, pools or Wasm: the
// gateway decides which filters apply to a request and what "next" is.
package filter
