package activator

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
)

// traceparentHeader is W3C Trace Context's header.
const traceparentHeader = "Traceparent"

// requestTraceID returns the trace ID of the request's W3C traceparent, giving
// the request a new traceparent (not sampled) when it has none or an
// invalid one, so that the function and the access log share one ID.
func requestTraceID(r *http.Request) string {
	if tp := r.Header.Get(traceparentHeader); validTraceparent(tp) {
		return tp[3:35]
	}
	var b [24]byte
	for i := 0; i < len(b); i += 8 {
		v := rand.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	id := hex.EncodeToString(b[:16])
	r.Header.Set(traceparentHeader, "00-"+id+"-"+hex.EncodeToString(b[16:])+"-00")
	return id
}

// validTraceparent checks the version-00 form:
// 00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>, IDs not all zero.
func validTraceparent(tp string) bool {
	if len(tp) != 55 || tp[:3] != "00-" || tp[35] != '-' || tp[52] != '-' {
		return false
	}
	for i, c := range []byte(tp) {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return tp[3:35] != "00000000000000000000000000000000" && tp[36:52] != "0000000000000000"
}
