package wasm

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	wapi "github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

func TestRewriteRuns(t *testing.T) {
	bin, err := os.ReadFile(guests["globals"])
	if err != nil {
		t.Fatal(err)
	}
	rw, err := rewrite(bin)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{snapshotGlobalPrefix + "0", snapshotGlobalPrefix + "2"}; !slices.Equal(rw.globals, want) {
		t.Errorf("exported globals %q, want the mutable ones %q", rw.globals, want)
	}
	if rw.segmentsBefore != 3 || rw.segmentsAfter != 2 {
		t.Errorf("segments %d → %d, want 3 → 2", rw.segmentsBefore, rw.segmentsAfter)
	}

	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	mod, err := rt.InstantiateWithConfig(ctx, rw.bin, wazero.NewModuleConfig())
	if err != nil {
		t.Fatalf("the rewritten module does not instantiate: %v", err)
	}
	for addr, want := range map[uint64]uint64{90: 'a', 91: 'b', 95: 0, 100: 'c', 101: 'd', 60000: 'e', 60001: 'f'} {
		if got, _ := mod.ExportedFunction("peek").Call(ctx, addr); got[0] != want {
			t.Errorf("memory[%d] = %d, want %d: merged data segments differ", addr, got[0], want)
		}
	}
	// Loops run across many fuel refills and still count right.
	if got, err := mod.ExportedFunction("count").Call(ctx, 10*fuel+3); err != nil || got[0] != 10*fuel+3 {
		t.Fatalf("count = %v, %v", got, err)
	}
	if g := mod.ExportedGlobal(snapshotGlobalPrefix + "2"); g == nil || g.Get() != 7 {
		t.Errorf("global 2 not exported with its value")
	}
	// Once interrupted, the guest traps within fuel iterations.
	mod.ExportedGlobal(interruptExport).(wapi.MutableGlobal).Set(1)
	if _, err := mod.ExportedFunction("count").Call(ctx, 1<<30); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("interrupted count: %v, want a trap", err)
	}
}

func TestRewriteGuests(t *testing.T) {
	// Every guest built for the tests is instrumented, none falls back to
	// wazero's slower interruption.
	for name, path := range guests {
		if name == "nomemory" {
			continue
		}
		bin, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rewrite(bin); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bin, _ := os.ReadFile(guests["nomemory"])
	if _, err := rewrite(bin); err == nil || !strings.Contains(err.Error(), "no memory") {
		t.Errorf("nomemory: %v, want an error", err)
	}
	if _, err := rewrite([]byte("not wasm")); err == nil {
		t.Error("rewrite took a non-module")
	}
}

func TestUninstrumentedModuleStillTimesOut(t *testing.T) {
	p := newProvider(t, Options{})
	rev := newRevision("nomem-1", "nomemory")
	inst, _ := start(t, p, rev)
	m, _ := p.module(context.Background(), rev)
	if m.interruptible {
		t.Fatal("a module without memory cannot be instrumented")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	wantStatus(t, doCtx(ctx, inst, "GET", "/", nil), http.StatusGatewayTimeout)
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := &lineWriter{emit: func(l string) { got = append(got, l) }}
	w.Write([]byte("one\r\ntw"))
	w.Write([]byte("o\nthree"))
	if !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("lines %q", got)
	}
	w.Flush()
	w.Write([]byte(strings.Repeat("x", maxLogLine+1) + "\n"))
	if len(got) != 5 || got[2] != "three" || len(got[3]) != maxLogLine || got[4] != "x" {
		t.Fatalf("got %d lines", len(got))
	}
}

func TestSnapshotRestores(t *testing.T) {
	bin, _ := os.ReadFile(guests["globals"])
	rw, err := rewrite(bin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	cm, err := rt.CompileModule(ctx, rw.bin)
	if err != nil {
		t.Fatal(err)
	}
	cfg := wazero.NewModuleConfig().WithName("")
	for _, dir := range []string{"", t.TempDir()} {
		src, _ := rt.InstantiateModule(ctx, cm, cfg)
		b, _ := src.Memory().Read(0, src.Memory().Size())
		fresh := bytes.Clone(b)
		// "Initialise": change globals, grow memory, write below and above
		// the first page.
		src.ExportedFunction("count").Call(ctx, 42)
		src.Memory().Grow(1)
		src.Memory().WriteString(70000, "grown")
		src.Memory().WriteString(90, "AB")
		s, err := takeSnapshot(src, fresh, rw.globals, dir)
		if err != nil {
			t.Fatal(err)
		}
		if (s.file != nil) != (dir != "") || len(s.runs) != 2 || s.size != 2*snapshotChunk {
			t.Errorf("dir %q: file %v, runs %+v, size %d", dir, s.file != nil, s.runs, s.size)
		}
		dst, _ := rt.InstantiateModule(ctx, cm, cfg)
		if err := s.restore(dst); err != nil {
			t.Fatal(err)
		}
		got, _ := dst.Memory().Read(0, dst.Memory().Size())
		want, _ := src.Memory().Read(0, src.Memory().Size())
		if !bytes.Equal(got, want) {
			t.Errorf("dir %q: restored memory differs", dir)
		}
		if g := dst.ExportedGlobal(snapshotGlobalPrefix + "0").Get(); g != 42 {
			t.Errorf("dir %q: restored $count = %d, want 42", dir, g)
		}
		s.release()
	}
}
