// Package wasmcode compiles WebAssembly modules once per owner and shares
// the result: every user of the same bytes gets the same rewritten,
// compiled code, released when the last one lets go. Modules that
// internal/wasmrewrite can instrument compile on a runtime that does not
// close on context done (the rewrite makes them interruptible cheaply);
// the rest compile on a second runtime that does.
//
// It owns the two runtimes and the table of code; what a runtime holds
// besides the module (WASI, host modules) is its owner's NewRuntime. It
// must not instantiate modules: that is its owners' business.
package wasmcode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/wisp-faas/wisp/internal/wasmrewrite"
)

// Code is a module rewritten (when it could be) and compiled.
type Code struct {
	// Digest is the sha256 of the module's bytes as loaded, in hex.
	Digest string
	// Runtime is the runtime the code was compiled on: instantiate it there.
	Runtime  wazero.Runtime
	Compiled wazero.CompiledModule
	// Interruptible is true when wasmrewrite instrumented the module;
	// Globals are the mutable globals it exported for snapshots, and
	// SegmentsBefore and SegmentsAfter its data segments.
	Interruptible                 bool
	Globals                       []string
	SegmentsBefore, SegmentsAfter int

	refs int // guarded by Cache.mu
}

// Options configure a Cache.
type Options struct {
	// NewRuntime returns a runtime with what the modules import, closing
	// modules when their call's context ends if closeOnDone. Required.
	NewRuntime func(ctx context.Context, closeOnDone bool) (wazero.Runtime, error)
	// CompileWorkers is how many goroutines compile one module; zero
	// means GOMAXPROCS.
	CompileWorkers int
	// Log receives a warning for a module that cannot be instrumented.
	Log *slog.Logger
}

// Cache is the shared code of one owner. It is safe for concurrent use.
type Cache struct {
	opts Options
	rt   wazero.Runtime

	closingOnce sync.Once
	closing     wazero.Runtime
	closingErr  error

	mu   sync.Mutex
	code map[string]*Code
}

// New returns a Cache with its main runtime started.
func New(ctx context.Context, o Options) (*Cache, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	rt, err := o.NewRuntime(ctx, false)
	if err != nil {
		return nil, err
	}
	return &Cache{opts: o, rt: rt, code: map[string]*Code{}}, nil
}

// Acquire returns the code of bin, rewriting and compiling it only when
// nobody holds it yet. logAttrs name the module in a warning. Release it
// with Release.
func (c *Cache) Acquire(ctx context.Context, bin []byte, logAttrs ...any) (*Code, error) {
	sum := sha256.Sum256(bin)
	digest := hex.EncodeToString(sum[:])
	c.mu.Lock()
	if code, ok := c.code[digest]; ok {
		code.refs++
		c.mu.Unlock()
		return code, nil
	}
	c.mu.Unlock()

	code := &Code{Digest: digest, Runtime: c.rt, refs: 1}
	if rw, err := wasmrewrite.Rewrite(bin); err != nil {
		c.opts.Log.Warn("module not instrumented; using wazero's slower interruption instead", append(logAttrs, "error", err)...)
		c.closingOnce.Do(func() { c.closing, c.closingErr = c.opts.NewRuntime(ctx, true) })
		if c.closingErr != nil {
			return nil, c.closingErr
		}
		code.Runtime = c.closing
	} else {
		bin, code.Interruptible, code.Globals = rw.Bin, true, rw.Globals
		code.SegmentsBefore, code.SegmentsAfter = rw.SegmentsBefore, rw.SegmentsAfter
	}
	var err error
	if code.Compiled, err = code.Runtime.CompileModule(experimental.WithCompilationWorkers(ctx, c.opts.CompileWorkers), bin); err != nil {
		return nil, fmt.Errorf("compiling module sha256:%s: %w", digest, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if won, ok := c.code[digest]; ok { // a concurrent Acquire of the same bytes won
		won.refs++
		_ = code.Compiled.Close(ctx)
		return won, nil
	}
	c.code[digest] = code
	return code, nil
}

// Release drops one hold on code, closing it when nobody holds it.
func (c *Cache) Release(ctx context.Context, code *Code) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code.refs--; code.refs == 0 {
		delete(c.code, code.Digest)
		_ = code.Compiled.Close(ctx)
	}
}

// Close closes the runtimes, and with them every module instantiated on
// them. Nothing may be acquired after it.
func (c *Cache) Close(ctx context.Context) error {
	err := c.rt.Close(ctx)
	if c.closing != nil {
		err = errors.Join(err, c.closing.Close(ctx))
	}
	return err
}
