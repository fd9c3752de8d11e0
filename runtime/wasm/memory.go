package wasm

import (
	"github.com/tetratelabs/wazero/experimental"
)

const pageSize = 65536

// allocator backs the linear memory of every instance of one Revision and
// enforces its memory limit: growing past limit bytes fails, so that
// memory.grow returns -1 to the guest. See RATIONALE.md, "Memory".
type allocator struct {
	limit uint64 // bytes
}

var _ experimental.MemoryAllocator = allocator{}

// Allocate reserves the memory of one instance. cap and max are what
// wazero derived from the module; the reservation is the smaller of max
// and the limit.
func (a allocator) Allocate(_, max uint64) experimental.LinearMemory {
	size := min(max, a.limit)
	if m := reserve(size); m != nil {
		return m
	}
	return &heapMemory{limit: size}
}

// heapMemory is a linear memory on the Go heap, for platforms without
// mmap and for when a reservation fails. Growing it copies.
type heapMemory struct {
	buf   []byte
	limit uint64
}

func (m *heapMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	// Grow geometrically to keep repeated memory.grow linear overall.
	c := min(max(size, 2*uint64(cap(m.buf))), m.limit)
	buf := make([]byte, size, c)
	copy(buf, m.buf)
	m.buf = buf
	return buf
}

func (m *heapMemory) Free() { m.buf = nil }
