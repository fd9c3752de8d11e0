package filter

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// headerWriter runs the response phase when the function sends its
// status, and passes the body on untouched.
type headerWriter struct {
	w       http.ResponseWriter
	x       *Exchange
	streams []Stream

	wrote    bool   // the response phase ran
	replaced []byte // non-nil: a filter replaced the response with this body
}

func (hw *headerWriter) Header() http.Header { return hw.w.Header() }

// Unwrap lets http.ResponseController reach the connection (Hijack for
// WebSocket upgrades, deadlines).
func (hw *headerWriter) Unwrap() http.ResponseWriter { return hw.w }

// responsePhase runs the streams' Response in reverse order. It reports
// whether a filter replaced the response.
func (hw *headerWriter) responsePhase(code int) bool {
	hw.wrote = true
	hw.x.Status, hw.x.Header = code, hw.w.Header()
	for i := len(hw.streams) - 1; i >= 0; i-- {
		if r := hw.streams[i].Response(hw.x); r != nil {
			replaceHeader(hw.w.Header(), r.Header)
			hw.x.Status = cmpStatus(r.Status)
			hw.replaced = r.Body
			if hw.replaced == nil {
				hw.replaced = []byte{}
			}
		}
	}
	return hw.replaced != nil
}

func (hw *headerWriter) WriteHeader(code int) {
	if informational(code) {
		hw.w.WriteHeader(code)
		return
	}
	if hw.wrote {
		return
	}
	replaced := hw.responsePhase(code)
	hw.w.WriteHeader(hw.x.Status)
	if replaced {
		_, _ = hw.w.Write(hw.replaced)
	}
}

func (hw *headerWriter) Write(b []byte) (int, error) {
	if !hw.wrote {
		hw.WriteHeader(http.StatusOK)
	}
	if hw.replaced != nil {
		return len(b), nil
	}
	return hw.w.Write(b)
}

func (hw *headerWriter) Flush() {
	if !hw.wrote {
		hw.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(hw.w).Flush()
}

// finish completes a response the function ended without writing.
func (hw *headerWriter) finish() {
	if !hw.wrote {
		hw.WriteHeader(http.StatusOK)
	}
}

// bodyWriter is a headerWriter that also passes the response body
// through the BodyStreams, and holds the headers back until the first
// bytes of body come out of them.
type bodyWriter struct {
	headerWriter
	bodies      []BodyStream
	headersSent bool
	// pending is the first bytes of body the streams passed on, held
	// until the next write or the end: a body that is all there at the
	// end gets its Content-Length back.
	pending []byte
	// local is a local response given while the function read the
	// request body; it may be set by the goroutine that reads the body.
	local atomic.Pointer[Response]
}

func (bw *bodyWriter) WriteHeader(code int) {
	if informational(code) {
		bw.w.WriteHeader(code)
		return
	}
	if bw.wrote {
		return
	}
	if bw.responsePhase(code) {
		bw.sendHeaders(len(bw.replaced))
		_, _ = bw.w.Write(bw.replaced)
	}
}

func (bw *bodyWriter) Write(b []byte) (int, error) {
	if !bw.wrote {
		bw.WriteHeader(http.StatusOK)
	}
	if bw.replaced != nil || bw.local.Load() != nil {
		return len(b), nil
	}
	if out := bw.responseBody(b, false); len(out) > 0 {
		if !bw.headersSent && bw.pending == nil {
			bw.pending = bytes.Clone(out)
			return len(b), nil
		}
		if err := bw.sendPending(); err != nil {
			return 0, err
		}
		if _, err := bw.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// sendPending sends the headers, without a length, and the body held.
func (bw *bodyWriter) sendPending() error {
	bw.sendHeaders(-1)
	if bw.pending == nil {
		return nil
	}
	_, err := bw.w.Write(bw.pending)
	bw.pending = nil
	return err
}

func (bw *bodyWriter) Flush() {
	if bw.pending != nil {
		_ = bw.sendPending()
	}
	if bw.headersSent {
		_ = http.NewResponseController(bw.w).Flush()
	}
}

// responseBody passes a chunk through the BodyStreams in reverse order.
func (bw *bodyWriter) responseBody(chunk []byte, end bool) []byte {
	for i := len(bw.bodies) - 1; i >= 0; i-- {
		if len(chunk) == 0 && !end {
			return nil
		}
		chunk = bw.bodies[i].ResponseBody(bw.x, chunk, end)
	}
	return chunk
}

// sendHeaders sends the held headers with Content-Length set to length,
// or without one when length is negative (the body streams may have
// changed the length the function declared).
func (bw *bodyWriter) sendHeaders(length int) {
	if bw.headersSent {
		return
	}
	bw.headersSent = true
	h := bw.w.Header()
	h.Del("Content-Length")
	if length >= 0 && bw.x.Request.Method != http.MethodHead &&
		bw.x.Status != http.StatusNoContent && bw.x.Status != http.StatusNotModified && !hasTrailers(h) {
		h.Set("Content-Length", strconv.Itoa(length))
	}
	bw.w.WriteHeader(bw.x.Status)
}

// hasTrailers reports whether a response declares trailers, which need
// a body without a length.
func hasTrailers(h http.Header) bool {
	if len(h["Trailer"]) > 0 {
		return true
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

func (bw *bodyWriter) finish() {
	if local := bw.local.Load(); local != nil {
		if !bw.headersSent {
			bw.headersSent = true
			clear(bw.w.Header())
			writeLocal(bw.w, bw.x, nil, local)
		}
		return
	}
	if !bw.wrote {
		bw.WriteHeader(http.StatusOK)
	}
	if bw.replaced != nil {
		return
	}
	out := bw.responseBody(nil, true)
	if !bw.headersSent {
		out = append(bw.pending, out...)
		bw.pending = nil
		bw.sendHeaders(len(out))
	}
	if len(out) > 0 {
		_, _ = bw.w.Write(out)
	}
	bw.responseTrailers()
}

// responseTrailers lets the TrailerStreams see and change the trailers
// the function set: those it declared in its Trailer header and those
// named with http.TrailerPrefix.
func (bw *bodyWriter) responseTrailers() {
	h := bw.w.Header()
	declared := map[string]bool{}
	for _, v := range h.Values("Trailer") {
		for _, name := range strings.Split(v, ",") {
			if name = http.CanonicalHeaderKey(strings.TrimSpace(name)); name != "" {
				declared[name] = true
			}
		}
	}
	trailers := http.Header{}
	for k, v := range h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			trailers[http.CanonicalHeaderKey(name)] = v
		} else if declared[k] {
			trailers[k] = v
		}
	}
	if len(trailers) == 0 {
		return
	}
	for i := len(bw.bodies) - 1; i >= 0; i-- {
		if ts, ok := bw.bodies[i].(TrailerStream); ok {
			ts.ResponseTrailers(bw.x, trailers)
		}
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) || declared[k] {
			delete(h, k)
		}
	}
	for k, v := range trailers {
		h[http.TrailerPrefix+k] = v
	}
}

// errAnswered is what the function reads from a request body after a
// filter answered the request itself.
var errAnswered = errors.New("a filter answered the request while its body was read")

// requestBody passes the request body through the BodyStreams as the
// function reads it.
type requestBody struct {
	body    io.ReadCloser
	x       *Exchange
	streams []BodyStream
	answer  *atomic.Pointer[Response]

	buf []byte
	out []byte // passed through the streams, not yet read
	eof bool
	err error
}

func (b *requestBody) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		if b.eof {
			return 0, io.EOF
		}
		if b.buf == nil {
			b.buf = make([]byte, 32<<10)
		}
		n, err := b.body.Read(b.buf)
		end := errors.Is(err, io.EOF)
		if err != nil && !end {
			b.err = err
			if n == 0 {
				return 0, err
			}
		}
		chunk := b.buf[:n]
		for _, s := range b.streams {
			if len(chunk) == 0 && !end {
				break
			}
			var resp *Response
			if chunk, resp = s.RequestBody(b.x, chunk, end); resp != nil {
				b.answer.Store(resp)
				b.err = errAnswered
				return 0, b.err
			}
		}
		b.out, b.eof = chunk, end
		if end && len(b.x.Request.Trailer) > 0 {
			for _, s := range b.streams {
				if ts, ok := s.(TrailerStream); ok {
					ts.RequestTrailers(b.x, b.x.Request.Trailer)
				}
			}
		}
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

func (b *requestBody) Close() error { return b.body.Close() }

func informational(code int) bool { return code >= 100 && code < 200 }

func cmpStatus(code int) int {
	if code == 0 {
		return http.StatusOK
	}
	return code
}

// replaceHeader makes dst hold exactly src's fields.
func replaceHeader(dst, src http.Header) {
	clear(dst)
	for k, v := range src {
		dst[k] = v
	}
}
