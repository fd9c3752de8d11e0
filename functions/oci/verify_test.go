package oci

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPullChecksModuleSHA256(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, false)
	wasm := module("verified")
	ref := reg.Addr + "/verify:v1"
	if _, err := Push(ctx, wasm, ref, Options{PlainHTTP: true}); err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("0", 64)

	t.Run("wrong sha256 refused before download", func(t *testing.T) {
		opts := testOptions(t)
		opts.ModuleSHA256 = wrong
		_, err := Pull(ctx, ref, opts)
		mustContain(t, err, "the module is "+sha(wasm), "not the expected sha256:"+wrong)
		if !errors.Is(err, ErrDigestMismatch) {
			t.Errorf("%v does not wrap ErrDigestMismatch", err)
		}
		assertEmptyStore(t, opts)
	})
	t.Run("right sha256, bare hex or prefixed", func(t *testing.T) {
		for _, want := range []string{strings.TrimPrefix(sha(wasm), "sha256:"), sha(wasm)} {
			opts := testOptions(t)
			opts.ModuleSHA256 = want
			p, err := Pull(ctx, ref, opts)
			if err != nil || p.ModuleDigest != sha(wasm) {
				t.Errorf("ModuleSHA256 %s: %+v, %v", want, p, err)
			}
		}
	})
	t.Run("cached module of another digest", func(t *testing.T) {
		opts := testOptions(t)
		if _, err := Pull(ctx, ref, opts); err != nil {
			t.Fatal(err)
		}
		opts.ModuleSHA256 = wrong
		_, err := Pull(ctx, ref, opts)
		if !errors.Is(err, ErrDigestMismatch) {
			t.Errorf("pull from cache with a wrong sha256: %v, want ErrDigestMismatch", err)
		}
	})
	t.Run("image layout checked after extraction", func(t *testing.T) {
		repo := rawRepo(t, reg.Addr, "verify-image", false)
		layer, tarBytes := tarGz(t, "plugin.wasm", string(wasm))
		pushImage(t, repo, "v1", ocispec.MediaTypeImageManifest, "", imageConfig(ocispec.MediaTypeImageConfig, tarBytes), blob{mediaType: ocispec.MediaTypeImageLayerGzip, data: layer})
		opts := testOptions(t)
		opts.ModuleSHA256 = wrong
		_, err := Pull(ctx, reg.Addr+"/verify-image:v1", opts)
		if !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("image with a wrong sha256: %v, want ErrDigestMismatch", err)
		}
		opts.ModuleSHA256 = sha(wasm)
		if p, err := Pull(ctx, reg.Addr+"/verify-image:v1", opts); err != nil || p.Format != FormatImage || p.Cached {
			t.Errorf("image with the right sha256: %+v, %v; want a fresh image pull (the refused one was not recorded)", p, err)
		}
	})
	t.Run("malformed sha256", func(t *testing.T) {
		opts := testOptions(t)
		opts.ModuleSHA256 = "abc"
		_, err := Pull(ctx, ref, opts)
		mustContain(t, err, `expected module sha256 "abc": want 64 lower-case hex digits`)
	})
}

// tlsProxy serves the registry at addr over HTTPS with a certificate no
// client trusts, as a registry with a self-signed certificate does.
func tlsProxy(t *testing.T, addr string) string {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: addr}
	srv := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
		r.SetXForwarded()
	}})
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://")
}

func TestInsecureSkipsTLSVerification(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, false)
	host := tlsProxy(t, reg.Addr)
	ref := host + "/tls/filter:v1"
	wasm := module("tls")

	_, err := Push(ctx, wasm, ref, Options{DockerConfig: dockerConfig(t, nil)})
	mustContain(t, err, "TLS certificate is not trusted: pass --insecure")

	d, err := Push(ctx, wasm, ref, Options{Insecure: true, DockerConfig: dockerConfig(t, nil)})
	if err != nil {
		t.Fatalf("push with Insecure: %v", err)
	}
	opts := testOptions(t)
	opts.PlainHTTP, opts.Insecure = false, true
	p, err := Pull(ctx, ref, opts)
	if err != nil || p.ManifestDigest != d {
		t.Fatalf("pull with Insecure: %+v, %v; want manifest %s", p, err, d)
	}
	if got, err := opts.Cache.Get(p.ModuleDigest); err != nil || !bytes.Equal(got, wasm) {
		t.Errorf("pulled %x, %v; want %x", got, err, wasm)
	}
	// An explicit client is the caller's: Insecure does not replace it.
	opts = testOptions(t)
	opts.PlainHTTP, opts.Insecure, opts.HTTPClient = false, true, &http.Client{}
	_, err = Pull(ctx, ref, opts)
	mustContain(t, err, "TLS certificate is not trusted")
}

// TestPushManifestBytes pins the manifest Push writes, byte for byte: the
// layout Istio's WasmPlugin fetcher reads (two layers, the module raw in
// the application/vnd.module.wasm.content.layer.v1+wasm one) with no
// timestamp, so that its digest is a function of the module alone.
func TestPushManifestBytes(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, false)
	wasm := module("pinned")
	d, err := Push(ctx, wasm, reg.Addr+"/bytes:v1", Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	desc, rc, err := rawRepo(t, reg.Addr, "bytes", false).FetchReference(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	cfg := `{"mediaType":"application/vnd.module.wasm.config.v1+json","digest":"` + sha(runtimeConfig) + `","size":` + strconv.Itoa(len(runtimeConfig))
	want := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":` + cfg + `},` +
		`"layers":[` + cfg + `,"annotations":{"org.opencontainers.image.title":"runtime-config.json"}},` +
		`{"mediaType":"application/vnd.module.wasm.content.layer.v1+wasm","digest":"` + sha(wasm) + `","size":` + strconv.Itoa(len(wasm)) +
		`,"annotations":{"org.opencontainers.image.title":"plugin.wasm"}}]}`
	if got.String() != want {
		t.Errorf("manifest\n%s\nwant\n%s", got.String(), want)
	}
	if desc.MediaType != ocispec.MediaTypeImageManifest || desc.Digest.String() != d || d != sha([]byte(want)) {
		t.Errorf("served as %s %s, Push returned %s; want %s %s", desc.MediaType, desc.Digest, d, ocispec.MediaTypeImageManifest, sha([]byte(want)))
	}
	if string(runtimeConfig) != `{"type":"wasm","abiVersions":[],"config":{}}` {
		t.Errorf("config blob %s changed: every pushed digest changes with it", runtimeConfig)
	}
}
