package proxywasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"sync"
)

// logWriter turns what a guest writes to stdout or stderr into log
// records at one level, one per line. Envoy does the same (stdout at
// info, stderr at error).
type logWriter struct {
	log   *slog.Logger
	level slog.Level

	mu  sync.Mutex
	buf []byte
}

// maxLine is the longest record a guest's output becomes.
const maxLine = 16 << 10

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 && len(w.buf) < maxLine {
			return len(p), nil
		}
		if i < 0 || i > maxLine {
			i = maxLine
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[min(i+1, len(w.buf)):]
	}
}

// flush emits an unterminated last line.
func (w *logWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

func (w *logWriter) emit(line []byte) {
	w.log.Log(context.Background(), w.level, string(bytes.TrimSuffix(line, []byte{'\r'})), "stream", w.stream())
}

func (w *logWriter) stream() string {
	if w.level >= slog.LevelError {
		return "stderr"
	}
	return "stdout"
}

// proxy_log levels as slog levels: trace below debug, critical above
// error.
func slogLevel(level uint32) slog.Level {
	switch level {
	case logTrace:
		return slog.LevelDebug - 4
	case logDebug:
		return slog.LevelDebug
	case logInfo:
		return slog.LevelInfo
	case logWarn:
		return slog.LevelWarn
	case logError:
		return slog.LevelError
	}
	return slog.LevelError + 4
}

// proxyLogLevel is the lowest proxy_log level the logger records, for
// proxy_get_log_level.
func proxyLogLevel(log *slog.Logger) uint32 {
	for l := uint32(logTrace); l < logCritical; l++ {
		if log.Enabled(context.Background(), slogLevel(l)) {
			return l
		}
	}
	return logCritical
}

// cryptoRand is WASI's random_get: the host's cryptographic source.
type cryptoRand struct{}

func (cryptoRand) Read(p []byte) (int, error) { return rand.Read(p) }
