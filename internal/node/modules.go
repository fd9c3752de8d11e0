package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/functions/modules"
	"github.com/wisp-faas/wisp/functions/oci"
	"github.com/wisp-faas/wisp/runtime/container"
)

// moduleSource finds the bytes of a revision's Wasm module: uploaded
// modules by digest from the store, OCI modules pulled (once) into it; and
// pins what a new revision's source names to a digest.
type moduleSource struct {
	store    *modules.Store
	indexDir string
	images   *container.Provider
}

func (m *moduleSource) options(w *api.WasmSource, policy oci.PullPolicy) oci.Options {
	return oci.Options{PlainHTTP: w.PlainHTTP, Cache: m.store, IndexDir: m.indexDir, Policy: policy}
}

// Pin rewrites the OCI reference of a new revision's module or image to
// the digest its tag names now, so the revision never changes under a
// moved tag.
func (m *moduleSource) Pin(ctx context.Context, rev *api.Revision) error {
	if c := rev.Spec.Container; c != nil && m.images != nil {
		pinned, err := m.images.Resolve(ctx, c.Image)
		if err != nil {
			return fmt.Errorf("resolving image %s: %w", c.Image, err)
		}
		c.Image = pinned
		return nil
	}
	w := rev.Spec.Wasm
	if w == nil || !strings.HasPrefix(w.Module, "oci://") {
		return nil
	}
	pulled, err := oci.Pull(ctx, w.Module, m.options(w, oci.PullAlways))
	if err != nil {
		return fmt.Errorf("pulling module %s: %w", w.Module, err)
	}
	w.Module = "oci://" + pulled.Ref.String()
	rev.Status.ResolvedModule = pulled.ModuleDigest
	return nil
}

// Load returns the module bytes of a revision.
func (m *moduleSource) Load(ctx context.Context, rev *api.Revision) ([]byte, error) {
	w := rev.Spec.Wasm
	if w == nil {
		return nil, errors.New("the revision has no Wasm module")
	}
	digest := w.Module
	if strings.HasPrefix(digest, "oci://") {
		pulled, err := oci.Pull(ctx, w.Module, m.options(w, oci.PullIfNotPresent))
		if err != nil {
			return nil, fmt.Errorf("pulling module %s: %w", w.Module, err)
		}
		digest = pulled.ModuleDigest
	}
	return m.store.Get(digest)
}

// Filter returns the module of a Filter resource: pulled (once, or on
// every change with imagePullPolicy Always) when its source is an OCI
// reference, from the store when it is an uploaded digest; either way
// checked against the Filter's sha256 when it gives one.
func (m *moduleSource) Filter(ctx context.Context, f *api.Filter) ([]byte, error) {
	digest := f.Spec.Source
	if strings.HasPrefix(digest, "oci://") {
		policy := oci.PullIfNotPresent
		if f.Spec.ImagePullPolicy == api.PullAlways {
			policy = oci.PullAlways
		}
		pulled, err := oci.Pull(ctx, digest, oci.Options{
			PlainHTTP: f.Spec.PlainHTTP, Cache: m.store, IndexDir: m.indexDir, Policy: policy, ModuleSHA256: f.Spec.SHA256,
		})
		if err != nil {
			return nil, fmt.Errorf("pulling %s: %w", f.Spec.Source, err)
		}
		digest = pulled.ModuleDigest
	} else if f.Spec.SHA256 != "" && digest != "sha256:"+f.Spec.SHA256 {
		return nil, fmt.Errorf("module %s does not have the sha256 %s the filter asks for", digest, f.Spec.SHA256)
	}
	return m.store.Get(digest)
}
