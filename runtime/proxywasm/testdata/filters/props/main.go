// Command props is a proxy-wasm filter that reads host properties and
// reports them in request headers x-prop-<name> (and, for the response
// code, the response header x-prop-response-code). A property the host
// does not know is reported as "notfound".
package main

import (
	"encoding/binary"
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &httpContext{} })
}

type httpContext struct{ types.DefaultHttpContext }

var strs = map[string][]string{
	"path":           {"request", "path"},
	"url-path":       {"request", "url_path"},
	"method":         {"request", "method"},
	"host":           {"request", "host"},
	"query":          {"request", "query"},
	"scheme":         {"request", "scheme"},
	"protocol":       {"request", "protocol"},
	"source-address": {"source", "address"},
	"plugin-name":    {"plugin_name"},
	"plugin-root-id": {"plugin_root_id"},
	"function":       {"wisp", "function"},
	"namespace":      {"wisp", "namespace"},
	"revision":       {"wisp", "revision"},
	"unknown":        {"no", "such", "property"},
}

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	headers, err := proxywasm.GetPropertyMap([]string{"request", "headers"})
	if err != nil {
		panic(err)
	}
	var names []string
	for _, h := range headers {
		names = append(names, h[0])
	}
	sort.Strings(names)
	for name, path := range strs {
		v, err := proxywasm.GetProperty(path)
		value := string(v)
		if errors.Is(err, types.ErrorStatusNotFound) {
			value = "notfound"
		} else if err != nil {
			panic(err)
		}
		add("x-prop-"+name, value)
	}
	add("x-prop-header-names", strings.Join(names, ","))
	port, err := proxywasm.GetProperty([]string{"source", "port"})
	if err != nil {
		panic(err)
	}
	add("x-prop-source-port", strconv.FormatUint(binary.LittleEndian.Uint64(port), 10))
	size, err := proxywasm.GetProperty([]string{"request", "size"})
	if err != nil {
		panic(err)
	}
	add("x-prop-size", strconv.FormatUint(binary.LittleEndian.Uint64(size), 10))
	return types.ActionContinue
}

func (*httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	code, err := proxywasm.GetProperty([]string{"response", "code"})
	if err != nil {
		panic(err)
	}
	if err := proxywasm.AddHttpResponseHeader("x-prop-response-code", strconv.FormatUint(binary.LittleEndian.Uint64(code), 10)); err != nil {
		panic(err)
	}
	return types.ActionContinue
}

func add(name, value string) {
	if err := proxywasm.AddHttpRequestHeader(name, value); err != nil {
		panic(err)
	}
}
