// Package activator is wisp's data path: it maps a request to a Function's
// route, picks a Revision by the traffic split, and hands the request to
// that Revision's instance pool, which waits for a ready instance when
// none is ready yet.
//
// It owns the route table, the gateway handler and the per-Revision pools
// of instances. It must not decide how many instances a Revision should
// have (the controller and, later, the autoscaler do), and it must not
// read or write the store.
package activator
