package oci

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// wasmMagic starts every WebAssembly binary module.
var wasmMagic = []byte{0x00, 'a', 's', 'm'}

// Pulled describes a module that Pull placed in the module store.
type Pulled struct {
	// Ref is the reference pulled, with Digest set to ManifestDigest so
	// that pulling it again yields the same module.
	Ref Reference
	// ManifestDigest is the digest of the manifest (or index) that the
	// reference named.
	ManifestDigest string
	// ModuleDigest is the sha256 of the module's bytes: its key in the
	// module store and a Filter's spec.sha256. (An Istio WasmPlugin's
	// sha256 of an oci:// URL is ManifestDigest instead.)
	ModuleDigest string
	// Size is the module's size in bytes.
	Size int64
	// Format is the layout the module was found in.
	Format Format
	// Cached reports that the module came from the cache: nothing was
	// downloaded, and for a pinned or IfNotPresent reference the registry
	// was not contacted at all.
	Cached bool
}

// Resolve asks the registry which manifest digest ref names now. It always
// contacts the registry and ignores the cache.
func Resolve(ctx context.Context, ref string, opts Options) (string, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return "", err
	}
	repo, err := opts.repository(r)
	if err != nil {
		return "", err
	}
	desc, err := repo.Resolve(ctx, r.reference())
	if err != nil {
		return "", explain(err, r, "resolving")
	}
	return desc.Digest.String(), nil
}

// Pull places the module that ref names in opts.Cache and records it in
// the index under opts.IndexDir; see the package doc for the layouts read
// and for the pull policy. Every blob read is checked against its digest
// and size, and the module against opts' size bound.
func Pull(ctx context.Context, ref string, opts Options) (Pulled, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return Pulled{}, err
	}
	if opts.Cache == nil {
		return Pulled{}, errors.New("pulling " + r.String() + ": no module store to pull into (Options.Cache is nil)")
	}
	want, err := opts.expectedModule()
	if err != nil {
		return Pulled{}, fmt.Errorf("pulling %s: %w", r, err)
	}
	// Without the network: a digest, or a tag pulled before, unless the
	// cached module is not the one expected (the tag may have moved).
	pinned := r.Digest
	if pinned == "" && opts.policyFor(r) == PullIfNotPresent {
		pinned, _ = opts.cachedTag(r)
	}
	if rec, ok := opts.cached(pinned); ok && (want == "" || rec.ModuleDigest == want) {
		return pulled(r, rec, true), nil
	}

	repo, err := opts.repository(r)
	if err != nil {
		return Pulled{}, err
	}
	desc, m, err := fetchManifest(ctx, repo, r, "pulling")
	if err != nil {
		return Pulled{}, err
	}
	manifestDigest := desc.Digest.String()
	if rec, ok := opts.cached(manifestDigest); ok {
		// The tag moved to (or stayed at) a manifest pulled before.
		if want != "" && rec.ModuleDigest != want {
			return Pulled{}, mismatch(r, rec.ModuleDigest, want)
		}
		return pulled(r, rec, true), opts.remember(r, rec)
	}
	if m.isIndex() {
		if m, err = platformManifest(ctx, repo, r, m); err != nil {
			return Pulled{}, err
		}
	}
	format, i, err := detect(r, m)
	if err != nil {
		return Pulled{}, err
	}
	// A layer that is the module itself has the module's digest: refuse
	// a mismatch before downloading it.
	if layer := m.Layers[i].Digest.String(); want != "" && format != FormatImage && layer != want {
		return Pulled{}, mismatch(r, layer, want)
	}
	moduleDigest, size, err := fetchModule(ctx, repo, r, opts, format, m.Layers[i])
	if err != nil {
		return Pulled{}, err
	}
	if want != "" && moduleDigest != want {
		return Pulled{}, mismatch(r, moduleDigest, want)
	}
	rec := manifestRecord{ManifestDigest: manifestDigest, ModuleDigest: moduleDigest, Size: size, Format: format}
	return pulled(r, rec, false), opts.remember(r, rec)
}

func pulled(r Reference, rec manifestRecord, cached bool) Pulled {
	r.Digest = rec.ManifestDigest
	return Pulled{Ref: r, ManifestDigest: rec.ManifestDigest, ModuleDigest: rec.ModuleDigest, Size: rec.Size, Format: rec.Format, Cached: cached}
}

// fetchModule downloads the layer that holds the module and stores the
// module, returning its digest and size.
func fetchModule(ctx context.Context, repo *remote.Repository, r Reference, opts Options, format Format, layer ocispec.Descriptor) (string, int64, error) {
	bound := opts.bound()
	if layer.Size > bound {
		return "", 0, fmt.Errorf("pulling %s: layer %s is %d bytes, more than the %d-byte bound on a module", r, layer.Digest, layer.Size, bound)
	}
	if format != FormatImage && opts.Cache.Has(layer.Digest.String()) {
		// A raw module layer is the module: its digest is the module's.
		if opts.Progress != nil {
			opts.Progress(ProgressEvent{Digest: layer.Digest.String(), MediaType: layer.MediaType, Done: layer.Size, Total: layer.Size})
		}
		return layer.Digest.String(), layer.Size, nil
	}
	blob, err := openBlob(ctx, repo, r, opts, layer)
	if err != nil {
		return "", 0, err
	}
	defer blob.Close()

	var digest string
	var size int64
	if format == FormatImage {
		digest, size, err = storeFromImageLayer(r, opts, layer, blob)
	} else {
		digest, size, err = storeModule(r, opts, format, layer, blob)
	}
	if err != nil {
		return "", 0, err
	}
	if format != FormatImage && digest != layer.Digest.String() {
		// Unreachable while blobs are verified; kept as a tripwire.
		return "", 0, fmt.Errorf("pulling %s: layer %s stored as %s", r, layer.Digest, digest)
	}
	return digest, size, nil
}

// storeModule stores a layer that is the module itself.
func storeModule(r Reference, opts Options, format Format, layer ocispec.Descriptor, blob io.Reader) (string, int64, error) {
	br := bufio.NewReader(blob)
	head, err := br.Peek(len(wasmMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return "", 0, fmt.Errorf("pulling %s: downloading layer %s: %w", r, layer.Digest, err)
	}
	if !bytes.Equal(head, wasmMagic) {
		what := "the single layer"
		if format != FormatRaw {
			what = "the " + layer.MediaType + " layer"
		}
		return "", 0, fmt.Errorf("pulling %s: %s (media type %s, %d bytes) is not a WebAssembly module: it starts with %q, not \"\\x00asm\"; push a compiled .wasm file",
			r, what, layer.MediaType, layer.Size, head)
	}
	digest, err := opts.Cache.Put(br)
	if err != nil {
		return "", 0, fmt.Errorf("pulling %s: storing layer %s: %w", r, layer.Digest, err)
	}
	return digest, layer.Size, nil
}

// storeFromImageLayer extracts plugin.wasm from a tar+gzip layer and
// stores it once the whole layer has been verified.
func storeFromImageLayer(r Reference, opts Options, layer ocispec.Descriptor, blob io.Reader) (string, int64, error) {
	bound := opts.bound()
	fail := func(format string, args ...any) (string, int64, error) {
		return "", 0, fmt.Errorf("pulling %s: layer %s: %s", r, layer.Digest, fmt.Sprintf(format, args...))
	}
	gz, err := gzip.NewReader(blob)
	if err != nil {
		return fail("not tar+gzip as its media type %s says: %v", layer.MediaType, err)
	}
	// Bound what decompression may produce, against gzip bombs.
	tr := tar.NewReader(io.LimitReader(gz, 2*bound+1<<20))
	tmp, err := os.CreateTemp("", "wisp-oci-*.wasm")
	if err != nil {
		return fail("%v", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var size int64 = -1
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail("reading the tar archive: %v", err)
		}
		if path.Base(h.Name) != pluginFile || h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > bound {
			return fail("%s is %d bytes, more than the %d-byte bound on a module", h.Name, h.Size, bound)
		}
		if size, err = io.Copy(tmp, tr); err != nil {
			return fail("reading %s: %v", h.Name, err)
		}
		break
	}
	if size < 0 {
		return fail("the image's last layer has no %s; Istio's image layout puts the module at /%s", pluginFile, pluginFile)
	}
	// Read the rest of the blob so that its digest is checked before the
	// module is stored.
	if _, err := io.Copy(io.Discard, blob); err != nil {
		return fail("%v", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fail("%v", err)
	}
	head := make([]byte, len(wasmMagic))
	n, _ := io.ReadFull(tmp, head)
	if !bytes.Equal(head[:n], wasmMagic) {
		return fail("%s is not a WebAssembly module: it starts with %q, not \"\\x00asm\"", pluginFile, head[:n])
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fail("%v", err)
	}
	digest, err := opts.Cache.Put(tmp)
	if err != nil {
		return fail("storing %s: %v", pluginFile, err)
	}
	return digest, size, nil
}

// openBlob fetches a blob and returns a reader that reports progress and
// fails, instead of ending, if the bytes do not match the descriptor.
func openBlob(ctx context.Context, repo *remote.Repository, r Reference, opts Options, desc ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := repo.Blobs().Fetch(ctx, desc)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return nil, fmt.Errorf("pulling %s: blob %s that the manifest names is missing from the registry: %w", r, desc.Digest, ErrNotFound)
		}
		return nil, explain(err, r, "pulling")
	}
	vr := content.NewVerifyReader(rc, desc)
	b := &verifiedBlob{vr: vr, closer: rc, desc: desc, progress: opts.Progress}
	b.report()
	return b, nil
}

// verifiedBlob turns the end of a blob whose bytes do not match its
// descriptor into an error, and reports progress.
type verifiedBlob struct {
	vr       *content.VerifyReader
	closer   io.Closer
	desc     ocispec.Descriptor
	done     int64
	progress func(ProgressEvent)
}

func (b *verifiedBlob) Read(p []byte) (int, error) {
	n, err := b.vr.Read(p)
	if n > 0 {
		b.done += int64(n)
		b.report()
	}
	if errors.Is(err, io.EOF) {
		if verr := b.vr.Verify(); verr != nil {
			return n, fmt.Errorf("blob %s does not match its descriptor (%d bytes): %w", b.desc.Digest, b.desc.Size, verr)
		}
	} else if errors.Is(err, io.ErrUnexpectedEOF) {
		return n, fmt.Errorf("blob %s ended after %d of %d bytes: %w", b.desc.Digest, b.done, b.desc.Size, err)
	}
	return n, err
}

func (b *verifiedBlob) Close() error { return b.closer.Close() }

func (b *verifiedBlob) report() {
	if b.progress != nil {
		b.progress(ProgressEvent{Digest: b.desc.Digest.String(), MediaType: b.desc.MediaType, Done: b.done, Total: b.desc.Size})
	}
}
