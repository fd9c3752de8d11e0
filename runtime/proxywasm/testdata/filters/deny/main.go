// Command deny is a proxy-wasm filter that answers requests carrying
// x-deny with a local 403 and lets the others through.
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
	reason, err := proxywasm.GetHttpRequestHeader("x-deny")
	if err != nil {
		return types.ActionContinue
	}
	if err := proxywasm.SendHttpResponse(403, [][2]string{{"x-denied-by", "deny"}, {"content-type", "text/plain"}},
		[]byte("denied: "+reason+"\n"), -1); err != nil {
		panic(err)
	}
	return types.ActionPause
}
