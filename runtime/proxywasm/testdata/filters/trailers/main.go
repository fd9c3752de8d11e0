// Command trailers is a proxy-wasm filter that edits trailers both ways:
// it appends "+filtered" to the request trailer x-req, and on the
// response upper-cases x-checksum and adds x-filter-trailer.
package main

import (
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &httpContext{} })
}

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpRequestTrailers(int) types.Action {
	v, err := proxywasm.GetHttpRequestTrailer("x-req")
	if err != nil {
		panic(err)
	}
	if err := proxywasm.ReplaceHttpRequestTrailer("x-req", v+"+filtered"); err != nil {
		panic(err)
	}
	return types.ActionContinue
}

func (*httpContext) OnHttpResponseTrailers(int) types.Action {
	if v, err := proxywasm.GetHttpResponseTrailer("x-checksum"); err == nil {
		if err := proxywasm.ReplaceHttpResponseTrailer("x-checksum", strings.ToUpper(v)); err != nil {
			panic(err)
		}
	}
	if err := proxywasm.AddHttpResponseTrailer("x-filter-trailer", "yes"); err != nil {
		panic(err)
	}
	return types.ActionContinue
}
