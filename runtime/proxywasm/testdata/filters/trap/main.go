// Command trap is a proxy-wasm filter that crashes its VM on demand: a
// request carrying x-trap panics in the request phase, one carrying
// x-trap-response in the response phase, and one carrying x-loop spins
// forever. Other requests get x-trap-ok.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &httpContext{} })
}

// spins keeps the loop from being compiled away.
var spins uint64

type httpContext struct {
	types.DefaultHttpContext
	trapResponse bool
}

func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if _, err := proxywasm.GetHttpRequestHeader("x-trap"); err == nil {
		panic("trap requested")
	}
	if _, err := proxywasm.GetHttpRequestHeader("x-loop"); err == nil {
		for {
			spins++
		}
	}
	_, err := proxywasm.GetHttpRequestHeader("x-trap-response")
	c.trapResponse = err == nil
	if err := proxywasm.AddHttpRequestHeader("x-trap-ok", "1"); err != nil {
		panic(err)
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if c.trapResponse {
		panic("trap requested in the response phase")
	}
	return types.ActionContinue
}
