// Command shared is a proxy-wasm filter that counts requests in the
// shared data key "hits" with compare-and-swap (request header x-hits),
// proves that a stale CAS is refused (x-stale-cas), and queues every
// request's path on the shared queue "paths"; a request for /drain is
// answered locally with the queued paths, one a line.
package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &pluginContext{} })
}

type pluginContext struct {
	types.DefaultPluginContext
	queue uint32
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	id, err := proxywasm.RegisterSharedQueue("paths")
	if err != nil {
		proxywasm.LogCriticalf("registering the queue: %v", err)
		return false
	}
	p.queue = id
	return true
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{plugin: p} }

type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
}

func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	path, err := proxywasm.GetHttpRequestHeader(":path")
	if err != nil {
		panic(err)
	}
	if path == "/drain" {
		var paths []string
		for {
			v, err := proxywasm.DequeueSharedQueue(c.plugin.queue)
			if errors.Is(err, types.ErrorStatusEmpty) {
				break
			} else if err != nil {
				panic(err)
			}
			paths = append(paths, string(v))
		}
		if err := proxywasm.SendHttpResponse(200, nil, []byte(strings.Join(paths, "\n")), -1); err != nil {
			panic(err)
		}
		return types.ActionPause
	}
	if err := proxywasm.EnqueueSharedQueue(c.plugin.queue, []byte(path)); err != nil {
		panic(err)
	}
	var n int
	for {
		v, cas, err := proxywasm.GetSharedData("hits")
		n = 0
		if err == nil {
			n, _ = strconv.Atoi(string(v))
		} else if !errors.Is(err, types.ErrorStatusNotFound) {
			panic(err)
		}
		n++
		err = proxywasm.SetSharedData("hits", []byte(strconv.Itoa(n)), cas)
		if err == nil {
			break
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			panic(err)
		}
	}
	stale := "accepted"
	if n > 1 {
		// The value's CAS moved on when this request stored n; 1 is older.
		if err := proxywasm.SetSharedData("hits", []byte("0"), 1); errors.Is(err, types.ErrorStatusCasMismatch) {
			stale = "mismatch"
		}
	}
	if err := proxywasm.AddHttpRequestHeader("x-hits", strconv.Itoa(n)); err != nil {
		panic(err)
	}
	if err := proxywasm.AddHttpRequestHeader("x-stale-cas", stale); err != nil {
		panic(err)
	}
	return types.ActionContinue
}
