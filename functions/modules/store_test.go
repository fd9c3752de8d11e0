package modules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// minimal is the smallest valid WebAssembly module: magic and version.
var minimal = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

func TestPutGetRoundTrip(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Put(bytes.NewReader(minimal))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(minimal)
	if want := "sha256:" + hex.EncodeToString(sum[:]); d != want {
		t.Fatalf("digest %s, want %s", d, want)
	}
	if d2, err := s.Put(bytes.NewReader(minimal)); err != nil || d2 != d {
		t.Fatalf("second put: %s, %v", d2, err)
	}
	got, err := s.Get(d)
	if err != nil || !bytes.Equal(got, minimal) {
		t.Fatalf("get: %x, %v", got, err)
	}
	if !s.Has(d) {
		t.Fatal("Has = false after Put")
	}
}

func TestPutRejectsNonWasm(t *testing.T) {
	s, _ := Open(t.TempDir())
	if _, err := s.Put(strings.NewReader("(module)")); err == nil || !strings.Contains(err.Error(), "wat2wasm") {
		t.Fatalf("WAT text accepted or unclear error: %v", err)
	}
	if _, err := s.Put(strings.NewReader("")); err == nil {
		t.Fatal("empty module accepted")
	}
	entries, _ := os.ReadDir(filepath.Join(s.dir, "sha256"))
	if len(entries) != 0 {
		t.Fatalf("rejected uploads left files: %v", entries)
	}
}

func TestGetDetectsCorruptionAndMissing(t *testing.T) {
	s, _ := Open(t.TempDir())
	d, _ := s.Put(bytes.NewReader(minimal))
	hexPart, _ := ParseDigest(d)
	if err := os.WriteFile(s.path(hexPart), []byte("\x00asm\x01\x00\x00\x01"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(d); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt module not detected: %v", err)
	}
	missing := "sha256:" + strings.Repeat("a", 64)
	if _, err := s.Get(missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing module: %v", err)
	}
}

func TestParseDigest(t *testing.T) {
	for _, bad := range []string{"", "sha256:", "md5:" + strings.Repeat("a", 32), "sha256:" + strings.Repeat("A", 64), "sha256:" + strings.Repeat("g", 64)} {
		if _, err := ParseDigest(bad); err == nil {
			t.Errorf("ParseDigest(%q) accepted", bad)
		}
	}
}
