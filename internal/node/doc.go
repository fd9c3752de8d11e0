// Package node assembles one wisp node: it locks the data dir, starts (or
// connects to) NATS, opens the store, runs the controller, and serves the
// gateway and the admin API until its context ends, then shuts all of it
// down in order, letting requests in flight finish.
//
// It owns wiring and lifecycle only; every behaviour lives in the
// packages it wires. cmd/wisp calls Run and nothing else of it.
package node
