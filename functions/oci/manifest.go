package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// Format names the layout a module was found in; see the package doc.
type Format string

const (
	// FormatWasm is the CNCF TAG Runtime Wasm artifact: one application/wasm layer.
	FormatWasm Format = "wasm"
	// FormatModule is Solo's "oci" variant read by Istio: a layer of type
	// application/vnd.module.wasm.content.layer.v1+wasm. Push writes it.
	FormatModule Format = "module"
	// FormatImage is Solo's "compat" variant read by Istio: an image whose
	// last tar+gzip layer holds plugin.wasm.
	FormatImage Format = "image"
	// FormatRaw is a single layer of another media type holding the module.
	FormatRaw Format = "raw"
)

// Media types this package reads or writes.
const (
	mediaTypeWasmConfig   = "application/vnd.wasm.config.v0+json"
	mediaTypeWasmLayer    = "application/wasm"
	mediaTypeModuleConfig = "application/vnd.module.wasm.config.v1+json"
	mediaTypeModuleLayer  = "application/vnd.module.wasm.content.layer.v1+wasm"
	mediaTypeDockerLayer  = "application/vnd.docker.image.rootfs.diff.tar.gzip"

	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// pluginFile is the file Istio's compat variant looks for, by base name,
// in an image's last layer.
const pluginFile = "plugin.wasm"

// manifest is the union of the fields of an OCI image manifest, a Docker
// v2 schema 2 manifest, an OCI image index and a Docker manifest list.
type manifest struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType,omitempty"`
	ArtifactType  string               `json:"artifactType,omitempty"`
	Config        *ocispec.Descriptor  `json:"config,omitempty"`
	Layers        []ocispec.Descriptor `json:"layers,omitempty"`
	Manifests     []ocispec.Descriptor `json:"manifests,omitempty"`
	Annotations   map[string]string    `json:"annotations,omitempty"`
}

func (m manifest) isIndex() bool {
	return m.MediaType == ocispec.MediaTypeImageIndex || m.MediaType == mediaTypeDockerList
}

// parseManifest decodes a manifest fetched as desc. The media type is the
// registry's Content-Type, else the body's own, else inferred.
func parseManifest(desc ocispec.Descriptor, body []byte, ref Reference) (manifest, error) {
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return manifest{}, fmt.Errorf("%s: manifest %s is not valid JSON: %w", ref, desc.Digest, err)
	}
	known := []string{ocispec.MediaTypeImageManifest, mediaTypeDockerManifest, ocispec.MediaTypeImageIndex, mediaTypeDockerList}
	switch {
	case slices.Contains(known, desc.MediaType):
		m.MediaType = desc.MediaType
	case slices.Contains(known, m.MediaType):
	case strings.HasPrefix(desc.MediaType, "application/vnd.docker.distribution.manifest.v1"):
		return manifest{}, fmt.Errorf("%s is a Docker schema 1 manifest, which wisp does not read: push it again with a current tool", ref)
	case m.Manifests != nil:
		m.MediaType = ocispec.MediaTypeImageIndex
	case m.Layers != nil:
		m.MediaType = ocispec.MediaTypeImageManifest
	default:
		return manifest{}, fmt.Errorf("%s: unsupported manifest media type %q; wisp reads OCI image manifests and indexes and Docker v2 schema 2 manifests", ref, desc.MediaType)
	}
	if m.SchemaVersion != 2 {
		return manifest{}, fmt.Errorf("%s: manifest %s has schemaVersion %d; want 2", ref, desc.Digest, m.SchemaVersion)
	}
	return m, nil
}

// fetchManifest GETs the manifest that reference (tag or digest) names,
// verifying its size and digest.
func fetchManifest(ctx context.Context, repo *remote.Repository, ref Reference, doing string) (ocispec.Descriptor, manifest, error) {
	desc, rc, err := repo.FetchReference(ctx, ref.reference())
	if err != nil {
		return ocispec.Descriptor{}, manifest{}, explain(err, ref, doing)
	}
	defer rc.Close()
	body, err := readManifest(rc, desc, ref)
	if err != nil {
		return ocispec.Descriptor{}, manifest{}, err
	}
	if ref.Digest != "" && desc.Digest.String() != ref.Digest {
		return ocispec.Descriptor{}, manifest{}, fmt.Errorf("%s %s: the registry returned manifest %s instead", doing, ref, desc.Digest)
	}
	m, err := parseManifest(desc, body, ref)
	return desc, m, err
}

func readManifest(rc io.Reader, desc ocispec.Descriptor, ref Reference) ([]byte, error) {
	if desc.Size > maxManifestBytes {
		return nil, fmt.Errorf("%s: manifest %s is %d bytes, more than the %d-byte bound", ref, desc.Digest, desc.Size, maxManifestBytes)
	}
	body, err := content.ReadAll(rc, desc)
	if err != nil {
		return nil, fmt.Errorf("%s: reading manifest %s: %w (the registry sent bytes that do not match its digest or size)", ref, desc.Digest, err)
	}
	return body, nil
}

// platformManifest turns an index into the image manifest it holds when it
// holds exactly one; otherwise it says to pick one.
func platformManifest(ctx context.Context, repo *remote.Repository, ref Reference, m manifest) (manifest, error) {
	if len(m.Manifests) != 1 {
		entries := make([]string, 0, len(m.Manifests))
		for _, d := range m.Manifests {
			entries = append(entries, platformString(d.Platform)+" "+d.Digest.String())
		}
		return manifest{}, fmt.Errorf("%s is an image index of %d manifests [%s]: pick a platform manifest and pull %s@<digest>",
			ref, len(m.Manifests), strings.Join(entries, ", "), ref.repository())
	}
	child := m.Manifests[0]
	rc, err := repo.Manifests().Fetch(ctx, child)
	if err != nil {
		return manifest{}, explain(err, ref, "fetching the only manifest of index")
	}
	defer rc.Close()
	body, err := readManifest(rc, child, ref)
	if err != nil {
		return manifest{}, err
	}
	cm, err := parseManifest(child, body, ref)
	if err != nil {
		return manifest{}, err
	}
	if cm.isIndex() {
		return manifest{}, fmt.Errorf("%s: index entry %s is itself an index; pull a platform manifest by digest", ref, child.Digest)
	}
	return cm, nil
}

func platformString(p *ocispec.Platform) string {
	if p == nil {
		return "(no platform)"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// detect finds the layer that holds the module, from descriptors alone.
// FormatRaw is a guess until the bytes are seen.
func detect(ref Reference, m manifest) (Format, int, error) {
	if len(m.Layers) == 0 {
		return "", 0, fmt.Errorf("%s: the manifest has no layers, so no module", ref)
	}
	for _, c := range []struct {
		mediaType string
		format    Format
	}{{mediaTypeWasmLayer, FormatWasm}, {mediaTypeModuleLayer, FormatModule}} {
		found := -1
		for i, l := range m.Layers {
			if l.MediaType != c.mediaType {
				continue
			}
			if found >= 0 {
				return "", 0, fmt.Errorf("%s: %d layers of type %s; wisp runs one module per reference", ref, countType(m.Layers, c.mediaType), c.mediaType)
			}
			found = i
		}
		if found >= 0 {
			return c.format, found, nil
		}
	}
	last := len(m.Layers) - 1
	if t := m.Layers[last].MediaType; t == ocispec.MediaTypeImageLayerGzip || t == mediaTypeDockerLayer {
		return FormatImage, last, nil
	}
	if len(m.Layers) == 1 {
		return FormatRaw, 0, nil
	}
	types := make([]string, len(m.Layers))
	for i, l := range m.Layers {
		types[i] = l.MediaType
	}
	return "", 0, fmt.Errorf("%s: no WebAssembly module among %d layers [%s]; wisp reads a layer of type %s or %s, an image whose last tar+gzip layer holds %s, or a single layer holding the module",
		ref, len(m.Layers), strings.Join(types, ", "), mediaTypeWasmLayer, mediaTypeModuleLayer, pluginFile)
}

func countType(ds []ocispec.Descriptor, mediaType string) int {
	n := 0
	for _, d := range ds {
		if d.MediaType == mediaType {
			n++
		}
	}
	return n
}
