// Command header-filter is an example gateway filter for wisp (and for
// Istio's WasmPlugin), written with the proxy-wasm Go SDK and built with
// standard Go:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o header-filter.wasm .
//
// Its plugin configuration is JSON: {"header": "x-greeting", "value": "hi",
// "deny": "x-block"}. It adds the header to every response, tells the
// function through the request header x-filtered-by, and answers requests
// that carry the deny header itself with a 403, so the function never
// sees them.
package main

import (
	"encoding/json"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetVMContext(&vm{})
}

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type config struct {
	Header string `json:"header"`
	Value  string `json:"value"`
	Deny   string `json:"deny"`
}

type plugin struct {
	types.DefaultPluginContext
	cfg config
}

// OnPluginStart reads the configuration; a bad one fails the load, and
// wisp reports it in the Filter's status.
func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	raw, err := proxywasm.GetPluginConfiguration()
	if err != nil || json.Unmarshal(raw, &p.cfg) != nil || p.cfg.Header == "" {
		proxywasm.LogCriticalf("configuration %q: want {\"header\": ..., \"value\": ..., \"deny\": ...}", raw)
		return types.OnPluginStartStatusFailed
	}
	proxywasm.LogInfof("adding %s: %s", p.cfg.Header, p.cfg.Value)
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &request{cfg: &p.cfg} }

type request struct {
	types.DefaultHttpContext
	cfg *config
}

func (r *request) OnHttpRequestHeaders(int, bool) types.Action {
	if r.cfg.Deny != "" {
		if _, err := proxywasm.GetHttpRequestHeader(r.cfg.Deny); err == nil {
			_ = proxywasm.SendHttpResponse(403, [][2]string{{"content-type", "text/plain"}}, []byte("blocked by header-filter\n"), -1)
			return types.ActionPause
		}
	}
	_ = proxywasm.AddHttpRequestHeader("x-filtered-by", "header-filter")
	return types.ActionContinue
}

func (r *request) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader(r.cfg.Header, r.cfg.Value)
	return types.ActionContinue
}
