package wasm

import (
	"bytes"
	"fmt"
	"os"

	wapi "github.com/tetratelabs/wazero/api"
)

// snapshotChunk is the granularity at which a snapshot compares memory.
const snapshotChunk = 4096

// snapshot is the state of an http-ABI instance right after _initialize,
// as far as it differs from a freshly instantiated one: the size of its
// memory, the bytes that differ, and its mutable globals. Restoring it
// into a fresh instance gives an initialised instance without running
// _initialize again. See RATIONALE.md, "Snapshots".
type snapshot struct {
	pages   uint32 // memory size, in pages
	runs    []run
	globals []globalValue
	size    int64 // bytes of all runs

	// The bytes of the runs, in order: in data, or in file (unlinked)
	// when the Provider has a CacheDir, so that they live in the page
	// cache rather than on the heap.
	data []byte
	file *os.File
}

// run is a range of memory that differs from a fresh instance's.
type run struct {
	off, len uint32 // in memory
	at       int64  // in the snapshot's bytes
}

type globalValue struct {
	name string
	val  uint64
}

// takeSnapshot records how mod's memory differs from fresh (its memory
// before _initialize) and the values of the globals. It stores the bytes
// in an unlinked file in dir, or in memory when dir is empty.
func takeSnapshot(mod wapi.Module, fresh []byte, globals []string, dir string) (*snapshot, error) {
	mem := mod.Memory()
	cur, _ := mem.Read(0, mem.Size())
	s := &snapshot{pages: mem.Size() / pageSize}
	var data []byte
	zero := make([]byte, snapshotChunk)
	for off := 0; off < len(cur); off += snapshotChunk {
		end := min(off+snapshotChunk, len(cur))
		was := zero[:end-off]
		if end <= len(fresh) {
			was = fresh[off:end]
		} else if off < len(fresh) {
			was = append(append([]byte(nil), fresh[off:]...), zero[:end-len(fresh)]...)
		}
		if bytes.Equal(cur[off:end], was) {
			continue
		}
		if n := len(s.runs); n > 0 && s.runs[n-1].off+s.runs[n-1].len == uint32(off) {
			s.runs[n-1].len += uint32(end - off)
		} else {
			s.runs = append(s.runs, run{off: uint32(off), len: uint32(end - off), at: int64(len(data))})
		}
		data = append(data, cur[off:end]...)
	}
	s.size = int64(len(data))
	for _, name := range globals {
		g := mod.ExportedGlobal(name)
		if g == nil {
			return nil, fmt.Errorf("global %s is not exported", name)
		}
		s.globals = append(s.globals, globalValue{name, g.Get()})
	}
	if dir == "" {
		s.data = data
		return s, nil
	}
	f, err := os.CreateTemp(dir, "snapshot-*")
	if err != nil {
		return nil, fmt.Errorf("storing the snapshot: %w", err)
	}
	_ = os.Remove(f.Name()) // the open file lives on until release
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("storing the snapshot: %w", err)
	}
	s.file = f
	return s, nil
}

// restore makes the fresh instance mod what the snapshotted instance was
// after _initialize.
func (s *snapshot) restore(mod wapi.Module) error {
	mem := mod.Memory()
	if have := mem.Size() / pageSize; have < s.pages {
		if _, ok := mem.Grow(s.pages - have); !ok {
			return fmt.Errorf("restoring the snapshot: cannot grow memory to %d pages", s.pages)
		}
	}
	src := s.data
	if s.file != nil {
		b, unmap, err := mapFile(s.file, s.size)
		if err != nil {
			return fmt.Errorf("restoring the snapshot: %w", err)
		}
		defer unmap()
		src = b
	}
	for _, r := range s.runs {
		if !mem.Write(r.off, src[r.at:r.at+int64(r.len)]) {
			return fmt.Errorf("restoring the snapshot: memory [%d, %d) out of range", r.off, r.off+r.len)
		}
	}
	for _, g := range s.globals {
		mg, ok := mod.ExportedGlobal(g.name).(wapi.MutableGlobal)
		if !ok {
			return fmt.Errorf("restoring the snapshot: global %s is not mutable", g.name)
		}
		mg.Set(g.val)
	}
	return nil
}

// release frees the snapshot's bytes.
func (s *snapshot) release() {
	if s.file != nil {
		_ = s.file.Close()
	}
	s.data = nil
}
