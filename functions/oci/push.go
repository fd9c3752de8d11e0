package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// runtimeConfig is the blob Push writes as both the manifest config and
// the first layer: Solo's runtime config (type, abiVersions, config). No
// reader of it matters to Istio; "wasm" says the module is not tied to one
// host.
var runtimeConfig = []byte(`{"type":"wasm","abiVersions":[],"config":{}}`)

// Titles of the pushed layers (org.opencontainers.image.title), the file
// names `oras pull` writes them to.
const (
	configTitle = "runtime-config.json"
	moduleTitle = pluginFile
)

// Push uploads wasm to the registry in the layout Istio's WasmPlugin
// fetcher reads (see the package doc), tags it with ref's tag ("latest"
// when ref names none) and returns the manifest digest. With opts.Cache
// set it also stores the module and records it in the index, so that the
// node can pull the returned digest without the network.
func Push(ctx context.Context, wasm []byte, ref string, opts Options) (string, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return "", err
	}
	if r.Digest != "" {
		return "", fmt.Errorf("pushing to %s: name a tag, not a digest; the registry computes the digest", r)
	}
	if bound := opts.bound(); int64(len(wasm)) > bound {
		return "", fmt.Errorf("pushing to %s: the module is %d bytes, more than the %d-byte bound", r, len(wasm), bound)
	}
	if !bytes.HasPrefix(wasm, wasmMagic) {
		return "", fmt.Errorf("pushing to %s: not a WebAssembly binary module (it does not start with \\0asm); compile WAT with wat2wasm first", r)
	}

	configDesc := blobDescriptor(mediaTypeModuleConfig, runtimeConfig, nil)
	moduleDesc := blobDescriptor(mediaTypeModuleLayer, wasm, map[string]string{ocispec.AnnotationTitle: moduleTitle})
	configLayer := blobDescriptor(mediaTypeModuleConfig, runtimeConfig, map[string]string{ocispec.AnnotationTitle: configTitle})
	manifestJSON, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{configLayer, moduleDesc},
	})
	if err != nil {
		return "", fmt.Errorf("pushing to %s: %w", r, err)
	}
	manifestDesc := blobDescriptor(ocispec.MediaTypeImageManifest, manifestJSON, nil)

	repo, err := opts.repository(r)
	if err != nil {
		return "", err
	}
	for _, b := range []struct {
		desc ocispec.Descriptor
		data []byte
	}{{configDesc, runtimeConfig}, {moduleDesc, wasm}} {
		if err := pushBlob(ctx, repo, r, opts, b.desc, b.data); err != nil {
			return "", err
		}
	}
	if err := repo.PushReference(ctx, manifestDesc, bytes.NewReader(manifestJSON), r.Tag); err != nil {
		return "", explain(err, r, "pushing the manifest to")
	}

	manifestDigest := manifestDesc.Digest.String()
	if opts.Cache != nil {
		moduleDigest, err := opts.Cache.Put(bytes.NewReader(wasm))
		if err != nil {
			return manifestDigest, fmt.Errorf("pushed %s@%s, but storing the module locally failed: %w", r, manifestDigest, err)
		}
		rec := manifestRecord{ManifestDigest: manifestDigest, ModuleDigest: moduleDigest, Size: int64(len(wasm)), Format: FormatModule}
		if err := opts.remember(r, rec); err != nil {
			return manifestDigest, err
		}
	}
	return manifestDigest, nil
}

func blobDescriptor(mediaType string, data []byte, annotations map[string]string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data)), Annotations: annotations}
}

// pushBlob uploads a blob unless the repository already holds it.
func pushBlob(ctx context.Context, repo *remote.Repository, r Reference, opts Options, desc ocispec.Descriptor, data []byte) error {
	report := func(done int64) {
		if opts.Progress != nil {
			opts.Progress(ProgressEvent{Digest: desc.Digest.String(), MediaType: desc.MediaType, Done: done, Total: desc.Size})
		}
	}
	exists, err := repo.Exists(ctx, desc)
	if err != nil {
		return explain(err, r, "pushing to")
	}
	if exists {
		report(desc.Size)
		return nil
	}
	report(0)
	pr := &progressReader{r: bytes.NewReader(data), report: report}
	if err := repo.Push(ctx, desc, pr); err != nil {
		return explain(err, r, "pushing to")
	}
	return nil
}

// progressReader reports the bytes read through it.
type progressReader struct {
	r      io.Reader
	done   int64
	report func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.done += int64(n)
		p.report(p.done)
	}
	return n, err
}
