// Command hello-go-reactor is the example Wasm function for wisp's "http"
// ABI: an ordinary net/http handler, registered with the Go SDK, that
// greets the caller and says which revision answered.
//
// Build it with standard Go (see README.md):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o hello-go-reactor.wasm .
package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/wisp-faas/wisp/functions/sdk/go/wisp"
)

func init() {
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "Hello"
	}
	revision := os.Getenv("K_REVISION")
	wisp.Handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		if name == "" {
			name = "world"
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s, %s! (revision %s, path %s)\n", greeting, name, revision, r.URL.Path)
	}))
}

// main is never called: a reactor runs only its init functions and then
// its exports.
func main() {}
