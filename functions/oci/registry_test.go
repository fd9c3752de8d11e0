package oci

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/wisp-faas/wisp/functions/modules"
	"github.com/wisp-faas/wisp/internal/testregistry"
)

const (
	testUser     = "wisp"
	testPassword = "s3cret-pass"
)

// startRegistry starts a real registry; withAuth protects it with
// htpasswd (testUser/testPassword).
func startRegistry(t *testing.T, withAuth bool) *testregistry.Registry {
	t.Helper()
	var opts testregistry.Options
	if withAuth {
		hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		opts.Htpasswd = testUser + ":" + string(hash)
	}
	return testregistry.StartWith(t, opts)
}

// module returns a tiny valid WebAssembly module made distinct by a custom
// section named name.
func module(name string) []byte {
	sec := append([]byte{byte(len(name))}, name...)
	return append([]byte{0, 'a', 's', 'm', 1, 0, 0, 0, 0, byte(len(sec))}, sec...)
}

// testOptions returns options for a plain-HTTP registry with a fresh cache
// and index and an empty Docker config, so that the machine's own
// credentials never leak into a test.
func testOptions(t *testing.T) Options {
	t.Helper()
	root := t.TempDir()
	store, err := modules.Open(filepath.Join(root, "modules"))
	if err != nil {
		t.Fatal(err)
	}
	return Options{PlainHTTP: true, Cache: store, IndexDir: filepath.Join(root, "oci"), DockerConfig: dockerConfig(t, nil)}
}

// storeDir is where testOptions put the module store.
func storeDir(opts Options) string { return filepath.Join(filepath.Dir(opts.IndexDir), "modules") }

// dockerConfig writes a Docker config.json with basic-auth entries.
func dockerConfig(t *testing.T, auths map[string][2]string) string {
	t.Helper()
	cfg := map[string]map[string]map[string]string{"auths": {}}
	for host, up := range auths {
		cfg["auths"][host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(up[0] + ":" + up[1]))}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawRepo is an oras-go client for building layouts by hand.
func rawRepo(t *testing.T, addr, repo string, withAuth bool) *remote.Repository {
	t.Helper()
	r := &remote.Repository{Reference: registry.Reference{Registry: addr, Repository: repo}, PlainHTTP: true}
	if withAuth {
		r.Client = &auth.Client{Credential: auth.StaticCredential(addr, auth.Credential{Username: testUser, Password: testPassword})}
	}
	return r
}

type blob struct {
	mediaType   string
	data        []byte
	annotations map[string]string
}

func (b blob) desc() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: b.mediaType, Digest: digest.FromBytes(b.data), Size: int64(len(b.data)), Annotations: b.annotations}
}

// pushBlobs uploads blobs to repo.
func pushBlobs(t *testing.T, repo *remote.Repository, blobs ...blob) {
	t.Helper()
	ctx := context.Background()
	for _, b := range blobs {
		if ok, err := repo.Exists(ctx, b.desc()); err != nil {
			t.Fatal(err)
		} else if ok {
			continue
		}
		if err := repo.Push(ctx, b.desc(), bytes.NewReader(b.data)); err != nil {
			t.Fatalf("pushing blob %s: %v", b.mediaType, err)
		}
	}
}

// pushImage uploads config and layers and a manifest of mediaType naming
// them, tags it, and returns the manifest digest.
func pushImage(t *testing.T, repo *remote.Repository, tag, mediaType, artifactType string, config blob, layers ...blob) string {
	t.Helper()
	pushBlobs(t, repo, append([]blob{config}, layers...)...)
	m := map[string]any{"schemaVersion": 2, "mediaType": mediaType, "config": config.desc()}
	if artifactType != "" {
		m["artifactType"] = artifactType
	}
	ls := []ocispec.Descriptor{}
	for _, l := range layers {
		ls = append(ls, l.desc())
	}
	m["layers"] = ls
	return pushManifest(t, repo, tag, mediaType, m)
}

func pushManifest(t *testing.T, repo *remote.Repository, tag, mediaType string, m any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	desc := blob{mediaType: mediaType, data: b}.desc()
	if err := repo.PushReference(context.Background(), desc, bytes.NewReader(b), tag); err != nil {
		t.Fatalf("pushing manifest: %v", err)
	}
	return desc.Digest.String()
}

// pushIndex pushes an OCI index of the given manifests.
func pushIndex(t *testing.T, repo *remote.Repository, tag string, manifests ...ocispec.Descriptor) string {
	t.Helper()
	return pushManifest(t, repo, tag, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests,
	})
}

// mustContain fails unless err's message has every part.
func mustContain(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q\ndoes not contain %q", err, p)
		}
	}
}
