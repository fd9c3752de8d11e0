// Command config is a proxy-wasm filter configured through both
// configuration buffers: the VM configuration comes back in the response
// header x-vm-config, and the plugin configuration, "name=value", names a
// request header to add. A plugin configuration without "=" fails
// proxy_on_configure.
package main

import (
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetVMContext(&vmContext{})
}

type vmContext struct {
	types.DefaultVMContext
	vmConfig string
}

func (v *vmContext) OnVMStart(size int) types.OnVMStartStatus {
	if size > 0 {
		cfg, err := proxywasm.GetVMConfiguration()
		if err != nil {
			proxywasm.LogCriticalf("reading the VM configuration: %v", err)
			return false
		}
		v.vmConfig = string(cfg)
	}
	return true
}

func (v *vmContext) NewPluginContext(uint32) types.PluginContext {
	return &pluginContext{vm: v}
}

type pluginContext struct {
	types.DefaultPluginContext
	vm          *vmContext
	name, value string
}

func (p *pluginContext) OnPluginStart(size int) types.OnPluginStartStatus {
	cfg, err := proxywasm.GetPluginConfiguration()
	if err != nil {
		proxywasm.LogErrorf("reading the plugin configuration (%d bytes): %v", size, err)
		return false
	}
	name, value, ok := strings.Cut(string(cfg), "=")
	if !ok {
		proxywasm.LogErrorf("plugin configuration %q: want name=value", cfg)
		return false
	}
	p.name, p.value = name, value
	proxywasm.LogInfof("configured: %s=%s", name, value)
	return true
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	return &httpContext{plugin: p}
}

type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
}

func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if err := proxywasm.AddHttpRequestHeader(c.plugin.name, c.plugin.value); err != nil {
		panic(err)
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if err := proxywasm.AddHttpResponseHeader("x-vm-config", c.plugin.vm.vmConfig); err != nil {
		panic(err)
	}
	return types.ActionContinue
}
