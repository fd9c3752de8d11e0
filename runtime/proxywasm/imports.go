package proxywasm

import (
	"context"
	"encoding/binary"
	"net/http"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wisp-faas/wisp/activator/filter"
)

// instantiateEnv instantiates the host module "env" with every function
// of ABI v0.2.1. The ones wisp does not implement (gRPC) return
// UNIMPLEMENTED; a guest importing a name that is not here fails to load.
func instantiateEnv(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder("env")
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	export := func(name string, params []api.ValueType, fn func(v *vm, ctx context.Context, stack []uint64) status) {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
			stack[0] = uint64(fn(vmOf(ctx), ctx, stack))
		}), params, []api.ValueType{i32}).Export(name)
	}
	ints := func(n int) []api.ValueType {
		p := make([]api.ValueType, n)
		for i := range p {
			p[i] = i32
		}
		return p
	}
	u32 := func(stack []uint64, i int) uint32 { return api.DecodeU32(stack[i]) }

	export("proxy_log", ints(3), func(v *vm, _ context.Context, s []uint64) status {
		level := u32(s, 0)
		if level > logCritical {
			return statusBadArgument
		}
		msg, ok := v.read(u32(s, 1), u32(s, 2))
		if !ok {
			return statusInvalidMemAccess
		}
		v.log.Log(context.Background(), slogLevel(level), string(msg))
		return statusOK
	})
	export("proxy_get_log_level", ints(1), func(v *vm, _ context.Context, s []uint64) status {
		return v.writeU32(u32(s, 0), proxyLogLevel(v.log))
	})
	export("proxy_get_current_time_nanoseconds", ints(1), func(v *vm, _ context.Context, s []uint64) status {
		if !v.mem.WriteUint64Le(u32(s, 0), uint64(time.Now().UnixNano())) {
			return statusInvalidMemAccess
		}
		return statusOK
	})
	export("proxy_set_tick_period_milliseconds", ints(1), func(v *vm, _ context.Context, s []uint64) status {
		v.setTick(time.Duration(u32(s, 0)) * time.Millisecond)
		return statusOK
	})
	export("proxy_done", nil, func(*vm, context.Context, []uint64) status {
		// The host never waits for a root context to finish: nothing is
		// pending completion.
		return statusNotFound
	})
	export("proxy_set_effective_context", ints(1), func(v *vm, _ context.Context, s []uint64) status {
		id := u32(s, 0)
		if id == rootID {
			v.cur, v.effective = nil, nil
			return statusOK
		}
		st, ok := v.streams[id]
		if !ok {
			return statusBadArgument
		}
		v.effective = st
		return statusOK
	})

	// Buffers.
	export("proxy_get_buffer_bytes", ints(5), func(v *vm, ctx context.Context, s []uint64) status {
		buf, st := v.buffer(u32(s, 0))
		if st != statusOK {
			return st
		}
		start, length := uint64(u32(s, 1)), uint64(u32(s, 2))
		size := uint64(len(*buf))
		if start >= size {
			return statusOK
		}
		length = min(length, size-start)
		if length == 0 {
			return statusOK
		}
		return v.alloc(ctx, (*buf)[start:start+length], u32(s, 3), u32(s, 4))
	})
	export("proxy_get_buffer_status", ints(3), func(v *vm, _ context.Context, s []uint64) status {
		buf, st := v.buffer(u32(s, 0))
		if st != statusOK {
			return st
		}
		if st := v.writeU32(u32(s, 1), uint32(len(*buf))); st != statusOK {
			return st
		}
		return v.writeU32(u32(s, 2), 0)
	})
	export("proxy_set_buffer_bytes", ints(5), func(v *vm, _ context.Context, s []uint64) status {
		buf, st := v.buffer(u32(s, 0))
		if st != statusOK {
			return st
		}
		if t := u32(s, 0); t == bufferHTTPCallResponseBody || t == bufferVMConfiguration || t == bufferPluginConfiguration {
			return statusBadArgument // read-only
		}
		data, ok := v.read(u32(s, 3), u32(s, 4))
		if !ok {
			return statusInvalidMemAccess
		}
		*buf = splice(*buf, int(u32(s, 1)), int(u32(s, 2)), data)
		return statusOK
	})

	// Header maps.
	export("proxy_get_header_map_size", ints(2), func(v *vm, _ context.Context, s []uint64) status {
		m, st := v.headerMap(u32(s, 0))
		if st != statusOK {
			return st
		}
		return v.writeU32(u32(s, 1), uint32(len(encodePairs(m.pairs()))))
	})
	export("proxy_get_header_map_pairs", ints(3), func(v *vm, ctx context.Context, s []uint64) status {
		m, st := v.headerMap(u32(s, 0))
		if st != statusOK {
			return st
		}
		return v.alloc(ctx, encodePairs(m.pairs()), u32(s, 1), u32(s, 2))
	})
	export("proxy_set_header_map_pairs", ints(3), func(v *vm, _ context.Context, s []uint64) status {
		m, st := v.headerMap(u32(s, 0))
		if st != statusOK {
			return st
		}
		raw, ok := v.read(u32(s, 1), u32(s, 2))
		if !ok {
			return statusInvalidMemAccess
		}
		pairs, err := decodePairs(raw)
		if err != nil {
			return statusBadArgument
		}
		if _, ro := m.(fixedMap); ro {
			return statusBadArgument
		}
		for _, p := range m.pairs() {
			m.remove(p[0])
		}
		for _, p := range pairs {
			m.add(p[0], p[1])
		}
		return statusOK
	})
	export("proxy_get_header_map_value", ints(5), func(v *vm, ctx context.Context, s []uint64) status {
		m, key, st := v.headerKey(s)
		if st != statusOK {
			return st
		}
		val, ok := m.get(key)
		if !ok {
			return statusNotFound
		}
		return v.alloc(ctx, []byte(val), u32(s, 3), u32(s, 4))
	})
	export("proxy_add_header_map_value", ints(5), func(v *vm, _ context.Context, s []uint64) status {
		return v.editHeader(s, headerMap.add)
	})
	export("proxy_replace_header_map_value", ints(5), func(v *vm, _ context.Context, s []uint64) status {
		return v.editHeader(s, headerMap.set)
	})
	export("proxy_remove_header_map_value", ints(3), func(v *vm, _ context.Context, s []uint64) status {
		m, key, st := v.headerKey(s)
		if st != statusOK {
			return st
		}
		if _, ro := m.(fixedMap); ro {
			return statusBadArgument
		}
		m.remove(key)
		return statusOK
	})

	// The stream.
	export("proxy_continue_stream", ints(1), func(v *vm, _ context.Context, s []uint64) status {
		return v.streamControl(u32(s, 0), func(st *stream, t uint32) { st.continued[t] = true })
	})
	export("proxy_close_stream", ints(1), func(v *vm, _ context.Context, s []uint64) status {
		return v.streamControl(u32(s, 0), func(st *stream, _ uint32) { st.closed = true })
	})
	export("proxy_send_local_response", ints(8), func(v *vm, _ context.Context, s []uint64) status {
		st := v.target()
		if st == nil {
			return statusBadArgument
		}
		details, ok1 := v.read(u32(s, 1), u32(s, 2))
		body, ok2 := v.read(u32(s, 3), u32(s, 4))
		raw, ok3 := v.read(u32(s, 5), u32(s, 6))
		if !ok1 || !ok2 || !ok3 {
			return statusInvalidMemAccess
		}
		pairs, err := decodePairs(raw)
		if err != nil {
			return statusBadArgument
		}
		code := int(u32(s, 0))
		if code < 200 || code > 999 {
			return statusBadArgument
		}
		h := make(http.Header, len(pairs))
		for _, p := range pairs {
			h.Add(p[0], p[1])
		}
		st.local = &filter.Response{Status: code, Header: h, Body: append([]byte(nil), body...)}
		st.details = string(details)
		st.signal()
		return statusOK
	})
	export("proxy_get_status", ints(3), unimplemented)

	// HTTP and gRPC calls.
	export("proxy_http_call", ints(10), func(v *vm, _ context.Context, s []uint64) status {
		return v.httpCall(s)
	})
	export("proxy_grpc_call", ints(12), unimplemented)
	export("proxy_grpc_stream", ints(9), unimplemented)
	export("proxy_grpc_send", ints(4), unimplemented)
	export("proxy_grpc_cancel", ints(1), unimplemented)
	export("proxy_grpc_close", ints(1), unimplemented)

	// Shared data and queues.
	export("proxy_get_shared_data", ints(5), func(v *vm, ctx context.Context, s []uint64) status {
		key, ok := v.read(u32(s, 0), u32(s, 1))
		if !ok {
			return statusInvalidMemAccess
		}
		val, cas, found := v.p.h.shared.get(v.p.spec.VMID, string(key))
		if !found {
			return statusNotFound
		}
		if st := v.alloc(ctx, val, u32(s, 2), u32(s, 3)); st != statusOK {
			return st
		}
		return v.writeU32(u32(s, 4), cas)
	})
	export("proxy_set_shared_data", ints(5), func(v *vm, _ context.Context, s []uint64) status {
		key, ok1 := v.read(u32(s, 0), u32(s, 1))
		val, ok2 := v.read(u32(s, 2), u32(s, 3))
		if !ok1 || !ok2 {
			return statusInvalidMemAccess
		}
		return v.p.h.shared.set(v.p.spec.VMID, string(key), val, u32(s, 4))
	})
	export("proxy_register_shared_queue", ints(3), func(v *vm, _ context.Context, s []uint64) status {
		name, ok := v.read(u32(s, 0), u32(s, 1))
		if !ok {
			return statusInvalidMemAccess
		}
		return v.writeU32(u32(s, 2), v.p.h.queues.register(v.p.spec.VMID, string(name), v))
	})
	export("proxy_resolve_shared_queue", ints(5), func(v *vm, _ context.Context, s []uint64) status {
		vmID, ok1 := v.read(u32(s, 0), u32(s, 1))
		name, ok2 := v.read(u32(s, 2), u32(s, 3))
		if !ok1 || !ok2 {
			return statusInvalidMemAccess
		}
		token, found := v.p.h.queues.resolve(string(vmID), string(name))
		if !found {
			return statusNotFound
		}
		return v.writeU32(u32(s, 4), token)
	})
	export("proxy_enqueue_shared_queue", ints(3), func(v *vm, _ context.Context, s []uint64) status {
		data, ok := v.read(u32(s, 1), u32(s, 2))
		if !ok {
			return statusInvalidMemAccess
		}
		token := u32(s, 0)
		owner, st := v.p.h.queues.enqueue(token, data)
		if st == statusOK && owner != nil && !owner.isDead() && owner.fn.queueReady != nil {
			// The owner may be this very vm, whose lock the caller holds.
			owner.p.bg.Go(func() { owner.rootCall(owner.fn.queueReady, rootID, uint64(token)) })
		}
		return st
	})
	export("proxy_dequeue_shared_queue", ints(3), func(v *vm, ctx context.Context, s []uint64) status {
		item, st := v.p.h.queues.dequeue(u32(s, 0))
		if st != statusOK {
			return st
		}
		return v.alloc(ctx, item, u32(s, 1), u32(s, 2))
	})

	// Metrics.
	export("proxy_define_metric", ints(4), func(v *vm, _ context.Context, s []uint64) status {
		name, ok := v.read(u32(s, 1), u32(s, 2))
		if !ok {
			return statusInvalidMemAccess
		}
		id, st := v.p.h.metrics.define(v.p.spec.Name, u32(s, 0), string(name))
		if st != statusOK {
			return st
		}
		return v.writeU32(u32(s, 3), id)
	})
	export("proxy_increment_metric", []api.ValueType{i32, i64}, func(v *vm, _ context.Context, s []uint64) status {
		m := v.p.h.metrics.get(u32(s, 0))
		if m == nil {
			return statusNotFound
		}
		return m.increment(int64(s[1]))
	})
	export("proxy_record_metric", []api.ValueType{i32, i64}, func(v *vm, _ context.Context, s []uint64) status {
		m := v.p.h.metrics.get(u32(s, 0))
		if m == nil {
			return statusNotFound
		}
		return m.record(s[1])
	})
	export("proxy_get_metric", ints(2), func(v *vm, _ context.Context, s []uint64) status {
		m := v.p.h.metrics.get(u32(s, 0))
		if m == nil {
			return statusNotFound
		}
		if m.kind == metricHistogram {
			return statusBadArgument // a histogram has no single value
		}
		if !v.mem.WriteUint64Le(u32(s, 1), uint64(m.value.Load())) {
			return statusInvalidMemAccess
		}
		return statusOK
	})

	// Properties and foreign functions.
	export("proxy_get_property", ints(4), func(v *vm, ctx context.Context, s []uint64) status {
		path, ok := v.read(u32(s, 0), u32(s, 1))
		if !ok {
			return statusInvalidMemAccess
		}
		val, found := v.property(string(path))
		if !found {
			return statusNotFound
		}
		return v.alloc(ctx, val, u32(s, 2), u32(s, 3))
	})
	export("proxy_set_property", ints(4), func(v *vm, _ context.Context, s []uint64) status {
		path, ok1 := v.read(u32(s, 0), u32(s, 1))
		val, ok2 := v.read(u32(s, 2), u32(s, 3))
		if !ok1 || !ok2 {
			return statusInvalidMemAccess
		}
		v.setProperty(string(path), val)
		return statusOK
	})
	export("proxy_call_foreign_function", ints(6), func(*vm, context.Context, []uint64) status {
		return statusNotFound // the host registers no foreign functions
	})

	_, err := b.Instantiate(ctx)
	return err
}

func unimplemented(*vm, context.Context, []uint64) status { return statusUnimplemented }

// read returns a view of guest memory; it is valid until the guest runs.
func (v *vm) read(ptr, size uint32) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	return v.mem.Read(ptr, size)
}

func (v *vm) writeU32(ptr, val uint32) status {
	if !v.mem.WriteUint32Le(ptr, val) {
		return statusInvalidMemAccess
	}
	return statusOK
}

// target returns the stream the running call acts on: the effective
// context if the guest chose one, else the stream the call is for; nil is
// the root context.
func (v *vm) target() *stream {
	if v.effective != nil {
		return v.effective
	}
	return v.cur
}

// buffer returns the buffer of type t available to the running call.
func (v *vm) buffer(t uint32) (*[]byte, status) {
	s := v.target()
	switch t {
	case bufferHTTPRequestBody:
		if s != nil && s.reqBodyStarted {
			return &s.reqBody, statusOK
		}
	case bufferHTTPResponseBody:
		if s != nil && s.respBodyStarted {
			return &s.respBody, statusOK
		}
	case bufferHTTPCallResponseBody:
		if v.callResp != nil {
			return &v.callResp.body, statusOK
		}
	case bufferVMConfiguration, bufferPluginConfiguration:
		if v.config != nil && v.configBuf == int(t) {
			return v.config, statusOK
		}
	default:
		if t > 8 {
			return nil, statusBadArgument
		}
	}
	return nil, statusNotFound
}

// splice replaces buf[start:start+length] (clamped to buf) with data, in
// a new slice: buf may alias a chunk the host does not own.
func splice(buf []byte, start, length int, data []byte) []byte {
	start = min(start, len(buf))
	end := start + min(length, len(buf)-start)
	out := make([]byte, 0, len(buf)-(end-start)+len(data))
	out = append(out, buf[:start]...)
	out = append(out, data...)
	return append(out, buf[end:]...)
}

// headerMap returns the header map of type t available to the running
// call.
func (v *vm) headerMap(t uint32) (headerMap, status) {
	if t > mapMax {
		return nil, statusBadArgument
	}
	s := v.target()
	switch t {
	case mapRequestHeaders:
		if s != nil {
			return requestMap{s.x.Request}, statusOK
		}
	case mapResponseHeaders:
		if s != nil && s.respStarted {
			return responseMap{&s.x.Status, s.x.Header}, statusOK
		}
	case mapRequestTrailers:
		if s != nil && s.reqTrailers != nil {
			return trailerMap{s.reqTrailers}, statusOK
		}
	case mapResponseTrailers:
		if s != nil && s.respTrailers != nil {
			return trailerMap{s.respTrailers}, statusOK
		}
	case mapHTTPCallResponseHeaders:
		if v.callResp != nil {
			return fixedMap(v.callResp.headers), statusOK
		}
	case mapHTTPCallResponseTrail:
		if v.callResp != nil {
			return fixedMap(v.callResp.trailers), statusOK
		}
	}
	return nil, statusNotFound // gRPC metadata, or trailers outside their callbacks
}

// headerKey reads the map type and key of a header map call: (type,
// key_ptr, key_size, ...). Keys are matched in lower case.
func (v *vm) headerKey(s []uint64) (headerMap, string, status) {
	m, st := v.headerMap(api.DecodeU32(s[0]))
	if st != statusOK {
		return nil, "", st
	}
	key, ok := v.read(api.DecodeU32(s[1]), api.DecodeU32(s[2]))
	if !ok {
		return nil, "", statusInvalidMemAccess
	}
	return m, lower(key), statusOK
}

// editHeader is proxy_add/replace_header_map_value(type, key, value).
func (v *vm) editHeader(s []uint64, edit func(headerMap, string, string)) status {
	m, key, st := v.headerKey(s)
	if st != statusOK {
		return st
	}
	if _, ro := m.(fixedMap); ro {
		return statusBadArgument
	}
	val, ok := v.read(api.DecodeU32(s[3]), api.DecodeU32(s[4]))
	if !ok {
		return statusInvalidMemAccess
	}
	edit(m, key, string(val))
	return statusOK
}

// streamControl applies proxy_continue_stream or proxy_close_stream to
// the target stream and wakes it.
func (v *vm) streamControl(t uint32, apply func(*stream, uint32)) status {
	if t > streamMax {
		return statusBadArgument
	}
	s := v.target()
	if s == nil || t > streamResponse {
		return statusBadArgument // no HTTP stream, or an L4 stream type
	}
	apply(s, t)
	s.signal()
	return statusOK
}

// lower returns key in lower case, allocating only when it must.
func lower(key []byte) string {
	for _, c := range key {
		if 'A' <= c && c <= 'Z' {
			b := make([]byte, len(key))
			for i, c := range key {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				b[i] = c
			}
			return string(b)
		}
	}
	return string(key)
}

// putU64 encodes an integer property as Envoy does: 8 bytes, little
// endian.
func putU64(n int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(n)) }
