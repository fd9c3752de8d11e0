// Package wisp lets an ordinary net/http Handler run as a wisp function
// under the "http" ABI: a WebAssembly reactor that wisp instantiates once
// and then calls once per request, one request at a time.
//
// Register the handler from an init function and build with standard Go:
//
//	package main
//
//	import (
//		"fmt"
//		"net/http"
//
//		"github.com/wisp-faas/wisp/functions/sdk/go/wisp"
//	)
//
//	func init() {
//		wisp.Handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//			fmt.Fprintf(w, "Hello, %s!\n", r.URL.Query().Get("name"))
//		}))
//	}
//
//	func main() {} // never called in a reactor
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o hello.wasm .
//
// A reactor runs its package init functions (from the exported
// _initialize) but never main, so Handle must be called from init.
//
// The handler sees the method, the request URI (path and query, as the
// client sent them once wisp's routing prefix is stripped), Host,
// RemoteAddr, every header (W3C traceparent included) and the whole body.
// Its status, headers and body are returned when it returns; responses are
// not streamed. Environment variables are the function's own (spec.env)
// plus K_SERVICE, K_CONFIGURATION and K_REVISION.
//
// The wire format between wisp and this package is specified in wisp's
// docs/abi.md. Built for any other target than wasip1, the package
// compiles and Handle does nothing, so that code using it builds and vets
// on the host.
package wisp
