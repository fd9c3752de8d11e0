package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero"
	wapi "github.com/tetratelabs/wazero/api"
	"github.com/wisp-faas/wisp/runtime"
)

// The http ABI, version 1: see docs/abi.md.
const (
	hostModule       = "wisp"
	abiVersionExport = "wisp_abi_version_1"
)

// Results of wisp_handle.
const (
	handleOK          = 0
	handleNoHandler   = 1
	handleBadRequest  = 2
	handleBadResponse = 3
)

// instantiateHostModule adds the "wisp" host module to rt: the two
// functions through which an http-ABI guest reads its request and hands
// over its response.
func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	i32 := wapi.ValueTypeI32
	_, err := rt.NewHostModuleBuilder(hostModule).
		NewFunctionBuilder().
		WithGoModuleFunction(wapi.GoModuleFunc(requestRead), []wapi.ValueType{i32, i32}, []wapi.ValueType{i32}).
		WithParameterNames("buf", "buf_len").
		Export("request_read").
		NewFunctionBuilder().
		WithGoModuleFunction(wapi.GoModuleFunc(responseWrite), []wapi.ValueType{i32, i32}, []wapi.ValueType{i32}).
		WithParameterNames("buf", "buf_len").
		Export("response_write").
		Instantiate(ctx)
	return err
}

// requestRead implements wisp.request_read(buf, buf_len) -> copied: it
// copies the first min(buf_len, len(request)) bytes of the encoded
// request to buf.
func requestRead(ctx context.Context, mod wapi.Module, stack []uint64) {
	c, _ := ctx.Value(callKey{}).(*call)
	buf, size := uint32(stack[0]), uint32(stack[1])
	if c == nil {
		stack[0] = 0
		return
	}
	n := min(size, uint32(len(c.req)))
	if !mod.Memory().Write(buf, c.req[:n]) {
		panic(fmt.Errorf("wisp.request_read: buffer [%d, %d) is outside the guest's memory", buf, uint64(buf)+uint64(n)))
	}
	stack[0] = uint64(n)
}

// responseWrite implements wisp.response_write(buf, buf_len) -> status: it
// copies the encoded response out of the guest. It returns 0, or 1 when
// the response is too large.
func responseWrite(ctx context.Context, mod wapi.Module, stack []uint64) {
	c, _ := ctx.Value(callKey{}).(*call)
	buf, size := uint32(stack[0]), uint32(stack[1])
	if c == nil {
		stack[0] = 1
		return
	}
	if size > maxResponseBytes {
		c.err = fmt.Errorf("the response is %d bytes, more than the %d bytes allowed", size, maxResponseBytes)
		stack[0] = 1
		return
	}
	b, ok := mod.Memory().Read(buf, size)
	if !ok {
		panic(fmt.Errorf("wisp.response_write: buffer [%d, %d) is outside the guest's memory", buf, uint64(buf)+uint64(size)))
	}
	c.resp = append(c.resp[:0], b...)
	stack[0] = 0
}

// startReactor instantiates the module for an http-ABI instance, from the
// Revision's snapshot when there is one, and by running _initialize
// otherwise (making the snapshot if the Revision may have one).
func (i *instance) startReactor(ctx context.Context) error {
	m := i.m
	cfg := i.moduleConfig(eofReader{}, i.stdout)
	if s := m.snap.Load(); s != nil {
		mod, err := i.instantiate(ctx, cfg)
		if err != nil {
			return fmt.Errorf("instantiating the module: %w", err)
		}
		if err := s.restore(mod); err != nil {
			_ = mod.Close(ctx)
			return err
		}
		i.setModule(mod)
		return nil
	}

	mod, err := i.instantiate(ctx, cfg)
	if err != nil {
		return fmt.Errorf("instantiating the module: %w", err)
	}
	var fresh []byte
	snapshotting := i.p.snapshots(m)
	if snapshotting {
		b, _ := mod.Memory().Read(0, mod.Memory().Size())
		fresh = append([]byte(nil), b...)
	}
	if init := mod.ExportedFunction("_initialize"); init != nil {
		c := i.startCall(ctx, mod)
		err := init.CallWithStack(c.ctx, nil)
		interrupted := i.finish(c)
		if err != nil || interrupted {
			_ = mod.Close(ctx)
			i.stdout.Flush()
			i.stderr.Flush()
			if interrupted {
				return fmt.Errorf("_initialize did not finish: %w", context.Cause(c.ctx))
			}
			return fmt.Errorf("_initialize failed: %w", err)
		}
	}
	if snapshotting {
		m.snapMu.Lock()
		if m.snap.Load() == nil {
			s, err := takeSnapshot(mod, fresh, m.globals, i.p.snapshotDir())
			if err != nil {
				i.log.Warn("no snapshot; instances will run _initialize", "error", err)
			} else {
				m.snap.Store(s)
				i.log.Info("snapshot taken", "pages", s.pages, "bytes", s.size, "runs", len(s.runs))
			}
		}
		m.snapMu.Unlock()
	}
	i.setModule(mod)
	return nil
}

func (i *instance) setModule(mod wapi.Module) {
	i.mod = mod
	i.handle = mod.ExportedFunction("wisp_handle")
	i.stack = make([]uint64, 1)
}

// serveReactor runs one request through wisp_handle.
func (i *instance) serveReactor(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte) {
	c := i.startCall(ctx, i.mod)
	c.req = encodeRequest(r, body)
	i.stack[0] = uint64(len(c.req))
	err := i.handle.CallWithStack(context.WithValue(c.ctx, callKey{}, c), i.stack)
	interrupted := i.finish(c)
	result := uint32(i.stack[0])

	switch {
	case interrupted && err != nil, i.mod.IsClosed() && isContextExit(err):
		i.ended(w, c.ctx, false)
		// Interrupted mid-call, the instance cannot be trusted again, but
		// nothing crashed: replace it without reporting a reason.
		i.log.Debug("instance discarded: its request was interrupted", "cause", context.Cause(c.ctx))
		i.end("")
		return
	case err != nil:
		what := err.Error()
		if code, ok := exitCode(err); ok {
			what = fmt.Sprintf("the guest exited with code %d", code)
		}
		what = firstLine(what)
		runtime.WriteError(w, http.StatusInternalServerError, fmt.Sprintf("revision %s failed: %s", i.m.rev.Name, what))
		i.end(i.crashed(what))
		return
	}
	var resp *response
	switch result {
	case handleOK:
		if c.err == nil {
			resp, c.err = decodeResponse(c.resp)
		}
	case handleNoHandler:
		c.err = errors.New("no handler is registered: call wisp.Handle from an init function (a reactor never runs main)")
	case handleBadRequest:
		c.err = errors.New("the guest could not decode the request: is its SDK of ABI version 1?")
	case handleBadResponse:
		if c.err == nil {
			c.err = errors.New("the host refused the response")
		}
	default:
		c.err = fmt.Errorf("wisp_handle returned %d", result)
	}
	if c.err == nil && len(c.resp) == 0 {
		c.err = errors.New("the guest returned without writing a response")
	}
	if c.err != nil {
		i.log.Warn("bad response from the guest", "error", c.err)
		runtime.WriteError(w, http.StatusInternalServerError, fmt.Sprintf("revision %s answered badly: %v", i.m.rev.Name, c.err))
	} else {
		resp.write(w, r.Method == http.MethodHead)
	}
	if interrupted { // the deadline passed just as the guest returned
		i.log.Debug("instance discarded: interrupted after answering")
		i.end("")
	}
}

// isContextExit reports whether err is wazero closing a module because
// its call's context ended.
func isContextExit(err error) bool {
	code, ok := exitCode(err)
	return ok && (code == 0xffffffff || code == 0xefffffff) // sys.ExitCodeContextCanceled, sys.ExitCodeDeadlineExceeded
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// eofReader is an empty stdin.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// encodeRequest encodes r with body as docs/abi.md specifies: method,
// request URI, host, protocol, remote address, headers, body.
func encodeRequest(r *http.Request, body []byte) []byte {
	uri := r.URL.RequestURI()
	size := 4*7 + len(r.Method) + len(uri) + len(r.Host) + len(r.Proto) + len(r.RemoteAddr) + len(body)
	n := 0
	for k, vs := range r.Header {
		for _, v := range vs {
			size += 8 + len(k) + len(v)
			n++
		}
	}
	b := make([]byte, 0, size)
	b = appendString(b, r.Method)
	b = appendString(b, uri)
	b = appendString(b, r.Host)
	b = appendString(b, r.Proto)
	b = appendString(b, r.RemoteAddr)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	for k, vs := range r.Header {
		for _, v := range vs {
			b = appendString(b, k)
			b = appendString(b, v)
		}
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// response is a decoded http-ABI response.
type response struct {
	status int
	header [][2]string
	body   []byte
}

var errMalformed = errors.New("malformed response encoding (docs/abi.md, \"Response\")")

// decodeResponse decodes b: status, headers, body. The body aliases b.
func decodeResponse(b []byte) (*response, error) {
	u32 := func() (uint32, bool) {
		if len(b) < 4 {
			return 0, false
		}
		v := binary.LittleEndian.Uint32(b)
		b = b[4:]
		return v, true
	}
	bytes := func() ([]byte, bool) {
		n, ok := u32()
		if !ok || uint32(len(b)) < n {
			return nil, false
		}
		v := b[:n]
		b = b[n:]
		return v, true
	}
	status, ok := u32()
	if !ok {
		return nil, errMalformed
	}
	if status < 100 || status > 999 {
		return nil, fmt.Errorf("status %d is not an HTTP status code", status)
	}
	n, ok := u32()
	if !ok || uint64(n)*8 > uint64(len(b)) {
		return nil, errMalformed
	}
	resp := &response{status: int(status), header: make([][2]string, 0, n)}
	for range n {
		k, ok1 := bytes()
		v, ok2 := bytes()
		if !ok1 || !ok2 {
			return nil, errMalformed
		}
		resp.header = append(resp.header, [2]string{string(k), string(v)})
	}
	if resp.body, ok = bytes(); !ok || len(b) != 0 {
		return nil, errMalformed
	}
	return resp, nil
}

// write sends resp. Invalid header fields are dropped, and Content-Length
// is the body's length whatever the guest said (except for HEAD, where
// the guest's stands).
func (resp *response) write(w http.ResponseWriter, head bool) {
	h := w.Header()
	for _, kv := range resp.header {
		if !validHeaderName(kv[0]) || !validHeaderValue(kv[1]) {
			continue
		}
		k := http.CanonicalHeaderKey(kv[0])
		switch k {
		case "Content-Length":
			if !head {
				continue
			}
		case "Transfer-Encoding", "Connection":
			continue
		}
		h.Add(k, kv[1])
	}
	if !head {
		h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	}
	w.WriteHeader(resp.status)
	if !head {
		_, _ = w.Write(resp.body)
	}
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s holds no control characters but tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
