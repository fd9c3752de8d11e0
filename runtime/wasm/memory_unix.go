//go:build unix

package wasm

import (
	"os"
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// mappedMemory is a linear memory in its own anonymous mapping of the
// largest size it may grow to. The kernel provides pages on first touch,
// so growing costs nothing, untouched memory costs no RSS, and Free
// returns everything to the kernel at once.
type mappedMemory struct {
	buf []byte // the whole mapping
}

// reserve maps size bytes without reserving swap, or returns nil.
func reserve(size uint64) experimental.LinearMemory {
	if size == 0 || size > 1<<32 {
		return nil
	}
	buf, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANON|mapNoReserve)
	if err != nil {
		return nil
	}
	return &mappedMemory{buf: buf}
}

func (m *mappedMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	return m.buf[:size:size]
}

// Free unmaps the memory. Nothing may touch it afterwards: wazero calls
// Free when the module is closed, and wisp never closes a module while a
// call on it runs.
func (m *mappedMemory) Free() {
	if m.buf != nil {
		_ = syscall.Munmap(m.buf)
		m.buf = nil
	}
}

// mapFile maps size bytes of f read-only; unmap undoes it.
func mapFile(f *os.File, size int64) (b []byte, unmap func(), err error) {
	if size == 0 {
		return nil, func() {}, nil
	}
	b, err = syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { _ = syscall.Munmap(b) }, nil
}
