package proxywasm

import (
	"net/http"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wisp-faas/wisp/activator/filter"
)

// stream is one exchange's HTTP context on one vm: the filter.BodyStream
// that drives the guest's callbacks for it.
type stream struct {
	p     *Plugin
	v     *vm
	id    uint32
	x     *filter.Exchange
	start time.Time
	wake  chan struct{} // signalled when the guest resumes, answers or closes the stream, or its vm ends

	// Guarded by v.mu: the guest changes them from any goroutine that
	// calls into the vm (the stream's own, an http call's, a tick's).
	local           *filter.Response // proxy_send_local_response
	details         string           // its response code details
	continued       [2]bool          // proxy_continue_stream, by stream type
	closed          bool             // proxy_close_stream
	props           map[string][]byte
	respStarted     bool // the response headers are known
	reqBodyStarted  bool
	respBodyStarted bool
	reqBody         []byte // the request body the guest has been shown and not let go
	respBody        []byte
	reqAlias        bool // reqBody is the caller's chunk, valid only during the call
	respAlias       bool
	reqSize         int64 // body bytes seen, for request.size and response.size
	respSize        int64
	reqTrailers     http.Header // set during proxy_on_request_trailers
	respTrailers    http.Header // set during proxy_on_response_trailers

	// Owned by the goroutines running the phases, which run in turn.
	failed   bool // the vm crashed under the stream
	answered bool // the response body was replaced by a local response, or dropped
	respSent bool // response body bytes were passed on
}

var _ filter.TrailerStream = (*stream)(nil)

// Start pins the exchange to one of the plugin's VMs and creates its
// HTTP context there (proxy_on_context_create). With no VM alive it
// returns nil under FAIL_OPEN and a stream answering 503 under
// FAIL_CLOSE.
func (p *Plugin) Start(x *filter.Exchange) filter.Stream {
	v := p.pick()
	if v == nil {
		if p.spec.FailOpen {
			return nil
		}
		return closedStream{resp: unavailable(p.spec.Name)}
	}
	s := &stream{p: p, v: v, x: x, start: time.Now(), wake: make(chan struct{}, 1)}
	p.active.Add(1)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dead {
		s.failed = true
		return s
	}
	v.nextID++
	if v.nextID < rootID+1 { // wrapped around
		v.nextID = rootID + 1
	}
	s.id = v.nextID
	v.streams[s.id] = s
	if _, err := v.callLocked(v.fn.contextCreate, uint64(s.id), rootID); err != nil {
		v.crashLocked(err)
		s.failed = true
	}
	return s
}

// signal wakes the stream's goroutine if it waits for the guest.
func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// phase is a callback's place in the exchange; call records it so that
// the host functions know which maps and buffers exist.
type phase int

const (
	phaseRequestHeaders phase = iota
	phaseRequestBody
	phaseResponseHeaders
	phaseResponseBody
)

// result is what a callback left: its action, or that the vm is gone
// (!ok), and what the guest did to the stream meanwhile.
type result struct {
	ok        bool
	paused    bool
	continued bool
	closed    bool
	local     *filter.Response
}

// call runs one stream callback. For a body phase, chunk is appended to
// the body the guest was shown and keeps, and the callback learns the
// size of the whole.
func (s *stream) call(ph phase, fn api.Function, n uint64, chunk []byte, end bool) result {
	v := s.v
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dead {
		return result{}
	}
	t := streamRequest
	switch ph {
	case phaseRequestBody:
		s.reqBodyStarted = true
		s.reqSize += int64(len(chunk))
		s.reqAlias = len(s.reqBody) == 0
		s.reqBody = appendChunk(s.reqBody, chunk)
		n = uint64(len(s.reqBody))
	case phaseResponseHeaders:
		s.respStarted = true
		t = streamResponse
	case phaseResponseBody:
		s.respBodyStarted = true
		s.respSize += int64(len(chunk))
		s.respAlias = len(s.respBody) == 0
		s.respBody = appendChunk(s.respBody, chunk)
		n = uint64(len(s.respBody))
		t = streamResponse
	}
	s.continued[t] = false
	action := uint64(actionContinue)
	if fn != nil {
		v.cur = s
		var err error
		action, err = v.callLocked(fn, uint64(s.id), n, b2u(end))
		v.cur = nil
		if err != nil {
			v.crashLocked(err)
			return result{}
		}
	}
	return result{ok: true, paused: action == actionPause, continued: s.continued[t], closed: s.closed, local: s.local}
}

// appendChunk adds chunk to what the guest keeps. An empty buffer takes
// the chunk itself, which is only valid during the callback: keep copies
// it if the guest pauses (the *Alias flags say so).
func appendChunk(buf, chunk []byte) []byte {
	if len(buf) == 0 {
		return chunk
	}
	return append(buf, chunk...)
}

// keep makes the buffered body the stream's own after a pause, copying
// it only while it is still the caller's chunk.
func keep(buf []byte, alias *bool) []byte {
	if !*alias {
		return buf
	}
	*alias = false
	return append([]byte(nil), buf...)
}

// wait blocks until the guest resumes the paused stream of type t,
// answers it or closes it, its vm ends, or the request's context ends.
func (s *stream) wait(t int) result {
	ctx := s.x.Request.Context()
	for {
		select {
		case <-s.wake:
		case <-ctx.Done():
			return result{ok: true, local: &filter.Response{
				Status: http.StatusGatewayTimeout,
				Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
				Body:   []byte("proxy-wasm plugin " + s.p.spec.Name + " did not resume the request in time\n"),
			}}
		}
		v := s.v
		v.mu.Lock()
		r := result{ok: !v.dead, continued: s.continued[t], closed: s.closed, local: s.local}
		v.mu.Unlock()
		if !r.ok || r.continued || r.closed || r.local != nil {
			return r
		}
	}
}

// fail follows the failure strategy when the vm crashed under the
// stream: nil (go on without the plugin) under FAIL_OPEN, a 503 under
// FAIL_CLOSE.
func (s *stream) fail() *filter.Response {
	s.failed = true
	if s.p.spec.FailOpen {
		return nil
	}
	return unavailable(s.p.spec.Name)
}

// Request runs proxy_on_request_headers. A pause blocks until the guest
// resumes the request (proxy_continue_stream, typically after an http
// call), answers it, or closes it, bounded by the request's context.
func (s *stream) Request(x *filter.Exchange) *filter.Response {
	if s.failed {
		return s.fail()
	}
	eos := x.Request.Body == nil || x.Request.Body == http.NoBody
	r := s.call(phaseRequestHeaders, s.v.fn.requestHeaders, uint64(requestMap{x.Request}.size()), nil, eos)
	if r.ok && r.paused && !r.continued && r.local == nil && !r.closed {
		r = s.wait(streamRequest)
	}
	switch {
	case !r.ok:
		return s.fail()
	case r.local != nil:
		return r.local
	case r.closed:
		panic(http.ErrAbortHandler) // proxy_close_stream resets the stream
	}
	return nil
}

// Response runs proxy_on_response_headers. A pause holds the headers
// back until a body callback continues (the chain holds them while the
// stream passes no body on) or the guest resumes the response.
func (s *stream) Response(x *filter.Exchange) *filter.Response {
	if s.failed {
		return s.fail()
	}
	r := s.call(phaseResponseHeaders, s.v.fn.responseHeaders, uint64(responseMap{&x.Status, x.Header}.size()), nil, false)
	switch {
	case !r.ok:
		return s.fail()
	case r.local != nil:
		s.answered = true
		return r.local
	case r.closed:
		panic(http.ErrAbortHandler)
	}
	return nil
}

// RequestBody runs proxy_on_request_body. While the guest pauses, the
// body is buffered and shown whole on the next callback; what it holds
// when it continues (changed by proxy_set_buffer_bytes or not) is passed
// on. A pause at the end blocks like one on the headers.
func (s *stream) RequestBody(x *filter.Exchange, chunk []byte, end bool) ([]byte, *filter.Response) {
	if s.failed {
		if resp := s.fail(); resp != nil {
			return nil, resp
		}
		return s.takeRequestBody(chunk), nil
	}
	r := s.call(phaseRequestBody, s.v.fn.requestBody, 0, chunk, end)
	if r.ok && r.paused && !r.continued && r.local == nil && !r.closed {
		if !end {
			s.v.mu.Lock()
			s.reqBody = keep(s.reqBody, &s.reqAlias)
			s.v.mu.Unlock()
			return nil, nil
		}
		r = s.wait(streamRequest)
	}
	switch {
	case !r.ok:
		if resp := s.fail(); resp != nil {
			return nil, resp
		}
	case r.local != nil:
		return nil, r.local
	case r.closed:
		return nil, unavailable(s.p.spec.Name)
	}
	return s.takeRequestBody(nil), nil
}

// takeRequestBody returns the buffered request body followed by chunk
// and empties the buffer.
func (s *stream) takeRequestBody(chunk []byte) []byte {
	s.v.mu.Lock()
	defer s.v.mu.Unlock()
	out := appendChunk(s.reqBody, chunk)
	s.reqBody = nil
	return out
}

// ResponseBody runs proxy_on_response_body, buffering like RequestBody.
// A local response or a crash under FAIL_CLOSE replaces the response if
// no body was passed on yet (the headers are still held), else the rest
// of the body is dropped.
func (s *stream) ResponseBody(x *filter.Exchange, chunk []byte, end bool) []byte {
	if s.answered {
		return nil
	}
	if s.failed {
		if resp := s.fail(); resp != nil {
			return s.replace(x, resp)
		}
		return s.takeResponseBody(chunk)
	}
	r := s.call(phaseResponseBody, s.v.fn.responseBody, 0, chunk, end)
	if r.ok && r.paused && !r.continued && r.local == nil && !r.closed {
		if !end {
			s.v.mu.Lock()
			s.respBody = keep(s.respBody, &s.respAlias)
			s.v.mu.Unlock()
			return nil
		}
		r = s.wait(streamResponse)
	}
	switch {
	case !r.ok:
		if resp := s.fail(); resp != nil {
			return s.replace(x, resp)
		}
	case r.local != nil:
		return s.replace(x, r.local)
	case r.closed:
		s.answered = true
		return nil
	}
	out := s.takeResponseBody(nil)
	s.respSent = s.respSent || len(out) > 0
	return out
}

func (s *stream) takeResponseBody(chunk []byte) []byte {
	s.v.mu.Lock()
	defer s.v.mu.Unlock()
	out := appendChunk(s.respBody, chunk)
	s.respBody = nil
	return out
}

// replace answers with resp in the response body phase: while no body
// was passed on, the chain still holds the headers, so the status and
// headers can change too.
func (s *stream) replace(x *filter.Exchange, resp *filter.Response) []byte {
	s.answered = true
	if s.respSent {
		s.p.log.Warn("proxy-wasm plugin answered after passing on part of the response body; dropping the rest")
		return nil
	}
	x.Status = resp.Status
	clear(x.Header)
	for k, v := range resp.Header {
		x.Header[k] = v
	}
	return resp.Body
}

// RequestTrailers runs proxy_on_request_trailers, during which the guest
// reads and edits the trailers through map type REQUEST_TRAILERS. A
// pause is taken as continue: the body has already gone on.
func (s *stream) RequestTrailers(_ *filter.Exchange, t http.Header) {
	s.trailers(s.v.fn.requestTrailers, t, &s.reqTrailers)
}

// ResponseTrailers runs proxy_on_response_trailers, as RequestTrailers.
func (s *stream) ResponseTrailers(_ *filter.Exchange, t http.Header) {
	if !s.answered {
		s.trailers(s.v.fn.responseTrailers, t, &s.respTrailers)
	}
}

func (s *stream) trailers(fn api.Function, t http.Header, during *http.Header) {
	if s.failed || fn == nil {
		return
	}
	v := s.v
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dead {
		return
	}
	*during, v.cur = t, s
	_, err := v.callLocked(fn, uint64(s.id), uint64(countFields(t)))
	*during, v.cur = nil, nil
	if err != nil {
		s.failed = true // too late to answer: FAIL_CLOSE cannot turn it into a 503
		v.crashLocked(err)
	}
}

// Done ends the HTTP context: proxy_on_done, proxy_on_log, then
// proxy_on_delete.
func (s *stream) Done(*filter.Exchange) {
	defer s.p.active.Done()
	v := s.v
	v.mu.Lock()
	defer v.mu.Unlock()
	defer delete(v.streams, s.id)
	if v.dead || s.id == 0 {
		return
	}
	v.cur = s
	defer func() { v.cur = nil }()
	for _, fn := range []api.Function{v.fn.done, v.fn.log, v.fn.delete} {
		if fn == nil {
			continue
		}
		if _, err := v.callLocked(fn, uint64(s.id)); err != nil {
			v.crashLocked(err)
			return
		}
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
