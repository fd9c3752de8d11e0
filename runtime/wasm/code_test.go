package wasm

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/wisp-faas/wisp/api"
)

// TestRevisionsOfOneModuleShareCompiledCode: a second Revision of the
// same module holds no second copy of the code, keeps working when the
// first is released, and the code goes with the last Revision.
func TestRevisionsOfOneModuleShareCompiledCode(t *testing.T) {
	p := newProvider(t, Options{})
	ctx := context.Background()
	a, b := newRevision("share-1", "hello-wat"), newRevision("share-2", "hello-wat")
	for _, rev := range []*api.Revision{a, b} {
		if err := p.Prepare(ctx, rev); err != nil {
			t.Fatal(err)
		}
	}
	p.codeMu.Lock()
	entries, refs := len(p.code), 0
	for _, c := range p.code {
		refs += c.refs
	}
	p.codeMu.Unlock()
	if entries != 1 || refs != 2 {
		t.Fatalf("two revisions of one module: %d compiled copies, %d references; want 1 and 2", entries, refs)
	}

	p.Release(a)
	inst, err := p.Start(ctx, b, nil)
	if err != nil {
		t.Fatalf("revision b after a was released: %v", err)
	}
	rec := httptest.NewRecorder()
	inst.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 {
		t.Fatalf("revision b answered %d after a was released", rec.Code)
	}
	_ = inst.Stop(ctx)

	p.Release(b)
	p.codeMu.Lock()
	defer p.codeMu.Unlock()
	if len(p.code) != 0 {
		t.Fatalf("compiled code kept after its last revision was released: %d", len(p.code))
	}
}
