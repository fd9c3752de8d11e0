//go:build !unix

package wasm

import (
	"os"

	"github.com/tetratelabs/wazero/experimental"
)

// reserve returns nil: without mmap, memories live on the Go heap.
func reserve(uint64) experimental.LinearMemory { return nil }

// mapFile reads size bytes of f.
func mapFile(f *os.File, size int64) ([]byte, func(), error) {
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, nil, err
	}
	return b, func() {}, nil
}
