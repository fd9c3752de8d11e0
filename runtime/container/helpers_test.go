//go:build linux

package container

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/internal/testregistry"
	"github.com/wisp-faas/wisp/runtime"
	"github.com/wisp-faas/wisp/runtime/process"
)

// layerGz is the test image's only layer, gzipped: testdata/server as
// /server and /bin/srv (a hard link), and an /etc/passwd and /etc/group
// with a user "app". Built once by TestMain.
var layerGz []byte

// secretEnv is set in the test binary's environment, as a node's secret
// would be, and must not reach a container.
const secretEnv = "WISP_SECRET_TEST"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// These tests run real containers: they need what a node running
	// containers needs, and fail, not skip, without it.
	if _, err := exec.LookPath("runc"); err != nil {
		fmt.Fprintln(os.Stderr, "runtime/container tests need runc: "+installHint)
		return 1
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "runtime/container tests need root (runc makes namespaces and cgroups)")
		return 1
	}
	if err := os.Setenv(secretEnv, "must-not-leak"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "wisp-container-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "server")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/server")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building testdata/server:", err)
		return 1
	}
	server, err := os.ReadFile(bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if layerGz, err = gzipTar([]tarEntry{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "server", Mode: 0o755}, body: server},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "bin/srv", Linkname: "server"}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644},
			body: []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/group", Mode: 0o644},
			body: []byte("root:x:0:\napp:x:1000:\nextra:x:2000:app\n")},
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// tarEntry is one entry of a tar archive made by a test.
type tarEntry struct {
	hdr  tar.Header
	body []byte
}

func writeTar(w io.Writer, entries []tarEntry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := e.hdr
		h.Size = int64(len(e.body))
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if err := tw.WriteHeader(&h); err != nil {
			return err
		}
		if _, err := tw.Write(e.body); err != nil {
			return err
		}
	}
	return tw.Close()
}

func gzipTar(entries []tarEntry) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := writeTar(zw, entries); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// testImage is the test server's image with cfg as its config; Env,
// Entrypoint, Cmd and WorkingDir default to the test's.
func testImage(t testing.TB, cfg v1.Config) v1.Image {
	t.Helper()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerGz)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Entrypoint == nil {
		cfg.Entrypoint = []string{"/server"}
	}
	if cfg.Cmd == nil {
		cfg.Cmd = []string{"from-image-cmd"}
	}
	if cfg.Env == nil {
		cfg.Env = []string{"PATH=/bin", "IMAGE_VAR=from-image", "OVERRIDE_ME=from-image"}
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = "/app" // not in the layer: made when unpacking
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", goruntime.GOARCH, cfg
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// push pushes img to the registry as repo:tag and returns its reference
// by tag and by digest.
func push(t testing.TB, registry, repoTag string, img v1.Image) (tagged, pinned string) {
	t.Helper()
	tagged = registry + "/" + repoTag
	ref, err := name.ParseReference(tagged)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("pushing %s: %v", tagged, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tagged, ref.Context().Digest(d.String()).String()
}

// waitLong bounds every wait for something that should happen soon.
const waitLong = 10 * time.Second

// logs collects what the containers write.
type logs struct {
	mu    sync.Mutex
	lines []string // "stream: line"
}

func (l *logs) sink(_ *api.Revision, _, stream, line string) {
	l.mu.Lock()
	l.lines = append(l.lines, stream+": "+line)
	l.mu.Unlock()
}

func (l *logs) has(line string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.lines, line)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// newProvider returns a Provider with its own directory and the waits
// shortened for tests, and the log of its containers' output.
func newProvider(t testing.TB) (*Provider, *logs) {
	t.Helper()
	l := &logs{}
	p := New(Options{
		Dir: t.TempDir(),
		Process: process.Options{
			ReadyTimeout:   waitLong,
			StopGrace:      waitLong,
			RestartBackoff: 10 * time.Millisecond,
			LogSink:        l.sink,
		},
	})
	return p, l
}

// newRev returns a Revision of the Function "hello" running image with
// the environment variables given as name=value pairs.
func newRev(image string, env ...string) *api.Revision {
	rev := &api.Revision{}
	rev.Name = "hello-00001"
	rev.Namespace = "default"
	rev.Labels = map[string]string{api.LabelFunction: "hello"}
	rev.Spec.Container = &api.ContainerSource{Image: image, Port: 8080}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		rev.Spec.Env = append(rev.Spec.Env, api.EnvVar{Name: k, Value: v})
	}
	return rev
}

// start prepares rev and starts an instance of it that the test stops
// when it ends.
func start(t testing.TB, p *Provider, rev *api.Revision, notify func(runtime.State)) runtime.Instance {
	t.Helper()
	if err := p.Prepare(t.Context(), rev); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	inst, err := p.Start(t.Context(), rev, notify)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		_ = inst.Stop(ctx)
	})
	return inst
}

// get serves GET target on h and returns the status and the body.
func get(t testing.TB, h http.Handler, target string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequestWithContext(t.Context(), http.MethodGet, target, nil))
	return w.Code, w.Body.String()
}

// info is what the test server's "/" reports.
type info struct {
	Env      map[string]string
	Args     []string
	Cwd      string
	Hostname string
	UID, GID int
	PID      int
}

func getInfo(t testing.TB, h http.Handler) info {
	t.Helper()
	code, body := get(t, h, "/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d %q", code, body)
	}
	var in info
	if err := json.Unmarshal([]byte(body), &in); err != nil {
		t.Fatalf("GET /: %v in %q", err, body)
	}
	return in
}

// containers lists the containers runc knows in p's state directory.
func containers(t testing.TB, p *Provider) []string {
	t.Helper()
	out, err := exec.Command("runc", "--root", p.runcRoot(), "list", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("runc list: %v: %s", err, out)
	}
	return strings.Fields(string(out))
}

// bundles lists the bundle directories of p's running containers.
func bundles(t testing.TB, p *Provider) []string {
	t.Helper()
	entries, err := os.ReadDir(p.bundles())
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// cgroupDirs lists the cgroup directories of the container id that
// exist, in every hierarchy.
func cgroupDirs(p *Provider, id string) []string {
	found, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", p.opts.CgroupParent, id))
	if d := filepath.Join("/sys/fs/cgroup", p.opts.CgroupParent, id); exists(d) {
		found = append(found, d)
	}
	return found
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// states records what an instance notifies.
type states struct{ c chan runtime.State }

func newStates() *states { return &states{c: make(chan runtime.State, 100)} }

func (s *states) notify(st runtime.State) {
	select {
	case s.c <- st:
	default:
		panic("states: buffer full")
	}
}

func (s *states) next(t testing.TB) runtime.State {
	t.Helper()
	select {
	case st := <-s.c:
		return st
	case <-time.After(waitLong):
		t.Fatal("no state notified")
		return runtime.State{}
	}
}

// eventually polls cond until it holds, failing the test after waitLong.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// startRegistry starts a registry with the test image pushed as
// wisp/hello:v1 and returns both references to it.
func startRegistry(t testing.TB) (registry, tagged, pinned string) {
	t.Helper()
	registry = testregistry.Start(t)
	tagged, pinned = push(t, registry, "wisp/hello:v1", testImage(t, v1.Config{}))
	return registry, tagged, pinned
}
