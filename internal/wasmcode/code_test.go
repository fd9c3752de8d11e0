package wasmcode

import (
	"context"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// module is the smallest module the rewriter instruments: one memory and
// one exported function.
var module = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
	0x03, 0x02, 0x01, 0x00, // func 0 of type 0
	0x05, 0x03, 0x01, 0x00, 0x01, // memory: min 1
	0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, // export "f" func 0
	0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: empty body
}

func newCache(t *testing.T) *Cache {
	t.Helper()
	ctx := context.Background()
	c, err := New(ctx, Options{NewRuntime: func(ctx context.Context, closeOnDone bool) (wazero.Runtime, error) {
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(closeOnDone))
		_, err := wasi_snapshot_preview1.Instantiate(ctx, rt)
		return rt, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(ctx) })
	return c
}

func TestSameBytesShareOneCodeUntilTheLastRelease(t *testing.T) {
	c := newCache(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	codes := make([]*Code, 8)
	for i := range codes {
		wg.Go(func() {
			code, err := c.Acquire(ctx, module)
			if err != nil {
				t.Error(err)
				return
			}
			codes[i] = code
		})
	}
	wg.Wait()
	for _, code := range codes[1:] {
		if code != codes[0] {
			t.Fatal("concurrent acquires of the same bytes got different code")
		}
	}
	if !codes[0].Interruptible {
		t.Error("the module was not instrumented")
	}
	for _, code := range codes[:7] {
		c.Release(ctx, code)
	}
	if _, err := codes[0].Runtime.InstantiateModule(ctx, codes[0].Compiled, wazero.NewModuleConfig().WithName("")); err != nil {
		t.Fatalf("the code was closed while one holder was left: %v", err)
	}
	c.Release(ctx, codes[7])
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.code) != 0 {
		t.Fatalf("%d codes kept after the last release", len(c.code))
	}
}

func TestUninstrumentableModuleRunsOnTheClosingRuntime(t *testing.T) {
	c := newCache(t)
	ctx := context.Background()
	noMemory := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	code, err := c.Acquire(ctx, noMemory)
	if err != nil {
		t.Fatal(err)
	}
	if code.Interruptible || code.Runtime == c.rt || code.Runtime != c.closing {
		t.Fatalf("a module without memory: interruptible %v, on the main runtime %v", code.Interruptible, code.Runtime == c.rt)
	}
	if _, err := c.Acquire(ctx, []byte("not wasm")); err == nil {
		t.Fatal("bytes that are not Wasm compiled")
	}
}
