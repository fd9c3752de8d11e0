// Command addheader is the benchmark's filter: it adds one request
// header and nothing else.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &httpContext{} })
}

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if err := proxywasm.AddHttpRequestHeader("x-wisp-filter", "1"); err != nil {
		panic(err)
	}
	return types.ActionContinue
}
