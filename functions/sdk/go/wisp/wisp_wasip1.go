//go:build wasip1

package wisp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/url"
	"unsafe"
)

// Results of wisp_handle, as specified in docs/abi.md.
const (
	resultOK          = 0
	resultNoHandler   = 1
	resultBadRequest  = 2
	resultBadResponse = 3
	keepBufferAtMost  = 1 << 20 // bytes of request or response buffer kept between calls
	sniffLen          = 512     // as net/http
)

var (
	handler http.Handler

	// reqBuf and resp are reused across calls: one call runs at a time.
	reqBuf []byte
	resp   responseWriter
)

// Handle registers h as the function's handler. It must be called once,
// from an init function: a reactor never runs main. A later call replaces
// the handler.
func Handle(h http.Handler) {
	if h == nil {
		panic("wisp.Handle: nil handler")
	}
	handler = h
}

// abiVersion1 marks the module as speaking version 1 of wisp's http ABI.
//
//go:wasmexport wisp_abi_version_1
func abiVersion1() {}

// requestRead copies the encoded request into buf and returns how many
// bytes it copied.
//
//go:wasmimport wisp request_read
func requestRead(buf unsafe.Pointer, size uint32) uint32

// responseWrite hands the encoded response to the host; it returns 0 when
// the host accepted it.
//
//go:wasmimport wisp response_write
func responseWrite(buf unsafe.Pointer, size uint32) uint32

// handle serves the request of reqLen bytes that the host holds.
//
//go:wasmexport wisp_handle
func handle(reqLen uint32) uint32 {
	if handler == nil {
		return resultNoHandler
	}
	if uint32(cap(reqBuf)) < reqLen {
		reqBuf = make([]byte, reqLen)
	}
	buf := reqBuf[:reqLen]
	if reqLen > 0 && requestRead(unsafe.Pointer(&buf[0]), reqLen) != reqLen {
		return resultBadRequest
	}
	r, err := decodeRequest(buf)
	if err != nil {
		return resultBadRequest
	}

	resp.reset()
	handler.ServeHTTP(&resp, r)
	out := resp.encode()
	var rc uint32
	if len(out) > 0 {
		rc = responseWrite(unsafe.Pointer(&out[0]), uint32(len(out)))
	}
	if cap(reqBuf) > keepBufferAtMost {
		reqBuf = nil
	}
	if cap(resp.out) > keepBufferAtMost || resp.body.Cap() > keepBufferAtMost {
		resp = responseWriter{}
	}
	if rc != 0 {
		return resultBadResponse
	}
	return resultOK
}

var errMalformed = errors.New("malformed request")

// decoder reads the fields of an encoded request in order.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) u32() uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.err = errMalformed
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.u32()
	if d.err != nil || uint32(len(d.b)) < n {
		d.err = errMalformed
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

// decodeRequest builds the request encoded in b (docs/abi.md, "Request").
// The body aliases b.
func decodeRequest(b []byte) (*http.Request, error) {
	d := decoder{b: b}
	method := d.string()
	uri := d.string()
	host := d.string()
	proto := d.string()
	remote := d.string()
	n := d.u32()
	if d.err == nil && uint64(n)*8 > uint64(len(d.b)) {
		d.err = errMalformed
	}
	var h http.Header
	if d.err == nil {
		h = make(http.Header, n)
		for range n {
			k := d.string()
			v := d.string()
			if d.err != nil {
				break
			}
			h[k] = append(h[k], v)
		}
	}
	body := d.bytes()
	if d.err != nil {
		return nil, d.err
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, err
	}
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		proto, major, minor = "HTTP/1.1", 1, 1
	}
	r := &http.Request{
		Method:        method,
		URL:           u,
		Proto:         proto,
		ProtoMajor:    major,
		ProtoMinor:    minor,
		Header:        h,
		ContentLength: int64(len(body)),
		Host:          host,
		RemoteAddr:    remote,
		RequestURI:    uri,
		Body:          http.NoBody,
	}
	if len(body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return r, nil
}

// responseWriter buffers the handler's response.
type responseWriter struct {
	header  http.Header
	written http.Header // header as of WriteHeader, as net/http
	status  int
	body    bytes.Buffer
	out     []byte
}

func (w *responseWriter) reset() {
	w.header = make(http.Header)
	w.written = nil
	w.status = 0
	w.body.Reset()
}

// Header returns the header that WriteHeader sends.
func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader records the status and freezes the header. Informational
// (1xx) codes and calls after the first are ignored.
func (w *responseWriter) WriteHeader(code int) {
	if w.status != 0 || code < 200 || code > 999 {
		return
	}
	w.status = code
	w.written = w.header.Clone()
}

// Write appends p to the body, sending the status 200 first if the
// handler has not chosen one.
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.body.Write(p)
}

// WriteString appends s to the body, as Write.
func (w *responseWriter) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.body.WriteString(s)
}

// Flush does nothing: the response is sent when the handler returns.
func (w *responseWriter) Flush() {}

// encode returns the response encoded as in docs/abi.md, "Response".
func (w *responseWriter) encode() []byte {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	h := w.written
	body := w.body.Bytes()
	if _, ok := h["Content-Type"]; !ok && len(body) > 0 && h.Get("Content-Encoding") == "" {
		h.Set("Content-Type", http.DetectContentType(body[:min(len(body), sniffLen)]))
	}
	size := 4 + 4 + 4 + len(body)
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			size += 8 + len(k) + len(v)
			n++
		}
	}
	out := w.out[:0]
	if cap(out) < size {
		out = make([]byte, 0, size)
	}
	out = binary.LittleEndian.AppendUint32(out, uint32(w.status))
	out = binary.LittleEndian.AppendUint32(out, uint32(n))
	for k, vs := range h {
		for _, v := range vs {
			out = appendString(out, k)
			out = appendString(out, v)
		}
	}
	out = binary.LittleEndian.AppendUint32(out, uint32(len(body)))
	out = append(out, body...)
	w.out = out
	return out
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
