//go:build !wasip1

package wisp

import "net/http"

// Handle registers h as the function's handler. It must be called once,
// from an init function. Outside GOOS=wasip1 it does nothing.
func Handle(h http.Handler) {}
