package wasm

import (
	"time"

	"github.com/wisp-faas/wisp/api"
)

// Defaults for the zero values of a Revision's limits.
const (
	// DefaultMemoryLimitPages is the memory limit of an instance when the
	// Revision sets none: 2048 pages of 64 KiB, 128 MiB. A Go module needs
	// about 5 MiB to answer its first request; the rest is headroom for
	// its heap and for request bodies, which the http ABI copies into the
	// guest. Memory is reserved, not committed: an instance costs only
	// the pages it touches.
	DefaultMemoryLimitPages = 2048

	// DefaultMaxRequestBodyBytes bounds a request body when the Revision
	// sets no bound: 10 MiB.
	DefaultMaxRequestBodyBytes = 10 << 20

	// maxResponseBytes bounds what a guest may answer (a wagi module's
	// stdout, an http module's encoded response).
	maxResponseBytes = 64 << 20
)

// limits bounds what one instance of a Revision may use and see.
type limits struct {
	memoryPages uint32        // linear memory, in pages
	maxBody     int64         // request body, in bytes
	timeout     time.Duration // per request; 0: only the request's own deadline
	dirs        []api.WasmDir // host directories granted
}

// limitsFor returns rev's limits, defaults filled in. It is the only place
// that reads limits from a Revision.
func limitsFor(rev *api.Revision) limits {
	l := limits{memoryPages: DefaultMemoryLimitPages, maxBody: DefaultMaxRequestBodyBytes}
	if w := rev.Spec.Wasm; w != nil {
		if w.MemoryLimitPages > 0 {
			l.memoryPages = min(w.MemoryLimitPages, 65536)
		}
		if w.MaxRequestBodyBytes > 0 {
			l.maxBody = w.MaxRequestBodyBytes
		}
		l.dirs = w.Dirs
	}
	if t := rev.Spec.TimeoutSeconds; t != nil && *t > 0 {
		l.timeout = time.Duration(*t) * time.Second
	}
	return l
}

func (l limits) memoryBytes() uint64 { return uint64(l.memoryPages) * pageSize }
