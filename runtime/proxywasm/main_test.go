package proxywasm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// The test filters are Go programs in testdata/filters, built with the
// proxy-wasm Go SDK pinned in testdata/filters/go.mod. Builds are cached
// under the user's cache directory, keyed by the sources and the Go
// version, so that only the first run pays for them.
var (
	filtersOnce sync.Once
	filtersDir  string
	filtersErr  error
)

// filterWasm returns the module of the test filter name.
func filterWasm(t testing.TB, name string) []byte {
	t.Helper()
	filtersOnce.Do(func() { filtersDir, filtersErr = buildFilters() })
	if filtersErr != nil {
		t.Fatalf("building the test filters: %v", filtersErr)
	}
	b, err := os.ReadFile(filepath.Join(filtersDir, name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func buildFilters() (string, error) {
	src, err := filepath.Abs("testdata/filters")
	if err != nil {
		return "", err
	}
	goTool := os.Getenv("GO")
	if goTool == "" {
		goTool = "go"
	}
	version, err := exec.Command(goTool, "version").Output()
	if err != nil {
		return "", fmt.Errorf("go version: %w", err)
	}
	h := sha256.New()
	h.Write(version)
	var names []string
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
		if filepath.Base(path) == "main.go" {
			names = append(names, filepath.Dir(rel))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	out := filepath.Join(cache, "wisp", "proxywasm-test-filters", hex.EncodeToString(h.Sum(nil))[:16])
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	for _, name := range names {
		dst := filepath.Join(out, name+".wasm")
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		cmd := exec.Command(goTool, "build", "-buildmode=c-shared", "-o", dst+".tmp", "./"+name)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod")
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building %s: %w\n%s", name, err, strings.TrimSpace(string(b)))
		}
		if err := os.Rename(dst+".tmp", dst); err != nil {
			return "", err
		}
	}
	return out, nil
}

// watWasm assembles testdata/<name>.wat with wabt's wat2wasm.
func watWasm(t testing.TB, name string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".wasm")
	if b, err := exec.Command("wat2wasm", filepath.Join("testdata", name+".wat"), "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", name, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
