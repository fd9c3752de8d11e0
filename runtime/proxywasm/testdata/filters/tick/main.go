// Command tick is a proxy-wasm filter whose root context ticks every 10
// ms, counting its ticks in the shared data key "ticks"; requests get
// the count in the request header x-ticks.
package main

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &pluginContext{} })
}

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	if err := proxywasm.SetTickPeriodMilliSeconds(10); err != nil {
		proxywasm.LogCriticalf("setting the tick period: %v", err)
		return false
	}
	return true
}

func (*pluginContext) OnTick() {
	for {
		v, cas, err := proxywasm.GetSharedData("ticks")
		n := uint64(0)
		if err == nil && len(v) == 8 {
			n = binary.LittleEndian.Uint64(v)
		} else if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
			panic(err)
		}
		err = proxywasm.SetSharedData("ticks", binary.LittleEndian.AppendUint64(nil, n+1), cas)
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			return
		}
	}
}

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	v, _, err := proxywasm.GetSharedData("ticks")
	n := uint64(0)
	if err == nil {
		n = binary.LittleEndian.Uint64(v)
	}
	if err := proxywasm.AddHttpRequestHeader("x-ticks", strconv.FormatUint(n, 10)); err != nil {
		panic(err)
	}
	return types.ActionContinue
}
