// Command auth is a proxy-wasm filter that authorizes each request with
// an HTTP call to the upstream named by its plugin configuration. The
// call carries the request's x-token; a 200 lets the request on with
// x-auth-user (the answer's x-user header) and x-auth-body (its body)
// added, any other status is answered locally with a 403, and a failed
// call with a 503.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &pluginContext{} })
}

type pluginContext struct {
	types.DefaultPluginContext
	upstream string
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	cfg, err := proxywasm.GetPluginConfiguration()
	if err != nil || len(cfg) == 0 {
		proxywasm.LogCritical("auth: the plugin configuration must name the upstream")
		return false
	}
	p.upstream = string(cfg)
	return true
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{plugin: p} }

type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
}

func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	token, _ := proxywasm.GetHttpRequestHeader("x-token")
	headers := [][2]string{{":method", "GET"}, {":path", "/check?token=" + token}, {":authority", "authz"}, {"x-token", token}}
	if _, err := proxywasm.DispatchHttpCall(c.plugin.upstream, headers, nil, nil, 5000, c.answered); err != nil {
		proxywasm.LogErrorf("dispatching the call to %s: %v", c.plugin.upstream, err)
		_ = proxywasm.SendHttpResponse(500, nil, []byte("auth: dispatch failed\n"), -1)
	}
	return types.ActionPause
}

func (c *httpContext) answered(numHeaders, bodySize, _ int) {
	if numHeaders == 0 {
		_ = proxywasm.SendHttpResponse(503, nil, []byte("auth: call failed\n"), -1)
		return
	}
	status, err := proxywasm.GetHttpCallResponseHeaders()
	if err != nil {
		panic(err)
	}
	var code, user string
	for _, h := range status {
		switch h[0] {
		case ":status":
			code = h[1]
		case "x-user":
			user = h[1]
		}
	}
	if code != "200" {
		_ = proxywasm.SendHttpResponse(403, [][2]string{{"x-authz-status", code}}, []byte("auth: forbidden\n"), -1)
		return
	}
	body, err := proxywasm.GetHttpCallResponseBody(0, bodySize)
	if err != nil && bodySize > 0 {
		panic(err)
	}
	_ = proxywasm.AddHttpRequestHeader("x-auth-user", user)
	_ = proxywasm.AddHttpRequestHeader("x-auth-body", string(body))
	if err := proxywasm.ResumeHttpRequest(); err != nil {
		panic(err)
	}
}
