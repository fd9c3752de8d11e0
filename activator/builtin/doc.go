// Package builtin holds wisp's built-in gateway filters, made from a
// Function's (or the node's) api.GatewayFilter: header edits, rate
// limiting, fault injection, request mirroring and CORS. Each is a
// filter.Filter and runs in the chain like any other, proxy-wasm filters
// included. The package owns no routing: what a mirror sends to is given
// to it as an http.Handler.
package builtin
