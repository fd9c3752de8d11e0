package proxywasm

import (
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// property returns the value of an attribute path (segments joined by
// NUL bytes), serialized as Envoy serializes it: strings as their bytes,
// integers, timestamps and durations as 8 bytes little endian (ns for
// the latter two), booleans as one byte, maps as a header map. Values a
// guest stored with proxy_set_property come first. Paths wisp does not
// know, or that have no value yet (response.* before the response),
// are not found.
func (v *vm) property(path string) ([]byte, bool) {
	s := v.target()
	if s != nil {
		if val, ok := s.props[path]; ok {
			return val, true
		}
	} else if val, ok := v.rootProps[path]; ok {
		return val, true
	}
	spec := &v.p.spec
	switch path {
	case "plugin_name":
		return []byte(spec.Name), true
	case "plugin_root_id":
		return []byte(spec.RootID), true
	case "plugin_vm_id":
		return []byte(spec.VMID), true
	}
	if s == nil {
		return nil, false
	}
	return s.property(path)
}

// setProperty stores a value for the target context (Envoy's filter
// state), readable by later proxy_get_property calls.
func (v *vm) setProperty(path string, val []byte) {
	val = append([]byte(nil), val...)
	if s := v.target(); s != nil {
		if s.props == nil {
			s.props = map[string][]byte{}
		}
		s.props[path] = val
		return
	}
	if v.rootProps == nil {
		v.rootProps = map[string][]byte{}
	}
	v.rootProps[path] = val
}

// property returns one of the stream's attributes; see vm.property.
func (s *stream) property(path string) ([]byte, bool) {
	r := s.x.Request
	str := func(v string) ([]byte, bool) { return []byte(v), true }
	header := func(name string) ([]byte, bool) {
		if v := r.Header.Get(name); v != "" {
			return []byte(v), true
		}
		return nil, false
	}
	seg := strings.Split(path, "\x00")
	switch seg[0] {
	case "request":
		if len(seg) == 3 && seg[1] == "headers" {
			v, ok := requestMap{r}.get(strings.ToLower(seg[2]))
			return []byte(v), ok
		}
		switch strings.Join(seg[1:], ".") {
		case "path":
			return str(r.URL.RequestURI())
		case "url_path":
			return str(r.URL.EscapedPath())
		case "host":
			return str(r.Host)
		case "scheme":
			return str(requestScheme(r))
		case "method":
			return str(r.Method)
		case "headers":
			return encodePairs(requestMap{r}.pairs()), true
		case "referer":
			return header("Referer")
		case "useragent":
			return header("User-Agent")
		case "id":
			return header("X-Request-Id")
		case "protocol":
			return str(protocol(r))
		case "query":
			return str(r.URL.RawQuery)
		case "time":
			return putU64(s.start.UnixNano()), true
		case "duration":
			return putU64(int64(time.Since(s.start))), true
		case "size":
			if r.ContentLength >= 0 && !s.reqBodyStarted {
				return putU64(r.ContentLength), true
			}
			return putU64(s.reqSize), true
		}
	case "response":
		if !s.respStarted {
			return nil, false
		}
		if len(seg) == 3 && seg[1] == "headers" {
			v, ok := responseMap{&s.x.Status, s.x.Header}.get(strings.ToLower(seg[2]))
			return []byte(v), ok
		}
		switch strings.Join(seg[1:], ".") {
		case "code":
			return putU64(int64(s.x.Status)), true
		case "code_details":
			if s.details != "" {
				return str(s.details)
			}
			return str("via_upstream")
		case "headers":
			return encodePairs(responseMap{&s.x.Status, s.x.Header}.pairs()), true
		case "size":
			return putU64(s.respSize), true
		}
	case "source":
		return addrProperty(r.RemoteAddr, seg[1:])
	case "destination":
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			return addrProperty(a.String(), seg[1:])
		}
	case "connection":
		return connProperty(r.TLS, strings.Join(seg[1:], "."))
	case "wisp":
		switch strings.Join(seg[1:], ".") {
		case "namespace":
			return str(s.x.Namespace)
		case "function":
			return str(s.x.Function)
		case "revision":
			return str(s.x.Revision)
		case "trace_id":
			return str(s.x.TraceID)
		}
	}
	return nil, false
}

// addrProperty serves source.* and destination.*: address is "ip:port",
// port an integer.
func addrProperty(addr string, seg []string) ([]byte, bool) {
	if len(seg) != 1 || addr == "" {
		return nil, false
	}
	switch seg[0] {
	case "address":
		return []byte(addr), true
	case "port":
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, false
		}
		n, err := strconv.ParseInt(port, 10, 64)
		if err != nil {
			return nil, false
		}
		return putU64(n), true
	}
	return nil, false
}

// connProperty serves connection.*: TLS facts of the downstream
// connection.
func connProperty(cs *tls.ConnectionState, name string) ([]byte, bool) {
	switch name {
	case "mtls":
		if cs != nil && len(cs.PeerCertificates) > 0 {
			return []byte{1}, true
		}
		return []byte{0}, true
	case "tls_version":
		if cs != nil {
			return []byte(strings.Replace(tls.VersionName(cs.Version), "TLS ", "TLSv", 1)), true // Envoy: "TLSv1.3"
		}
	case "requested_server_name":
		if cs != nil {
			return []byte(cs.ServerName), true
		}
	}
	return nil, false
}

// protocol spells the request's protocol as Envoy does.
func protocol(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "HTTP/2"
	case 3:
		return "HTTP/3"
	}
	return r.Proto
}
