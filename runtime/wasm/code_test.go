package wasm

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/wisp-faas/wisp/api"
)

// TestRevisionsOfOneModuleShareCompiledCode: a second Revision of the
// same module holds no second copy of the code and keeps working when
// the first is released (internal/wasmcode tests that the code goes with
// the last holder).
func TestRevisionsOfOneModuleShareCompiledCode(t *testing.T) {
	p := newProvider(t, Options{})
	ctx := context.Background()
	a, b := newRevision("share-1", "hello-wat"), newRevision("share-2", "hello-wat")
	for _, rev := range []*api.Revision{a, b} {
		if err := p.Prepare(ctx, rev); err != nil {
			t.Fatal(err)
		}
	}
	p.mu.Lock()
	ma, mb := p.modules[revKey(a)], p.modules[revKey(b)]
	p.mu.Unlock()
	if ma == nil || mb == nil || ma.code != mb.code {
		t.Fatal("two revisions of one module hold two compiled copies")
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
}
