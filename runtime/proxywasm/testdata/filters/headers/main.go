// Command headers is a proxy-wasm filter that edits headers both ways:
// it adds x-wisp-filter and replaces x-replace on the request, removes
// x-remove-me, and adds x-response-filter and removes x-internal on the
// response. A request carrying x-roundtrip has all its headers read
// and written back as one map, plus x-pairs: the number of pairs read.
package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &httpContext{} })
}

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	must(proxywasm.AddHttpRequestHeader("x-wisp-filter", "headers"))
	if _, err := proxywasm.GetHttpRequestHeader("x-replace"); err == nil {
		must(proxywasm.ReplaceHttpRequestHeader("x-replace", "replaced"))
	}
	must(proxywasm.RemoveHttpRequestHeader("x-remove-me"))
	if _, err := proxywasm.GetHttpRequestHeader("x-roundtrip"); err == nil {
		pairs, err := proxywasm.GetHttpRequestHeaders()
		must(err)
		must(proxywasm.ReplaceHttpRequestHeaders(append(pairs, [2]string{"x-pairs", strconv.Itoa(len(pairs))})))
	}
	return types.ActionContinue
}

func (*httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	must(proxywasm.AddHttpResponseHeader("x-response-filter", "yes"))
	must(proxywasm.RemoveHttpResponseHeader("x-internal"))
	return types.ActionContinue
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
