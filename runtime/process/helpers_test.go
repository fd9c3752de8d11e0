//go:build unix

package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/runtime"
)

// serverBin is testdata/server, built once by TestMain.
var serverBin string

// secretEnv is set in the test binary's environment, as a node's secret
// would be, and must not reach a process.
const secretEnv = "WISP_SECRET_TEST"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if err := os.Setenv(secretEnv, "must-not-leak"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "wisp-process-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	serverBin = filepath.Join(dir, "wisp-test-server")
	build := exec.Command("go", "build", "-o", serverBin, "./testdata/server")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building testdata/server:", err)
		return 1
	}
	return m.Run()
}

// waitLong bounds every wait for something that should happen soon; it is
// generous because the machine may be busy.
const waitLong = 10 * time.Second

// testOptions are Options with the waits shortened for tests.
func testOptions() Options {
	return Options{
		ReadyTimeout:   waitLong,
		StopGrace:      waitLong,
		RestartBackoff: 10 * time.Millisecond,
	}
}

// newRev returns a Revision of the Function "hello" running the test
// server with the environment variables given as name=value pairs.
func newRev(env ...string) *api.Revision {
	rev := &api.Revision{}
	rev.Name = "hello-00001"
	rev.Namespace = "default"
	rev.Labels = map[string]string{api.LabelFunction: "hello"}
	rev.Spec.Process = &api.ProcessSource{Command: serverBin, ReadinessPath: "/healthz"}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		rev.Spec.Env = append(rev.Spec.Env, api.EnvVar{Name: k, Value: v})
	}
	return rev
}

// states records what an instance notifies.
type states struct {
	c chan runtime.State
}

func newStates() *states { return &states{c: make(chan runtime.State, 100)} }

func (s *states) notify(st runtime.State) {
	select {
	case s.c <- st:
	default:
		panic("states: buffer full")
	}
}

// next returns the next state notified, failing the test if none comes.
func (s *states) next(t *testing.T) runtime.State {
	t.Helper()
	select {
	case st := <-s.c:
		return st
	case <-time.After(waitLong):
		t.Fatal("no state notified")
		return runtime.State{}
	}
}

// none fails the test if a state is pending.
func (s *states) none(t *testing.T) {
	t.Helper()
	select {
	case st := <-s.c:
		t.Fatalf("unexpected state notified: %+v", st)
	default:
	}
}

// start prepares rev and starts an instance of it that the test stops
// when it ends.
func start(t *testing.T, p *Provider, rev *api.Revision, notify func(runtime.State)) *instance {
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
	return inst.(*instance)
}

// serve serves one request on h and returns the response.
func serve(t *testing.T, h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// get serves GET target on h and returns the status and the body.
func get(t *testing.T, h http.Handler, target string) (int, string) {
	t.Helper()
	w := serve(t, h, httptest.NewRequestWithContext(t.Context(), http.MethodGet, target, nil))
	return w.Code, w.Body.String()
}

// direct sends GET path to the process behind inst, bypassing the
// instance (which may be stopping), and returns the body.
func direct(t *testing.T, inst *instance, path string) string {
	t.Helper()
	resp, err := http.Get(inst.target.Load().String() + path)
	if err != nil {
		t.Fatalf("GET %s on the process: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s on the process: %d %q %v", path, resp.StatusCode, b, err)
	}
	return strings.TrimSpace(string(b))
}

// eventually polls cond until it holds, failing the test after waitLong.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// readPID waits for the PID the test server writes to file.
func readPID(t *testing.T, file string) int {
	t.Helper()
	var pid int
	eventually(t, "the PID in "+file, func() bool {
		b, err := os.ReadFile(file)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(string(b))
		return err == nil
	})
	return pid
}

// alive reports whether process pid exists and is not a zombie (an
// orphaned grandchild may wait a moment to be reaped by init).
func alive(t *testing.T, pid int) bool {
	t.Helper()
	err := syscall.Kill(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return false
	}
	if err != nil {
		t.Fatalf("kill(%d, 0): %v", pid, err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// "pid (comm) S ...": the state follows the last ')'.
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	return !bytes.HasPrefix(bytes.TrimSpace(rest), []byte("Z"))
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func bufferLogger(b *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
