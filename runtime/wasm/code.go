package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/wisp-faas/wisp/api"
)

// sharedCode is a module rewritten and compiled once for every Revision
// that runs the same bytes: a new Revision usually changes only env or
// scaling, not the module, and a compiled Go module costs megabytes of
// memory and ~100 ms to rewrite and load. wazero instantiates one
// CompiledModule any number of times with different configurations; the
// per-instance memory limit lives in the allocator, not in the code.
type sharedCode struct {
	key      string // sha256 of the module as loaded
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	// interruptible and globals are what rewrite made of the module.
	interruptible bool
	globals       []string
	refs          int // guarded by Provider.codeMu
}

// acquireCode returns the rewritten, compiled code of bin, making it only
// when no Revision holds it yet. Release it with releaseCode.
func (p *Provider) acquireCode(ctx context.Context, rev *api.Revision, bin []byte) (*sharedCode, error) {
	sum := sha256.Sum256(bin)
	key := hex.EncodeToString(sum[:])
	p.codeMu.Lock()
	if c, ok := p.code[key]; ok {
		c.refs++
		p.codeMu.Unlock()
		return c, nil
	}
	p.codeMu.Unlock()

	c := &sharedCode{key: key, rt: p.rt, refs: 1}
	rw, err := rewrite(bin)
	if err != nil {
		p.log.Warn("module not instrumented; using wazero's slower interruption instead",
			"revision", rev.Name, "module", rev.Spec.Wasm.Module, "error", err)
		if c.rt, err = p.closingRuntime(ctx); err != nil {
			return nil, err
		}
	} else {
		bin, c.interruptible, c.globals = rw.bin, true, rw.globals
		p.log.Debug("module rewritten", "revision", rev.Name, "dataSegments", rw.segmentsBefore, "merged", rw.segmentsAfter)
	}
	cctx := experimental.WithCompilationWorkers(ctx, p.opts.CompileWorkers)
	if c.compiled, err = c.rt.CompileModule(cctx, bin); err != nil {
		return nil, err
	}
	p.codeMu.Lock()
	defer p.codeMu.Unlock()
	if won, ok := p.code[key]; ok { // a concurrent Prepare of the same bytes won
		won.refs++
		_ = c.compiled.Close(ctx)
		return won, nil
	}
	p.code[key] = c
	return c, nil
}

// releaseCode drops one Revision's hold on c, closing the code when no
// Revision holds it any more.
func (p *Provider) releaseCode(ctx context.Context, c *sharedCode) {
	p.codeMu.Lock()
	defer p.codeMu.Unlock()
	if c.refs--; c.refs == 0 {
		delete(p.code, c.key)
		_ = c.compiled.Close(ctx)
	}
}
