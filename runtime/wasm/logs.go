package wasm

import (
	"bytes"
	"sync"
)

// maxLogLine is the longest line a guest's output becomes; longer lines
// are split.
const maxLogLine = 16 << 10

// lineWriter turns a guest's stdout or stderr into lines for emit. It is
// safe for concurrent use (a guest writes from one goroutine, Flush may
// come from another).
type lineWriter struct {
	emit func(line string)

	mu  sync.Mutex
	buf []byte
}

// Write emits every complete line of p and keeps the rest. It never fails:
// the guest must not notice a slow or broken log sink.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			if len(w.buf) >= maxLogLine {
				w.emitLocked()
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.emitLocked()
		p = p[i+1:]
	}
	return n, nil
}

// Flush emits what is left of an unterminated line.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emitLocked()
	}
}

func (w *lineWriter) emitLocked() {
	for len(w.buf) > maxLogLine {
		w.emit(string(w.buf[:maxLogLine]))
		w.buf = w.buf[maxLogLine:]
	}
	w.emit(string(bytes.TrimSuffix(w.buf, []byte{'\r'})))
	w.buf = w.buf[:0]
}
