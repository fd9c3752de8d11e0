// Command metrics is a proxy-wasm filter that defines a counter, a gauge
// and a histogram: it counts requests, keeps the requests in flight, and
// records the size of each request's x-payload header. The counter's
// value comes back in the request header x-count.
package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &pluginContext{} })
}

type pluginContext struct {
	types.DefaultPluginContext
	requests proxywasm.MetricCounter
	inflight proxywasm.MetricGauge
	payload  proxywasm.MetricHistogram
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	p.requests = proxywasm.DefineCounterMetric("filter_test.requests")
	p.inflight = proxywasm.DefineGaugeMetric("filter_test.inflight")
	p.payload = proxywasm.DefineHistogramMetric("filter_test.payload_bytes")
	return true
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{plugin: p} }

type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
}

func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	c.plugin.requests.Increment(1)
	c.plugin.inflight.Add(1)
	payload, _ := proxywasm.GetHttpRequestHeader("x-payload")
	c.plugin.payload.Record(uint64(len(payload)))
	if err := proxywasm.AddHttpRequestHeader("x-count", strconv.FormatUint(c.plugin.requests.Value(), 10)); err != nil {
		panic(err)
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpStreamDone() {
	c.plugin.inflight.Add(-1)
}
