package wasm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/runtime"
)

// guests maps a guest's name to the path of its module, built by TestMain
// from source: the examples (functions/examples/build.sh) and the test
// guests in testdata.
var guests = map[string]string{}

// sharedCache is a compilation cache directory shared by the tests, so
// that each module is compiled once per run.
var sharedCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wisp-wasm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := buildGuests(dir); err != nil {
		fmt.Fprintf(os.Stderr, "building the test guests: %v\n", err)
	} else {
		sharedCache = filepath.Join(dir, "cache")
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildGuests builds every guest into dir. It fails, rather than skip,
// when a toolchain is missing; build.sh installs Debian's when run as root.
func buildGuests(dir string) error {
	goTool := os.Getenv("GO")
	if goTool == "" {
		goTool = "go"
	}
	run := func(env []string, name string, args ...string) error {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run([]string{"GO=" + goTool}, "bash", "../../functions/examples/build.sh", dir); err != nil {
		return err
	}
	for _, n := range []string{"hello-go-reactor", "hello-go-wagi", "hello-c-wagi", "hello-wat"} {
		guests[n] = filepath.Join(dir, n+".wasm")
	}
	wasip1 := []string{"GOOS=wasip1", "GOARCH=wasm"}
	guests["reactor"] = filepath.Join(dir, "reactor.wasm")
	if err := run(wasip1, goTool, "build", "-buildmode=c-shared", "-o", guests["reactor"], "./testdata/reactor"); err != nil {
		return err
	}
	guests["wagi"] = filepath.Join(dir, "wagi.wasm")
	if err := run(wasip1, goTool, "build", "-o", guests["wagi"], "./testdata/wagi"); err != nil {
		return err
	}
	wats, _ := filepath.Glob("testdata/*.wat")
	for _, wat := range wats {
		name := strings.TrimSuffix(filepath.Base(wat), ".wat")
		guests[name] = filepath.Join(dir, name+".wasm")
		if err := run(nil, "wat2wasm", wat, "-o", guests[name]); err != nil {
			return err
		}
	}
	return nil
}

// loadGuest is an Options.Load that reads the guest named by the module
// "guest:<name>".
func loadGuest(_ context.Context, rev *api.Revision) ([]byte, error) {
	name, ok := strings.CutPrefix(rev.Spec.Wasm.Module, "guest:")
	if !ok {
		return nil, fmt.Errorf("unknown module %q", rev.Spec.Wasm.Module)
	}
	path, ok := guests[name]
	if !ok {
		return nil, fmt.Errorf("no guest %q", name)
	}
	return os.ReadFile(path)
}

// logLine is one line a guest wrote.
type logLine struct{ instance, stream, line string }

// logs collects what guests write.
type logs struct {
	mu    sync.Mutex
	lines []logLine
}

func (l *logs) sink(_ *api.Revision, instance, stream, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, logLine{instance, stream, line})
}

func (l *logs) get() []logLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logLine(nil), l.lines...)
}

// newProvider returns a Provider loading test guests, sharing the
// compilation cache of the run unless opts sets CacheDir.
func newProvider(t testing.TB, opts Options) *Provider {
	t.Helper()
	if opts.Load == nil {
		opts.Load = loadGuest
	}
	if opts.CacheDir == "" {
		opts.CacheDir = sharedCache
	}
	if opts.Logger == nil && testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// newRevision returns a Revision of function fn running the guest.
func newRevision(name, guest string, edit ...func(*api.Revision)) *api.Revision {
	rev := &api.Revision{}
	rev.Name = name
	rev.Namespace = "default"
	rev.Labels = map[string]string{api.LabelFunction: "fn"}
	rev.Spec.Wasm = &api.WasmSource{Module: "guest:" + guest}
	for _, e := range edit {
		e(rev)
	}
	return rev
}

// states records what an instance notifies.
type states struct {
	mu  sync.Mutex
	all []runtime.State
}

func (s *states) notify(st runtime.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, st)
}

func (s *states) get() []runtime.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]runtime.State(nil), s.all...)
}

// start prepares rev and starts one instance of it, stopped at cleanup.
func start(t testing.TB, p *Provider, rev *api.Revision) (runtime.Instance, *states) {
	t.Helper()
	st := &states{}
	if err := p.Prepare(context.Background(), rev); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	inst, err := p.Start(context.Background(), rev, st.notify)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = inst.Stop(ctx)
	})
	return inst, st
}

// do serves one request on h and returns the recorded response.
func do(h http.Handler, method, target string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	return doCtx(context.Background(), h, method, target, body, header...)
}

func doCtx(ctx context.Context, h http.Handler, method, target string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, method, target, body)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// wantStatus fails t unless w has status code.
func wantStatus(t testing.TB, w *httptest.ResponseRecorder, code int) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status %d, want %d; body: %s", w.Code, code, w.Body.String())
	}
}

// waitDone fails t unless inst ends within a few seconds.
func waitDone(t testing.TB, inst runtime.Instance) {
	t.Helper()
	select {
	case <-inst.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the instance did not end")
	}
}
