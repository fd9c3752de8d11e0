package proxywasm

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// headerMap is how the guest sees one of a stream's header maps: names in
// lower case, HTTP/2 pseudo-headers first (":authority", ":path",
// ":method", ":scheme" on a request; ":status" on a response), then the
// fields sorted by name, a field with several values as several pairs.
// Pseudo-headers map to the request's Host, URL and Method and to the
// response's status.
type headerMap interface {
	get(key string) (string, bool)
	set(key, value string) // replace every value
	add(key, value string)
	remove(key string)
	pairs() [][2]string
	size() int
}

// requestMap is the request headers of x.Request.
type requestMap struct{ r *http.Request }

func (m requestMap) get(key string) (string, bool) {
	switch key {
	case ":authority", "host":
		return m.r.Host, true
	case ":path":
		return m.r.URL.RequestURI(), true
	case ":method":
		return m.r.Method, true
	case ":scheme":
		return requestScheme(m.r), true
	}
	return fieldValue(m.r.Header, key)
}

func (m requestMap) set(key, value string) {
	switch key {
	case ":authority", "host":
		m.r.Host = value
	case ":path":
		if u, err := url.ParseRequestURI(value); err == nil {
			m.r.URL.Path, m.r.URL.RawPath, m.r.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
			m.r.RequestURI = value
		}
	case ":method":
		m.r.Method = value
	case ":scheme":
		m.r.URL.Scheme = value
	default:
		m.r.Header.Set(key, value)
	}
}

func (m requestMap) add(key, value string) {
	if strings.HasPrefix(key, ":") || key == "host" {
		m.set(key, value)
		return
	}
	m.r.Header.Add(key, value)
}

func (m requestMap) remove(key string) {
	if !strings.HasPrefix(key, ":") && key != "host" { // pseudo-headers cannot be removed
		m.r.Header.Del(key)
	}
}

func (m requestMap) pairs() [][2]string {
	pairs := make([][2]string, 0, 4+len(m.r.Header))
	pairs = append(pairs,
		[2]string{":authority", m.r.Host},
		[2]string{":path", m.r.URL.RequestURI()},
		[2]string{":method", m.r.Method},
		[2]string{":scheme", requestScheme(m.r)})
	return appendFields(pairs, m.r.Header)
}

func (m requestMap) size() int { return 4 + countFields(m.r.Header) }

// responseMap is the response headers: status and header of the exchange.
type responseMap struct {
	status *int
	h      http.Header
}

func (m responseMap) get(key string) (string, bool) {
	if key == ":status" {
		return strconv.Itoa(*m.status), true
	}
	return fieldValue(m.h, key)
}

func (m responseMap) set(key, value string) {
	if key == ":status" {
		if code, err := strconv.Atoi(value); err == nil && code >= 100 && code <= 999 {
			*m.status = code
		}
		return
	}
	if !strings.HasPrefix(key, ":") {
		m.h.Set(key, value)
	}
}

func (m responseMap) add(key, value string) {
	if strings.HasPrefix(key, ":") {
		m.set(key, value)
		return
	}
	m.h.Add(key, value)
}

func (m responseMap) remove(key string) {
	if !strings.HasPrefix(key, ":") {
		m.h.Del(key)
	}
}

func (m responseMap) pairs() [][2]string {
	pairs := make([][2]string, 0, 1+len(m.h))
	pairs = append(pairs, [2]string{":status", strconv.Itoa(*m.status)})
	return appendFields(pairs, m.h)
}

func (m responseMap) size() int { return 1 + countFields(m.h) }

// trailerMap is a stream's trailers, during their callback: plain
// fields, no pseudo-headers.
type trailerMap struct{ h http.Header }

func (m trailerMap) get(key string) (string, bool) { return fieldValue(m.h, key) }
func (m trailerMap) set(key, value string)         { m.h.Set(key, value) }
func (m trailerMap) add(key, value string)         { m.h.Add(key, value) }
func (m trailerMap) remove(key string)             { m.h.Del(key) }
func (m trailerMap) pairs() [][2]string            { return appendFields(nil, m.h) }
func (m trailerMap) size() int                     { return countFields(m.h) }

// fixedMap is a read-only map: the headers and trailers of an
// http_call's response.
type fixedMap [][2]string

func (m fixedMap) get(key string) (string, bool) {
	var vals []string
	for _, p := range m {
		if p[0] == key {
			vals = append(vals, p[1])
		}
	}
	return strings.Join(vals, ","), vals != nil
}
func (fixedMap) set(string, string)   {}
func (fixedMap) add(string, string)   {}
func (fixedMap) remove(string)        {}
func (m fixedMap) pairs() [][2]string { return m }
func (m fixedMap) size() int          { return len(m) }

// fieldValue returns the values of a field joined by commas, as Envoy
// does for a repeated header.
func fieldValue(h http.Header, key string) (string, bool) {
	vals := h.Values(key)
	switch len(vals) {
	case 0:
		return "", false
	case 1:
		return vals[0], true
	}
	return strings.Join(vals, ","), true
}

func appendFields(pairs [][2]string, h http.Header) [][2]string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		lk := strings.ToLower(k)
		for _, v := range h[k] {
			pairs = append(pairs, [2]string{lk, v})
		}
	}
	return pairs
}

func countFields(h http.Header) int {
	n := 0
	for _, v := range h {
		n += len(v)
	}
	return n
}

func requestScheme(r *http.Request) string {
	if r.URL.Scheme != "" {
		return r.URL.Scheme
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}
