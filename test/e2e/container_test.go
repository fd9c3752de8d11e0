package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/wisp-faas/wisp/internal/testregistry"
)

// pushEchoImage builds an OCI image holding a static build of the echo
// function and pushes it to reg; it returns the image reference.
func pushEchoImage(t *testing.T, reg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "echo")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/echo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the static echo server: %v\n%s", err, out)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "echo", Mode: 0o755, Size: int64(len(exe)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(exe); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Entrypoint: []string{"/echo"}, Env: []string{"MESSAGE=from the image"}})
	if err != nil {
		t.Fatal(err)
	}
	ref := reg + "/knative/echo:v1"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref
}

// TestKnativeServiceRunsItsImage applies an unchanged Knative Service
// manifest whose image comes from a registry; the container runs under
// runc and answers through the gateway with the manifest's env.
func TestKnativeServiceRunsItsImage(t *testing.T) {
	b := buildAll(t)
	reg := testregistry.Start(t)
	image := pushEchoImage(t, reg)
	manifest := filepath.Join(t.TempDir(), "service.yaml")
	if err := os.WriteFile(manifest, []byte(fmt.Sprintf(`apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: kecho
spec:
  template:
    spec:
      containerConcurrency: 10
      containers:
        - image: %s
          env:
            - name: MESSAGE
              value: from the manifest
`, image)), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, b, t.TempDir())
	out := n.mustWisp("apply", "-f", manifest)
	if !strings.Contains(out, "kecho-00001") {
		t.Fatalf("apply: %q", out)
	}
	r := n.callEcho("kecho.default."+n.Domain, "/hi")
	if r.Revision != "kecho-00001" || r.Message != "from the manifest" || r.Path != "/hi" {
		t.Fatalf("container answered %+v", r)
	}
	if desc := n.mustWisp("revision", "describe", "kecho-00001"); !strings.Contains(desc, "@sha256:") {
		t.Fatalf("the revision's image is not pinned to a digest:\n%s", desc)
	}
	runcList := func() string {
		out, _ := exec.Command("runc", "--root", filepath.Join(n.dataDir, "containers", "runc"), "list", "-q").Output()
		return string(bytes.TrimSpace(out))
	}
	if runcList() == "" {
		t.Fatal("runc lists no container while the function runs")
	}
	n.mustWisp("service", "delete", "kecho")
	eventually(t, 10*time.Second, func() string {
		if left := runcList(); left != "" {
			return "containers left after delete: " + left
		}
		return ""
	})
}
