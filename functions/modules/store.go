// Package modules keeps WebAssembly modules content-addressed by sha256
// under the node's data dir: uploads from the CLI land here, and so do
// modules pulled from OCI registries, so that a Revision that names a
// digest always finds the same bytes.
//
// It owns the bytes only. It must not compile modules (runtime/wasm does)
// or decide which module a Revision runs (the controller does).
package modules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MaxModuleBytes bounds the size of one module (Istio's bound too).
const MaxModuleBytes = 256 << 20

// wasmMagic starts every WebAssembly binary module.
var wasmMagic = []byte{0x00, 'a', 's', 'm'}

// ErrNotFound is returned for a digest the store does not hold.
var ErrNotFound = errors.New("module not found")

// Store is a directory of modules named by their sha256 digest.
type Store struct {
	dir string
}

// Open returns the store in dir, creating it if needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o700); err != nil {
		return nil, fmt.Errorf("creating module store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// ParseDigest checks "sha256:<64 hex>" and returns the hex part.
func ParseDigest(digest string) (string, error) {
	hexPart, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexPart) != 64 {
		return "", fmt.Errorf("module digest %q: want sha256:<64 hex digits>", digest)
	}
	if _, err := hex.DecodeString(hexPart); err != nil || strings.ToLower(hexPart) != hexPart {
		return "", fmt.Errorf("module digest %q: want sha256:<64 lower-case hex digits>", digest)
	}
	return hexPart, nil
}

func (s *Store) path(hexPart string) string { return filepath.Join(s.dir, "sha256", hexPart) }

// Put stores a module read from r and returns its digest. It refuses
// anything that is not a WebAssembly binary or is larger than
// MaxModuleBytes. Storing the same bytes twice is harmless.
func (s *Store) Put(r io.Reader) (string, error) {
	tmp, err := os.CreateTemp(s.dir, "upload-*")
	if err != nil {
		return "", fmt.Errorf("storing module: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	h := sha256.New()
	head := make([]byte, 0, len(wasmMagic))
	n, err := io.Copy(io.MultiWriter(tmp, h, &prefixWriter{buf: &head}), io.LimitReader(r, MaxModuleBytes+1))
	if err != nil {
		return "", fmt.Errorf("storing module: %w", err)
	}
	if n > MaxModuleBytes {
		return "", fmt.Errorf("module is larger than %d bytes", MaxModuleBytes)
	}
	if !bytes.Equal(head, wasmMagic) {
		return "", errors.New("not a WebAssembly binary module (it does not start with \\0asm); compile WAT with wat2wasm first")
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("storing module: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("storing module: %w", err)
	}
	hexPart := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), s.path(hexPart)); err != nil {
		return "", fmt.Errorf("storing module: %w", err)
	}
	return "sha256:" + hexPart, nil
}

// Get returns the bytes of a module by digest, verifying them.
func (s *Store) Get(digest string) ([]byte, error) {
	hexPart, err := ParseDigest(digest)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.path(hexPart))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (upload it again with 'wisp service update NAME --wasm FILE')", ErrNotFound, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("reading module %s: %w", digest, err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hexPart {
		return nil, fmt.Errorf("module %s is corrupt on disk (its bytes hash differently); upload it again", digest)
	}
	return b, nil
}

// Has reports whether the store holds a module.
func (s *Store) Has(digest string) bool {
	hexPart, err := ParseDigest(digest)
	if err != nil {
		return false
	}
	_, err = os.Stat(s.path(hexPart))
	return err == nil
}

// prefixWriter keeps the first cap(*buf) bytes written through it.
type prefixWriter struct{ buf *[]byte }

func (p *prefixWriter) Write(b []byte) (int, error) {
	if room := cap(*p.buf) - len(*p.buf); room > 0 {
		*p.buf = append(*p.buf, b[:min(room, len(b))]...)
	}
	return len(b), nil
}
