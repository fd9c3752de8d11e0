package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestParseReference(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, c := range []struct {
		in   string
		want Reference
	}{
		{"oci://127.0.0.1:5000/filters/auth:v1", Reference{"127.0.0.1:5000", "filters/auth", "v1", ""}},
		{"ghcr.io/acme/fn:v1.2", Reference{"ghcr.io", "acme/fn", "v1.2", ""}},
		{"ghcr.io/acme/fn", Reference{"ghcr.io", "acme/fn", "latest", ""}},
		{"oci://localhost:5000/a/b@" + d, Reference{"localhost:5000", "a/b", "", d}},
		{"localhost/a:v1@" + d, Reference{"localhost", "a", "v1", d}},
	} {
		got, err := ParseReference(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseReference(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	if got := (Reference{"h:1", "r/s", "t", d}).String(); got != "h:1/r/s:t@"+d {
		t.Errorf("String() = %q", got)
	}
	for _, c := range []struct{ in, says string }{
		{"https://ghcr.io/a:v1", "scheme https:// is not an OCI registry"},
		{"file:///tmp/x.wasm", "scheme file://"},
		{"myimage:v1", "registry host and the repository are both required"},
		{"oci://ghcr.io/", "registry host and the repository are both required"},
		{"ghcr.io/Acme/fn:v1", `repository "Acme/fn" is not valid`},
		{"ghcr.io/acme/fn:", `tag "" is not valid`},
		{"ghcr.io/acme/fn:-x", `tag "-x" is not valid`},
		{"ghcr.io/acme/fn@sha256:abc", `digest "sha256:abc" is not valid`},
		{"ghcr.io/acme/fn@sha512:" + strings.Repeat("ab", 64), "want sha256:"},
		{"ghcr.io/acme/fn@" + strings.ToUpper(d), "is not valid"},
	} {
		_, err := ParseReference(c.in)
		mustContain(t, err, c.says)
	}
}

// istioFetch reads ref the way Istio's WasmPlugin fetcher reads its "oci"
// variant (istio/istio pkg/wasm/imagefetcher.go, extractOCIArtifactImage),
// with the same library: not a Docker manifest; the compat reading fails
// because the last layer is not tar+gzip; exactly two layers; the module is
// the raw blob of the layer of type
// application/vnd.module.wasm.content.layer.v1+wasm.
func istioFetch(t *testing.T, ref string) (wasm []byte, manifestHex string) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ggcr.Image(r)
	if err != nil {
		t.Fatalf("go-containerregistry could not fetch %s: %v", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType == types.DockerManifestSchema2 {
		t.Fatalf("manifest is Docker's; Istio would read it as an image")
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 {
		t.Fatalf("Istio: number of layers must be 2 but got %d", len(layers))
	}
	if mt, _ := layers[len(layers)-1].MediaType(); mt == types.OCILayer {
		t.Fatalf("last layer is tar+gzip: Istio would read it as the compat variant")
	}
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			t.Fatal(err)
		}
		if mt != mediaTypeModuleLayer {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return b, d.Hex
	}
	t.Fatalf("Istio: could not find the layer of type %s", mediaTypeModuleLayer)
	return nil, ""
}

func TestPushPullRoundTrip(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, false)
	wasm := module("round-trip")
	ref := "oci://" + reg.Addr + "/filters/hello:v1"

	manifestDigest, err := Push(ctx, wasm, ref, Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Push(ctx, wasm, ref, Options{PlainHTTP: true})
	if err != nil || again != manifestDigest {
		t.Errorf("pushing the same bytes again gave %s, %v; want the same digest %s", again, err, manifestDigest)
	}

	// The manifest is exactly the layout Istio reads.
	info, err := Inspect(ctx, ref, Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	configDigest := sha(runtimeConfig)
	if info.ManifestDigest != manifestDigest || info.MediaType != ocispec.MediaTypeImageManifest || info.ArtifactType != "" || info.Format != FormatModule {
		t.Errorf("manifest %s %s artifactType %q format %q; want %s %s, no artifactType, format module",
			info.ManifestDigest, info.MediaType, info.ArtifactType, info.Format, manifestDigest, ocispec.MediaTypeImageManifest)
	}
	if c := info.Config; c == nil || c.MediaType != mediaTypeModuleConfig || c.Digest != configDigest {
		t.Errorf("config %+v; want %s %s", c, mediaTypeModuleConfig, configDigest)
	}
	wantLayers := []Descriptor{
		{MediaType: mediaTypeModuleConfig, Digest: configDigest, Size: int64(len(runtimeConfig)), Annotations: map[string]string{ocispec.AnnotationTitle: "runtime-config.json"}},
		{MediaType: mediaTypeModuleLayer, Digest: sha(wasm), Size: int64(len(wasm)), Annotations: map[string]string{ocispec.AnnotationTitle: "plugin.wasm"}},
	}
	if len(info.Layers) != 2 {
		t.Fatalf("%d layers, want exactly 2: %+v", len(info.Layers), info.Layers)
	}
	for i, want := range wantLayers {
		got := info.Layers[i]
		if got.MediaType != want.MediaType || got.Digest != want.Digest || got.Size != want.Size || len(got.Annotations) != 1 || got.Annotations[ocispec.AnnotationTitle] != want.Annotations[ocispec.AnnotationTitle] {
			t.Errorf("layer %d = %+v; want %+v", i, got, want)
		}
	}
	if len(info.Annotations) != 0 {
		t.Errorf("manifest annotations %v; want none (a timestamp would make digests differ per push)", info.Annotations)
	}

	// Istio's reading gives the same bytes.
	got, gotHex := istioFetch(t, reg.Addr+"/filters/hello:v1")
	if !bytes.Equal(got, wasm) || "sha256:"+gotHex != manifestDigest {
		t.Errorf("Istio-style fetch gave %x (manifest %s); want %x (%s)", got, gotHex, wasm, manifestDigest)
	}

	opts := testOptions(t)
	p, err := Pull(ctx, ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := Pulled{
		Ref:            Reference{reg.Addr, "filters/hello", "v1", manifestDigest},
		ManifestDigest: manifestDigest, ModuleDigest: sha(wasm), Size: int64(len(wasm)), Format: FormatModule,
	}
	if p != want {
		t.Errorf("Pull = %+v\nwant   %+v", p, want)
	}
	stored, err := opts.Cache.Get(p.ModuleDigest)
	if err != nil || !bytes.Equal(stored, wasm) {
		t.Errorf("store has %x, %v; want %x", stored, err, wasm)
	}
	if d, err := Resolve(ctx, ref, opts); err != nil || d != manifestDigest {
		t.Errorf("Resolve = %s, %v; want %s", d, err, manifestDigest)
	}
}

// tarGz builds a tar+gzip layer of the files, in order.
func tarGz(t *testing.T, files ...string) (layer, diffID []byte) {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for i := 0; i < len(files); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gzBuf bytes.Buffer
	gw := gzip.NewWriter(&gzBuf)
	if _, err := gw.Write(tarBuf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return gzBuf.Bytes(), tarBuf.Bytes()
}

// imageConfig is an OCI image config for the layers' uncompressed tars.
func imageConfig(mediaType string, tars ...[]byte) blob {
	diffIDs := make([]string, len(tars))
	for i, tb := range tars {
		diffIDs[i] = sha(tb)
	}
	cfg := `{"architecture":"wasm","os":"wasip1","rootfs":{"type":"layers","diff_ids":["` + strings.Join(diffIDs, `","`) + `"]}}`
	return blob{mediaType: mediaType, data: []byte(cfg)}
}

func TestPullLayouts(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, false)
	repo := rawRepo(t, reg.Addr, "layouts", false)
	emptyConfig := blob{mediaType: ocispec.MediaTypeEmptyJSON, data: []byte("{}")}

	cases := []struct {
		name   string
		wasm   []byte
		push   func(wasm []byte) string // returns the tag
		format Format
	}{
		{"cncf wasm artifact", module("cncf"), func(wasm []byte) string {
			cfg := blob{mediaType: mediaTypeWasmConfig, data: []byte(`{"architecture":"wasm","os":"wasip1","layerDigests":["` + sha(wasm) + `"]}`)}
			pushImage(t, repo, "cncf", ocispec.MediaTypeImageManifest, "", cfg, blob{mediaType: mediaTypeWasmLayer, data: wasm})
			return "cncf"
		}, FormatWasm},
		{"module artifact, one layer (oras push --artifact-type)", module("module-1"), func(wasm []byte) string {
			pushImage(t, repo, "module-1", ocispec.MediaTypeImageManifest, mediaTypeModuleConfig, emptyConfig, blob{mediaType: mediaTypeModuleLayer, data: wasm})
			return "module-1"
		}, FormatModule},
		{"module artifact, module layer first and config as a second layer", module("module-2"), func(wasm []byte) string {
			cfg := blob{mediaType: mediaTypeModuleConfig, data: []byte(`{"type":"envoy_proxy"}`)}
			pushImage(t, repo, "module-2", ocispec.MediaTypeImageManifest, "", cfg, blob{mediaType: mediaTypeModuleLayer, data: wasm}, cfg)
			return "module-2"
		}, FormatModule},
		{"raw single layer", module("raw"), func(wasm []byte) string {
			pushImage(t, repo, "raw", ocispec.MediaTypeImageManifest, "application/vnd.unknown.artifact.v1", emptyConfig, blob{mediaType: "application/vnd.oci.image.layer.v1.tar", data: wasm})
			return "raw"
		}, FormatRaw},
		{"oci image with plugin.wasm", module("oci-image"), func(wasm []byte) string {
			layer, tarBytes := tarGz(t, "plugin.wasm", string(wasm))
			pushImage(t, repo, "oci-image", ocispec.MediaTypeImageManifest, "", imageConfig(ocispec.MediaTypeImageConfig, tarBytes), blob{mediaType: ocispec.MediaTypeImageLayerGzip, data: layer})
			return "oci-image"
		}, FormatImage},
		{"docker image, plugin.wasm in the last of two layers", module("docker-image"), func(wasm []byte) string {
			first, firstTar := tarGz(t, "etc/motd", "hello", "plugin.wasm", "not the one")
			last, lastTar := tarGz(t, "README", "filter", "./filters/plugin.wasm", string(wasm))
			pushImage(t, repo, "docker-image", mediaTypeDockerManifest, "", imageConfig("application/vnd.docker.container.image.v1+json", firstTar, lastTar),
				blob{mediaType: mediaTypeDockerLayer, data: first}, blob{mediaType: mediaTypeDockerLayer, data: last})
			return "docker-image"
		}, FormatImage},
		{"index of one manifest", module("index-1"), func(wasm []byte) string {
			d := pushImage(t, repo, "index-1-child", ocispec.MediaTypeImageManifest, mediaTypeModuleConfig, emptyConfig, blob{mediaType: mediaTypeModuleLayer, data: wasm})
			desc, err := repo.Resolve(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			desc.Platform = &ocispec.Platform{OS: "wasip1", Architecture: "wasm"}
			pushIndex(t, repo, "index-1", desc)
			return "index-1"
		}, FormatModule},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tag := c.push(c.wasm)
			opts := testOptions(t)
			p, err := Pull(ctx, reg.Addr+"/layouts:"+tag, opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.Format != c.format || p.ModuleDigest != sha(c.wasm) || p.Size != int64(len(c.wasm)) || p.Cached {
				t.Errorf("Pull = %+v; want format %s, module %s, size %d, not cached", p, c.format, sha(c.wasm), len(c.wasm))
			}
			if got, err := opts.Cache.Get(p.ModuleDigest); err != nil || !bytes.Equal(got, c.wasm) {
				t.Errorf("store has %x, %v; want %x", got, err, c.wasm)
			}
			if d, err := Resolve(ctx, reg.Addr+"/layouts:"+tag, opts); err != nil || d != p.ManifestDigest {
				t.Errorf("pinned to %s, but the tag resolves to %s (%v)", p.ManifestDigest, d, err)
			}
		})
	}

	t.Run("index of two manifests", func(t *testing.T) {
		var descs []ocispec.Descriptor
		for _, arch := range []string{"amd64", "arm64"} {
			d := pushImage(t, repo, "two-"+arch, ocispec.MediaTypeImageManifest, mediaTypeModuleConfig, emptyConfig, blob{mediaType: mediaTypeModuleLayer, data: module(arch)})
			desc, err := repo.Resolve(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			desc.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
			descs = append(descs, desc)
		}
		pushIndex(t, repo, "two", descs...)
		_, err := Pull(ctx, reg.Addr+"/layouts:two", testOptions(t))
		mustContain(t, err, "image index of 2 manifests", "linux/amd64 "+descs[0].Digest.String(), "linux/arm64", "pick a platform manifest", reg.Addr+"/layouts@<digest>")
	})
}

func TestPullDigestPinningAndPolicy(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, false)
	ref := reg.Addr + "/pin:stable"
	v1, v2 := module("v1"), module("v2")

	d1, err := Push(ctx, v1, ref, Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t) // one node's cache, across the whole test
	p1, err := Pull(ctx, ref, opts)
	if err != nil || p1.ManifestDigest != d1 || p1.ModuleDigest != sha(v1) {
		t.Fatalf("Pull v1 = %+v, %v; want manifest %s", p1, err, d1)
	}
	d2, err := Push(ctx, v2, ref, Options{PlainHTTP: true})
	if err != nil || d2 == d1 {
		t.Fatalf("Push v2 = %s, %v", d2, err)
	}

	// A digest keeps naming v1, from a fresh cache too.
	for _, o := range []Options{opts, testOptions(t)} {
		p, err := Pull(ctx, reg.Addr+"/pin@"+d1, o)
		if err != nil || p.ModuleDigest != sha(v1) {
			t.Errorf("Pull @D1 = %+v, %v; want v1's module %s", p, err, sha(v1))
		}
	}
	// IfNotPresent keeps serving the tag as this node first pulled it.
	opts.Policy = PullIfNotPresent
	if p, err := Pull(ctx, ref, opts); err != nil || p.ModuleDigest != sha(v1) || !p.Cached {
		t.Errorf("IfNotPresent Pull = %+v, %v; want v1 from the cache", p, err)
	}
	// Always asks the registry and gets v2.
	opts.Policy = PullAlways
	p2, err := Pull(ctx, ref, opts)
	if err != nil || p2.ManifestDigest != d2 || p2.ModuleDigest != sha(v2) || p2.Cached {
		t.Errorf("Always Pull = %+v, %v; want v2 (%s) downloaded", p2, err, d2)
	}
	if got, _ := opts.Cache.Get(p2.ModuleDigest); !bytes.Equal(got, v2) {
		t.Errorf("store has %x for v2", got)
	}
	// And IfNotPresent now follows what Always saw.
	opts.Policy = PullIfNotPresent
	if p, err := Pull(ctx, ref, opts); err != nil || p.ModuleDigest != sha(v2) || !p.Cached {
		t.Errorf("IfNotPresent after Always = %+v, %v; want v2 from the cache", p, err)
	}
	// The default policy resolves "latest" every time.
	if _, err := Push(ctx, v1, reg.Addr+"/pin:latest", Options{PlainHTTP: true}); err != nil {
		t.Fatal(err)
	}
	opts.Policy = PullDefault
	if p, err := Pull(ctx, reg.Addr+"/pin", opts); err != nil || p.ModuleDigest != sha(v1) {
		t.Fatalf("Pull latest = %+v, %v", p, err)
	}
	if _, err := Push(ctx, v2, reg.Addr+"/pin:latest", Options{PlainHTTP: true}); err != nil {
		t.Fatal(err)
	}
	if p, err := Pull(ctx, reg.Addr+"/pin", opts); err != nil || p.ModuleDigest != sha(v2) {
		t.Errorf("default-policy Pull of latest = %+v, %v; want v2", p, err)
	}
}

func TestPullFromCacheWithoutRegistry(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, false)
	wasm := module("offline")
	d, err := Push(ctx, wasm, reg.Addr+"/off:v1", Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	other, err := Push(ctx, module("other"), reg.Addr+"/off:v2", Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t)
	opts.Policy = PullAlways // no effect on digests
	if p, err := Pull(ctx, reg.Addr+"/off@"+d, opts); err != nil || p.Cached {
		t.Fatalf("first Pull = %+v, %v; want a download", p, err)
	}
	reg.Stop()

	p, err := Pull(ctx, reg.Addr+"/off@"+d, opts)
	want := Pulled{Ref: Reference{reg.Addr, "off", "", d}, ManifestDigest: d, ModuleDigest: sha(wasm), Size: int64(len(wasm)), Format: FormatModule, Cached: true}
	if err != nil || p != want {
		t.Errorf("Pull with the registry down = %+v, %v\nwant %+v", p, err, want)
	}
	// The index is by manifest digest, so another name for it works too.
	if p, err := Pull(ctx, "127.0.0.1:1/elsewhere@"+d, opts); err != nil || p.ModuleDigest != sha(wasm) {
		t.Errorf("Pull by digest at a closed port = %+v, %v", p, err)
	}
	// What the cache lacks needs the registry, and says so.
	_, err = Pull(ctx, reg.Addr+"/off@"+other, opts)
	mustContain(t, err, "cannot reach registry "+reg.Addr)

	// Without an index there is nothing to serve offline.
	opts.IndexDir = ""
	_, err = Pull(ctx, reg.Addr+"/off@"+d, opts)
	mustContain(t, err, "cannot reach registry")

	// Push with a cache records the module, so the pushing node can pull
	// the digest offline.
	reg2 := startRegistry(t, false)
	pushOpts := testOptions(t)
	d3, err := Push(ctx, module("pushed"), reg2.Addr+"/p:v1", pushOpts)
	if err != nil {
		t.Fatal(err)
	}
	reg2.Stop()
	if p, err := Pull(ctx, reg2.Addr+"/p@"+d3, pushOpts); err != nil || !p.Cached || p.ModuleDigest != sha(module("pushed")) {
		t.Errorf("Pull after Push with cache = %+v, %v", p, err)
	}
}

func TestAuth(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, true)
	ref := reg.Addr + "/private/fn:v1"
	wasm := module("private")

	noCreds := testOptions(t)
	_, err := Push(ctx, wasm, ref, noCreds)
	mustContain(t, err, "answered 401", "no credentials", "--username/--password", "docker login "+reg.Addr)
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Push without credentials: %v is not ErrUnauthorized", err)
	}

	withCreds := testOptions(t)
	withCreds.Username, withCreds.Password = testUser, testPassword
	if _, err := Push(ctx, wasm, ref, withCreds); err != nil {
		t.Fatal(err)
	}

	_, err = Pull(ctx, ref, noCreds)
	mustContain(t, err, "registry "+reg.Addr+" answered 401", "--username/--password", "docker login "+reg.Addr)
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Pull without credentials: %v is not ErrUnauthorized", err)
	}

	wrong := testOptions(t)
	wrong.Username, wrong.Password = testUser, "wrong"
	_, err = Pull(ctx, ref, wrong)
	mustContain(t, err, "answered 401 Unauthorized to the credentials given")
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Pull with a wrong password: %v is not ErrUnauthorized", err)
	}

	half := testOptions(t)
	half.Username = testUser
	_, err = Pull(ctx, ref, half)
	mustContain(t, err, "pass both a username and a password")

	if p, err := Pull(ctx, ref, withCreds); err != nil || p.ModuleDigest != sha(wasm) {
		t.Errorf("Pull with username/password = %+v, %v", p, err)
	}

	docker := testOptions(t)
	docker.DockerConfig = dockerConfig(t, map[string][2]string{reg.Addr: {testUser, testPassword}})
	if p, err := Pull(ctx, ref, docker); err != nil || p.ModuleDigest != sha(wasm) || p.Cached {
		t.Errorf("Pull with a Docker config = %+v, %v", p, err)
	}
	if _, err := Inspect(ctx, ref, docker); err != nil {
		t.Errorf("Inspect with a Docker config: %v", err)
	}

	broken := testOptions(t)
	broken.DockerConfig = filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(broken.DockerConfig, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Pull(ctx, ref, broken)
	mustContain(t, err, "reading registry credentials from "+broken.DockerConfig)
}

func TestBadInputs(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, false)
	repo := rawRepo(t, reg.Addr, "bad", false)
	emptyConfig := blob{mediaType: ocispec.MediaTypeEmptyJSON, data: []byte("{}")}

	t.Run("not wasm in a single layer", func(t *testing.T) {
		pushImage(t, repo, "text", ocispec.MediaTypeImageManifest, "application/vnd.unknown.artifact.v1", emptyConfig, blob{mediaType: "text/plain", data: []byte("hello, world\n")})
		opts := testOptions(t)
		_, err := Pull(ctx, reg.Addr+"/bad:text", opts)
		mustContain(t, err, "single layer (media type text/plain, 13 bytes) is not a WebAssembly module", `starts with "hell"`)
		assertEmptyStore(t, opts)
	})
	t.Run("not wasm in a wasm-typed layer", func(t *testing.T) {
		pushImage(t, repo, "liar", ocispec.MediaTypeImageManifest, "", blob{mediaType: mediaTypeWasmConfig, data: []byte("{}")}, blob{mediaType: mediaTypeWasmLayer, data: []byte("#!/bin/sh\n")})
		_, err := Pull(ctx, reg.Addr+"/bad:liar", testOptions(t))
		mustContain(t, err, "the application/wasm layer", "is not a WebAssembly module")
	})
	t.Run("no module among several layers", func(t *testing.T) {
		pushImage(t, repo, "docs", ocispec.MediaTypeImageManifest, "application/vnd.acme.docs", emptyConfig,
			blob{mediaType: "text/markdown", data: []byte("# a")}, blob{mediaType: "text/markdown", data: []byte("# b")})
		_, err := Pull(ctx, reg.Addr+"/bad:docs", testOptions(t))
		mustContain(t, err, "no WebAssembly module among 2 layers [text/markdown, text/markdown]")
	})
	t.Run("image without plugin.wasm", func(t *testing.T) {
		layer, tarBytes := tarGz(t, "filter.wasm", string(module("x")))
		pushImage(t, repo, "noplugin", ocispec.MediaTypeImageManifest, "", imageConfig(ocispec.MediaTypeImageConfig, tarBytes), blob{mediaType: ocispec.MediaTypeImageLayerGzip, data: layer})
		opts := testOptions(t)
		_, err := Pull(ctx, reg.Addr+"/bad:noplugin", opts)
		mustContain(t, err, "has no plugin.wasm")
		assertEmptyStore(t, opts)
	})
	t.Run("missing tag", func(t *testing.T) {
		if _, err := Push(ctx, module("x"), reg.Addr+"/bad:exists", Options{PlainHTTP: true}); err != nil {
			t.Fatal(err)
		}
		_, err := Pull(ctx, reg.Addr+"/bad:nope", testOptions(t))
		mustContain(t, err, "tag nope not found in "+reg.Addr+"/bad")
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%v is not ErrNotFound", err)
		}
		_, err = Resolve(ctx, reg.Addr+"/bad:nope", testOptions(t))
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Resolve: %v is not ErrNotFound", err)
		}
		_, err = Inspect(ctx, reg.Addr+"/no-such-repo:v1", testOptions(t))
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Inspect: %v is not ErrNotFound", err)
		}
	})
	t.Run("size bound", func(t *testing.T) {
		big := append(module("big"), make([]byte, 200)...)
		size := fmt.Sprint(len(big))
		opts := testOptions(t)
		opts.maxBytes = 100
		_, err := Push(ctx, big, reg.Addr+"/bad:big", opts)
		mustContain(t, err, "more than the 100-byte bound")
		if _, err := Push(ctx, big, reg.Addr+"/bad:big", Options{PlainHTTP: true}); err != nil {
			t.Fatal(err)
		}
		_, err = Pull(ctx, reg.Addr+"/bad:big", opts)
		mustContain(t, err, "is "+size+" bytes, more than the 100-byte bound")
		assertEmptyStore(t, opts)

		// Inside an image, the bound applies to plugin.wasm as well.
		layer, tarBytes := tarGz(t, "plugin.wasm", string(big))
		pushImage(t, repo, "bigimage", ocispec.MediaTypeImageManifest, "", imageConfig(ocispec.MediaTypeImageConfig, tarBytes), blob{mediaType: ocispec.MediaTypeImageLayerGzip, data: layer})
		if len(layer) >= len(big) {
			t.Fatalf("the compressed layer (%d bytes) should be smaller than the module (%d)", len(layer), len(big))
		}
		opts.maxBytes = int64(len(layer)) // the compressed layer fits, the module does not
		_, err = Pull(ctx, reg.Addr+"/bad:bigimage", opts)
		mustContain(t, err, "plugin.wasm is "+size+" bytes, more than the "+fmt.Sprint(len(layer))+"-byte bound")
		assertEmptyStore(t, opts)
	})
	t.Run("push refuses", func(t *testing.T) {
		_, err := Push(ctx, []byte("(module)"), reg.Addr+"/bad:wat", Options{PlainHTTP: true})
		mustContain(t, err, "not a WebAssembly binary module")
		_, err = Push(ctx, module("x"), reg.Addr+"/bad@"+sha([]byte("x")), Options{PlainHTTP: true})
		mustContain(t, err, "name a tag, not a digest")
		_, err = Pull(ctx, reg.Addr+"/bad:x", Options{PlainHTTP: true})
		mustContain(t, err, "no module store")
	})
	t.Run("https to a plain-HTTP registry", func(t *testing.T) {
		opts := testOptions(t)
		opts.PlainHTTP = false
		_, err := Pull(ctx, reg.Addr+"/bad:exists", opts)
		mustContain(t, err, "speaks plain HTTP, not HTTPS: pass --plain-http")
	})
}

// TestCorruptBlob serves a module whose stored bytes no longer match their
// digest (the registry does not recheck on serving): the pull must fail and
// store nothing.
func TestCorruptBlob(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, false)
	wasm := module("intact")
	if _, err := Push(ctx, wasm, reg.Addr+"/c:v1", Options{PlainHTTP: true}); err != nil {
		t.Fatal(err)
	}
	hexPart := strings.TrimPrefix(sha(wasm), "sha256:")
	data := filepath.Join(reg.Dir, "data", "docker", "registry", "v2", "blobs", "sha256", hexPart[:2], hexPart, "data")
	corrupt := bytes.Clone(wasm)
	corrupt[len(corrupt)-1] ^= 0xff
	if err := os.WriteFile(data, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t)
	_, err := Pull(ctx, reg.Addr+"/c:v1", opts)
	mustContain(t, err, "blob "+sha(wasm)+" does not match its descriptor")
	if !errors.Is(err, content.ErrMismatchedDigest) {
		t.Errorf("%v is not content.ErrMismatchedDigest", err)
	}
	assertEmptyStore(t, opts)
}

// assertEmptyStore checks that a failed pull left no module behind.
func assertEmptyStore(t *testing.T, opts Options) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(storeDir(opts), "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		t.Errorf("the module store holds %d modules; want none", len(entries))
	}
}

func TestProgress(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, false)
	wasm := append(module("progress"), make([]byte, 300<<10)...) // several reads
	ref := reg.Addr + "/prog:v1"

	check := func(t *testing.T, events []ProgressEvent, wantDigests ...string) {
		t.Helper()
		last := map[string]int64{}
		for _, e := range events {
			prev, seen := last[e.Digest]
			if seen && e.Done <= prev {
				t.Errorf("%s: Done went from %d to %d", e.Digest, prev, e.Done)
			}
			if e.Done > e.Total {
				t.Errorf("%s: Done %d > Total %d", e.Digest, e.Done, e.Total)
			}
			last[e.Digest] = e.Done
		}
		for _, d := range wantDigests {
			n := 0
			for _, e := range events {
				if e.Digest == d {
					n++
				}
			}
			if n < 3 {
				t.Errorf("%s: %d events; want a start, steps and an end", d, n)
			}
			if last[d] != int64(len(wasm)) {
				t.Errorf("%s: ended at %d; want %d", d, last[d], len(wasm))
			}
		}
	}

	var pushEvents []ProgressEvent
	opts := Options{PlainHTTP: true, Progress: func(e ProgressEvent) { pushEvents = append(pushEvents, e) }}
	if _, err := Push(ctx, wasm, ref, opts); err != nil {
		t.Fatal(err)
	}
	check(t, pushEvents, sha(wasm))

	// Blobs the registry holds are reported once, as done.
	pushEvents = nil
	if _, err := Push(ctx, wasm, reg.Addr+"/prog:v2", opts); err != nil {
		t.Fatal(err)
	}
	if len(pushEvents) != 2 || pushEvents[1].Done != int64(len(wasm)) || pushEvents[1].Total != int64(len(wasm)) {
		t.Errorf("re-push events %+v; want one done event per blob", pushEvents)
	}

	var pullEvents []ProgressEvent
	pullOpts := testOptions(t)
	pullOpts.Progress = func(e ProgressEvent) { pullEvents = append(pullEvents, e) }
	if _, err := Pull(ctx, ref, pullOpts); err != nil {
		t.Fatal(err)
	}
	check(t, pullEvents, sha(wasm))
	if pullEvents[0].Done != 0 || pullEvents[0].MediaType != mediaTypeModuleLayer {
		t.Errorf("first pull event %+v; want Done 0 for the module layer", pullEvents[0])
	}
}
