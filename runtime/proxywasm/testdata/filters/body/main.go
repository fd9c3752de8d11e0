// Command body is a proxy-wasm filter that buffers both bodies: it
// upper-cases the request body once it has all of it and wraps the
// response body in brackets. The body sizes it was shown on the request
// come back in the response header x-request-body-sizes. A request with
// x-hold has its response headers paused until the end of the response
// body, where the filter adds x-held: released (so the headers must still
// be held there).
package main

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &httpContext{} })
}

type httpContext struct {
	types.DefaultHttpContext
	requestSizes []string
	hold         bool
}

func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	_, err := proxywasm.GetHttpRequestHeader("x-hold")
	c.hold = err == nil
	return types.ActionContinue
}

func (c *httpContext) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	c.requestSizes = append(c.requestSizes, strconv.Itoa(bodySize))
	if !endOfStream {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpRequestBody(0, bodySize)
	if err != nil {
		panic(err)
	}
	if err := proxywasm.ReplaceHttpRequestBody(bytes.ToUpper(body)); err != nil {
		panic(err)
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if err := proxywasm.AddHttpResponseHeader("x-request-body-sizes", strings.Join(c.requestSizes, ",")); err != nil {
		panic(err)
	}
	if c.hold {
		return types.ActionPause
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpResponseBody(bodySize int, endOfStream bool) types.Action {
	if !endOfStream {
		return types.ActionPause
	}
	if c.hold {
		if err := proxywasm.AddHttpResponseHeader("x-held", "released"); err != nil {
			panic(err)
		}
	}
	if err := proxywasm.PrependHttpResponseBody([]byte("[")); err != nil {
		panic(err)
	}
	if err := proxywasm.AppendHttpResponseBody([]byte("]")); err != nil {
		panic(err)
	}
	return types.ActionContinue
}
