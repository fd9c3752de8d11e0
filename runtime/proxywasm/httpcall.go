package proxywasm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// maxCallResponse bounds the body of an http call's response kept for
// the guest.
const maxCallResponse = 16 << 20

// callResponse is an http call's outcome as proxy_on_http_call_response
// presents it; headers is nil when the call failed.
type callResponse struct {
	headers, trailers [][2]string
	body              []byte
}

// httpCall is proxy_http_call(upstream, headers, body, trailers,
// timeout_ms, *token): it checks the call, returns its token and makes
// the call in the background; the root context hears the answer through
// proxy_on_http_call_response. v.mu is held.
func (v *vm) httpCall(s []uint64) status {
	u32 := func(i int) uint32 { return api.DecodeU32(s[i]) }
	upstream, ok1 := v.read(u32(0), u32(1))
	rawHeaders, ok2 := v.read(u32(2), u32(3))
	body, ok3 := v.read(u32(4), u32(5))
	rawTrailers, ok4 := v.read(u32(6), u32(7))
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return statusInvalidMemAccess
	}
	headers, err := decodePairs(rawHeaders)
	if err != nil {
		return statusBadArgument
	}
	trailers, err := decodePairs(rawTrailers)
	if err != nil {
		return statusBadArgument
	}
	req, handler, err := v.p.h.callRequest(string(upstream), headers, trailers, bytes.Clone(body))
	if err != nil {
		v.log.Warn("proxy_http_call refused", "upstream", string(upstream), "error", err)
		return statusBadArgument
	}
	v.nextToken++
	token := v.nextToken
	if st := v.writeU32(u32(9), token); st != statusOK {
		return st
	}
	timeout := time.Duration(u32(8)) * time.Millisecond
	if timeout == 0 {
		timeout = defaultHTTPCallTimeout
	}
	v.p.bg.Go(func() {
		ctx, cancel := context.WithTimeout(v.p.ctx, timeout)
		defer cancel()
		resp, err := v.p.h.roundTrip(req.WithContext(ctx), handler)
		if err != nil {
			v.log.Info("proxy_http_call failed", "upstream", string(upstream), "error", err)
			resp = &callResponse{}
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.dead || v.fn.httpCallResponse == nil {
			return
		}
		v.cur, v.callResp = nil, resp
		_, err = v.callLocked(v.fn.httpCallResponse, rootID, uint64(token),
			uint64(len(resp.headers)), uint64(len(resp.body)), uint64(len(resp.trailers)))
		v.callResp = nil
		if err != nil {
			v.crashLocked(err)
		}
	})
	return statusOK
}

// callRequest builds the request of an http call from its pseudo-headers
// (":method", ":path" and ":authority" are required, as in Envoy) and
// chooses where it goes: to the Functions handler when the upstream names
// a function, else (handler nil) over the network.
func (h *Host) callRequest(upstream string, headers, trailers [][2]string, body []byte) (*http.Request, http.Handler, error) {
	var method, path, authority, scheme string
	hdr := http.Header{}
	for _, p := range headers {
		switch p[0] {
		case ":method":
			method = p[1]
		case ":path":
			path = p[1]
		case ":authority":
			authority = p[1]
		case ":scheme":
			scheme = p[1]
		default:
			if !strings.HasPrefix(p[0], ":") {
				hdr.Add(p[0], p[1])
			}
		}
	}
	if method == "" || path == "" || authority == "" {
		return nil, nil, fmt.Errorf("the call lacks :method, :path or :authority")
	}
	var target string
	var handler http.Handler
	if fn, ok := strings.CutPrefix(upstream, "fn:"); ok {
		ns, name, ok := strings.Cut(fn, "/")
		if !ok || ns == "" || name == "" {
			return nil, nil, fmt.Errorf("upstream %q: want fn:<namespace>/<name>", upstream)
		}
		if handler = h.opts.Functions; handler == nil {
			return nil, nil, fmt.Errorf("upstream %q names a function but the host has no Functions handler", upstream)
		}
		if h.opts.FunctionDomain != "" {
			authority = name + "." + ns + "." + h.opts.FunctionDomain
			target = "http://" + authority + path
		} else {
			target = "http://" + authority + "/fn/" + ns + "/" + name + path
		}
	} else if u, err := url.Parse(upstream); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		target = strings.TrimSuffix(upstream, "/") + path
	} else {
		if scheme == "" {
			scheme = "http"
		}
		if h.opts.FunctionDomain != "" && strings.HasSuffix(hostOnly(upstream), "."+h.opts.FunctionDomain) {
			handler, authority = h.opts.Functions, upstream
		}
		target = scheme + "://" + upstream + path
	}
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("upstream %q, path %q: %w", upstream, path, err)
	}
	req.Header, req.Host = hdr, authority
	if len(trailers) > 0 {
		req.Trailer = http.Header{}
		for _, p := range trailers {
			req.Trailer.Add(p[0], p[1])
		}
	}
	return req, handler, nil
}

// roundTrip makes an http call, in process through handler when it is
// set, else over the network.
func (h *Host) roundTrip(req *http.Request, handler http.Handler) (*callResponse, error) {
	if handler != nil {
		w := &recorder{header: http.Header{}}
		req.RequestURI = req.URL.RequestURI()
		handler.ServeHTTP(w, req)
		if w.code == 0 {
			w.code = http.StatusOK
		}
		return &callResponse{headers: responsePairs(w.code, w.header), body: w.body.Bytes()}, nil
	}
	resp, err := h.opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCallResponse))
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	out := &callResponse{headers: responsePairs(resp.StatusCode, resp.Header), body: body}
	if len(resp.Trailer) > 0 {
		out.trailers = appendFields(nil, resp.Trailer)
	}
	return out, nil
}

func responsePairs(code int, h http.Header) [][2]string {
	return appendFields([][2]string{{":status", strconv.Itoa(code)}}, h)
}

func hostOnly(hostport string) string {
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		return hostport[:i]
	}
	return hostport
}

// recorder is the ResponseWriter of an in-process http call.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && code >= 200 {
		r.code = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	if r.body.Len()+len(b) > maxCallResponse {
		return 0, fmt.Errorf("the response exceeds %d bytes", maxCallResponse)
	}
	return r.body.Write(b)
}
