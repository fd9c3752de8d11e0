package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wisp-faas/wisp/api"
)

// echoed is what the reactor test guest answers by default.
type echoed struct {
	Method  string      `json:"method"`
	URI     string      `json:"uri"`
	Path    string      `json:"path"`
	Query   string      `json:"query"`
	Host    string      `json:"host"`
	Remote  string      `json:"remote"`
	Proto   string      `json:"proto"`
	Header  http.Header `json:"header"`
	Body    string      `json:"body"`
	Length  int64       `json:"length"`
	Count   int         `json:"count"`
	Environ []string    `json:"environ"`
}

func decode[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return v
}

func TestExamples(t *testing.T) {
	p := newProvider(t, Options{})
	for guest, want := range map[string]string{
		"hello-go-reactor": "Hello, Ada! (revision r1, path /greet)\n",
		"hello-go-wagi":    "Hello, Ada! (revision r1, path /greet)\n",
		"hello-c-wagi":     "Hello, Ada! (revision r1)\n",
		"hello-wat":        "Hello from WAT!\n",
	} {
		t.Run(guest, func(t *testing.T) {
			inst, _ := start(t, p, newRevision("r1", guest, func(r *api.Revision) { r.Namespace = guest }))
			for range 2 {
				w := do(inst, "GET", "/greet?name=Ada", nil)
				wantStatus(t, w, http.StatusOK)
				if got := w.Body.String(); got != want {
					t.Errorf("body %q, want %q", got, want)
				}
				if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("Content-Type %q", ct)
				}
			}
		})
	}
}

func TestReactorRoundTrip(t *testing.T) {
	t.Setenv("HOME", "/home/host-secret")
	p := newProvider(t, Options{})
	inst, _ := start(t, p, newRevision("rt-1", "reactor", func(r *api.Revision) {
		r.Spec.Env = []api.EnvVar{{Name: "GREETING", Value: "Hi"}, {Name: "K_REVISION", Value: "overridden"}}
	}))

	const trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	w := do(inst, "POST", "/a/b%20c?x=1&y=%2F", strings.NewReader("the body"),
		"Traceparent", trace, "X-Multi", "one", "X-Multi", "two", "Content-Type", "text/plain")
	wantStatus(t, w, http.StatusOK)
	e := decode[echoed](t, w.Body.Bytes())
	if e.Method != "POST" || e.URI != "/a/b%20c?x=1&y=%2F" || e.Path != "/a/b c" || e.Query != "x=1&y=%2F" ||
		e.Host != "example.com" || e.Remote != "192.0.2.1:1234" || e.Proto != "HTTP/1.1" ||
		e.Body != "the body" || e.Length != 8 {
		t.Errorf("request fields did not round-trip: %+v", e)
	}
	if got := e.Header.Get("Traceparent"); got != trace {
		t.Errorf("traceparent %q, want %q", got, trace)
	}
	if got := e.Header.Values("X-Multi"); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("X-Multi %q", got)
	}
	wantEnv := []string{"GREETING=Hi", "K_REVISION=rt-1", "K_SERVICE=fn", "K_CONFIGURATION=fn"}
	env := slices.Clone(e.Environ)
	slices.Sort(env)
	slices.Sort(wantEnv)
	if !slices.Equal(env, wantEnv) { // HOME and everything else of the host stays out
		t.Errorf("environ %q, want exactly %q", env, wantEnv)
	}

	w = do(inst, "GET", "/status?code=418", nil)
	wantStatus(t, w, http.StatusTeapot)
	if got := w.Header().Values("X-Multi"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("response X-Multi %q", got)
	}
	if w.Body.String() != "status body" || w.Header().Get("Content-Length") != "11" {
		t.Errorf("body %q, Content-Length %q", w.Body.String(), w.Header().Get("Content-Length"))
	}

	w = do(inst, "GET", "/sniff", nil)
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("sniffed Content-Type %q, want text/html as net/http would", ct)
	}

	w = do(inst, "HEAD", "/status?code=200", nil)
	wantStatus(t, w, http.StatusOK)
	if w.Body.Len() != 0 {
		t.Errorf("HEAD answered a body: %q", w.Body.String())
	}
}

func TestReactorInstanceReuse(t *testing.T) {
	for _, snapshots := range []bool{true, false} {
		t.Run("snapshots="+strconv.FormatBool(snapshots), func(t *testing.T) {
			p := newProvider(t, Options{NoSnapshots: !snapshots})
			rev := newRevision("reuse-1", "reactor")
			a, _ := start(t, p, rev)
			for want := 1; want <= 3; want++ {
				if e := decode[echoed](t, do(a, "GET", "/", nil).Body.Bytes()); e.Count != want {
					t.Fatalf("count %d, want %d: the instance is not reused", e.Count, want)
				}
			}
			// A second instance has its own state, whether restored from the
			// snapshot or initialised.
			b, _ := start(t, p, rev)
			if e := decode[echoed](t, do(b, "GET", "/", nil).Body.Bytes()); e.Count != 1 {
				t.Fatalf("count %d on a new instance, want 1", e.Count)
			}
			m, _ := p.module(context.Background(), rev)
			if got := m.snap.Load() != nil; got != snapshots {
				t.Errorf("snapshot taken: %v, want %v", got, snapshots)
			}
		})
	}
}

func TestWAGIContract(t *testing.T) {
	t.Setenv("HOME", "/home/host-secret")
	p := newProvider(t, Options{})
	inst, _ := start(t, p, newRevision("wagi-1", "wagi", func(r *api.Revision) {
		r.Spec.Env = []api.EnvVar{{Name: "GREETING", Value: "Hi"}, {Name: "PATH_INFO", Value: "overridden by CGI"}}
	}))

	w := do(inst, "POST", "/a/b%20c?x=1&y=%2F", strings.NewReader("the body"),
		"Content-Type", "text/plain", "X-Forwarded-Prefix", "/fn/default/hello", "X-Multi", "one", "X-Multi", "two",
		"Authorization", "Bearer secret", "Traceparent", "00-abc-def-01")
	wantStatus(t, w, http.StatusOK)
	got := decode[struct {
		Args  []string          `json:"args"`
		Env   map[string]string `json:"env"`
		Stdin string            `json:"stdin"`
	}](t, w.Body.Bytes())
	if got.Stdin != "the body" {
		t.Errorf("stdin %q", got.Stdin)
	}
	if want := []string{"/fn/default/hello/a/b c", "x=1", "y=%2F"}; !slices.Equal(got.Args, want) {
		t.Errorf("args %q, want %q", got.Args, want)
	}
	want := map[string]string{
		"AUTH_TYPE":               "",
		"CONTENT_LENGTH":          "8",
		"CONTENT_TYPE":            "text/plain",
		"GATEWAY_INTERFACE":       "CGI/1.1",
		"PATH_INFO":               "/a/b c",
		"PATH_TRANSLATED":         "/a/b c",
		"QUERY_STRING":            "x=1&y=%2F",
		"REMOTE_ADDR":             "192.0.2.1",
		"REMOTE_HOST":             "192.0.2.1",
		"REMOTE_USER":             "",
		"REQUEST_METHOD":          "POST",
		"SCRIPT_NAME":             "/fn/default/hello",
		"SERVER_NAME":             "example.com",
		"SERVER_PORT":             "80",
		"SERVER_PROTOCOL":         "HTTP/1.1",
		"SERVER_SOFTWARE":         "wisp",
		"X_FULL_URL":              "http://example.com/fn/default/hello/a/b%20c?x=1&y=%2F",
		"X_MATCHED_ROUTE":         "/fn/default/hello/...",
		"X_RAW_PATH_INFO":         "/a/b%20c",
		"HTTP_HOST":               "example.com",
		"HTTP_CONTENT_TYPE":       "text/plain",
		"HTTP_X_FORWARDED_PREFIX": "/fn/default/hello",
		"HTTP_X_MULTI":            "one, two",
		"HTTP_TRACEPARENT":        "00-abc-def-01",
		"GREETING":                "Hi",
		"K_SERVICE":               "fn",
		"K_CONFIGURATION":         "fn",
		"K_REVISION":              "wagi-1",
	}
	for k, v := range want {
		if got.Env[k] != v {
			t.Errorf("env %s=%q, want %q", k, got.Env[k], v)
		}
	}
	for k := range got.Env {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected env %s=%q (HTTP_AUTHORIZATION and the host's environment must stay out)", k, got.Env[k])
		}
	}
}

func TestWAGIResponses(t *testing.T) {
	l := &logs{}
	p := newProvider(t, Options{LogSink: l.sink})
	inst, _ := start(t, p, newRevision("wagi-2", "wagi"))
	for _, tc := range []struct {
		path, method string
		status       int
		header       map[string]string
		body         string // prefix
	}{
		{"/status", "GET", 404, map[string]string{"Content-Type": "text/plain", "X-Extra": "yes"}, "not here"},
		{"/redirect", "GET", 302, map[string]string{"Location": "/elsewhere"}, ""},
		{"/redirect-status", "GET", 301, map[string]string{"Location": "/moved"}, ""},
		{"/noheaders", "GET", 500, nil, `{"error":"revision wagi-2: the module's response has neither Content-Type nor Location`},
		{"/noblank", "GET", 500, nil, `{"error":"revision wagi-2: the module's output has no empty line`},
		{"/exit", "GET", 500, nil, `{"error":"revision wagi-2: the module exited with code 3"}`},
		{"/exit0", "GET", 200, map[string]string{"Content-Type": "text/plain"}, "bye"},
		{"/status", "HEAD", 404, nil, ""},
	} {
		w := do(inst, tc.method, tc.path, nil)
		if w.Code != tc.status || !strings.HasPrefix(w.Body.String(), tc.body) {
			t.Errorf("%s %s: %d %q, want %d %q...", tc.method, tc.path, w.Code, w.Body.String(), tc.status, tc.body)
		}
		for k, v := range tc.header {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s: header %s=%q, want %q", tc.path, k, got, v)
			}
		}
	}
	if !inst.Ready() {
		t.Fatal("a wagi instance must stay ready after bad responses")
	}

	wantStatus(t, do(inst, "GET", "/stderr", nil), http.StatusOK)
	var stderr []string
	for _, ln := range l.get() {
		if ln.stream == "stderr" && ln.instance == inst.ID() {
			stderr = append(stderr, ln.line)
		}
	}
	if want := []string{"line one", "line two"}; !slices.Equal(stderr, want) {
		t.Errorf("stderr lines %q, want %q", stderr, want)
	}
}

func TestReactorLogs(t *testing.T) {
	l := &logs{}
	p := newProvider(t, Options{LogSink: l.sink})
	inst, _ := start(t, p, newRevision("logs-1", "reactor"))
	wantStatus(t, do(inst, "GET", "/log", nil), http.StatusNoContent)
	got := l.get()
	want := []logLine{{inst.ID(), "stdout", "to stdout"}, {inst.ID(), "stderr", "to stderr"}}
	if !slices.Equal(got, want) {
		t.Errorf("logs %q, want %q", got, want)
	}
}

func TestABIDetection(t *testing.T) {
	p := newProvider(t, Options{})
	for _, tc := range []struct {
		guest, abi string // abi: what spec.wasm.abi says
		want, err  string // want: the ABI detected
	}{
		{guest: "hello-go-reactor", want: ABIHTTP},
		{guest: "reactor", abi: ABIHTTP, want: ABIHTTP},
		{guest: "hello-go-wagi", want: ABIWAGI},
		{guest: "hello-c-wagi", want: ABIWAGI},
		{guest: "hello-wat", abi: ABIWAGI, want: ABIWAGI},
		{guest: "hello-wat", abi: ABIHTTP, err: "the http ABI needs the export wisp_abi_version_1"},
		{guest: "hello-go-reactor", abi: ABIWAGI, err: "the wagi ABI needs a WASI command exporting _start"},
		{guest: "nostart", err: "exports neither _start"},
		{guest: "badimport", err: "imports env.secret, which wisp does not provide"},
		{guest: "hello-wat", abi: "cgi", err: `wasm.abi "cgi" is not one wisp knows`},
	} {
		rev := newRevision("abi-"+tc.guest+"-"+tc.abi, tc.guest, func(r *api.Revision) { r.Spec.Wasm.ABI = tc.abi })
		err := p.Prepare(context.Background(), rev)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s as %q: error %v, want one containing %q", tc.guest, tc.abi, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s as %q: %v", tc.guest, tc.abi, err)
			continue
		}
		m, _ := p.module(context.Background(), rev)
		if m.abi != tc.want {
			t.Errorf("%s as %q: ABI %s, want %s", tc.guest, tc.abi, m.abi, tc.want)
		}
	}
}

func TestBadModuleFailsPrepare(t *testing.T) {
	bad := []byte("\x00asm\x01\x00\x00\x00\x01\x05\x01\x60") // a truncated type section
	// The error wazero itself gives, which Prepare must quote.
	rt := wazero.NewRuntime(context.Background())
	defer rt.Close(context.Background())
	_, werr := rt.CompileModule(context.Background(), bad)
	if werr == nil {
		t.Fatal("wazero compiled the bad module")
	}
	p := newProvider(t, Options{Load: func(context.Context, *api.Revision) ([]byte, error) { return bad, nil }})
	err := p.Prepare(context.Background(), newRevision("bad-1", "bad"))
	if err == nil || !strings.Contains(err.Error(), werr.Error()) || !strings.Contains(err.Error(), "bad-1") {
		t.Fatalf("Prepare: %v, want an error naming the revision and quoting wazero's %q", err, werr)
	}

	p = newProvider(t, Options{Load: func(context.Context, *api.Revision) ([]byte, error) { return nil, errors.New("no such digest") }})
	if err := p.Prepare(context.Background(), newRevision("bad-2", "x")); err == nil || !strings.Contains(err.Error(), "no such digest") {
		t.Fatalf("Prepare: %v, want Load's error", err)
	}
	rev := newRevision("bad-3", "x")
	rev.Spec.Wasm = nil
	if err := p.Prepare(context.Background(), rev); err == nil || !strings.Contains(err.Error(), "no wasm source") {
		t.Fatalf("Prepare: %v, want the missing source named", err)
	}
}

func TestReactorCrashDiscardsInstance(t *testing.T) {
	p := newProvider(t, Options{CrashLoopTraps: 3})
	rev := newRevision("crash-1", "reactor")
	for n, path := range []string{"/panic", "/exit", "/panic"} {
		inst, st := start(t, p, rev)
		wantStatus(t, do(inst, "GET", "/", nil), http.StatusOK)
		w := do(inst, "GET", path, nil)
		wantStatus(t, w, http.StatusInternalServerError)
		if !strings.Contains(w.Body.String(), "revision crash-1 failed") {
			t.Errorf("%s: body %s", path, w.Body.String())
		}
		waitDone(t, inst)
		if inst.Ready() {
			t.Error("a crashed instance is still ready")
		}
		sts := st.get()
		if len(sts) != 1 || !sts[0].Gone || sts[0].Ready {
			t.Fatalf("%s: states %+v, want one Gone", path, sts)
		}
		prefix := CrashPrefix
		if n == 2 {
			prefix = CrashLoopPrefix + " 3 crashes in 1m0s"
		}
		if !strings.HasPrefix(sts[0].Reason, prefix) {
			t.Errorf("%s: reason %q, want prefix %q", path, sts[0].Reason, prefix)
		}
		wantStatus(t, do(inst, "GET", "/", nil), http.StatusServiceUnavailable)
	}
	// The pool replaces a crashed instance: a new one works.
	inst, _ := start(t, p, rev)
	wantStatus(t, do(inst, "GET", "/", nil), http.StatusOK)
}

func TestWAGITrap(t *testing.T) {
	p := newProvider(t, Options{CrashLoopTraps: 2})
	inst, st := start(t, p, newRevision("trap-1", "trap"))
	for range 2 {
		w := do(inst, "GET", "/", nil)
		wantStatus(t, w, http.StatusInternalServerError)
		if !strings.Contains(w.Body.String(), "unreachable") {
			t.Errorf("body %s, want wazero's trap", w.Body.String())
		}
	}
	if !inst.Ready() {
		t.Fatal("a wagi instance must survive its module's trap: every request has its own module instance")
	}
	sts := st.get()
	if len(sts) != 1 || !sts[0].Ready || !strings.HasPrefix(sts[0].Reason, CrashLoopPrefix) {
		t.Errorf("states %+v, want one crash-loop report", sts)
	}
}

func TestInfiniteLoopTimesOut(t *testing.T) {
	p := newProvider(t, Options{})
	for _, tc := range []struct{ guest, path string }{
		{"reactor", "/loop"},
		{"reactor", "/sleep"},
		{"wagi", "/loop"},
		{"loop", "/"},
	} {
		t.Run(tc.guest+tc.path, func(t *testing.T) {
			rev := newRevision("loop-"+tc.guest, tc.guest)
			inst, st := start(t, p, rev)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			begin := time.Now()
			w := doCtx(ctx, inst, "GET", tc.path, nil)
			took := time.Since(begin)
			wantStatus(t, w, http.StatusGatewayTimeout)
			if took > 3*time.Second {
				t.Errorf("took %s to interrupt the guest", took)
			}
			if tc.guest == "reactor" {
				waitDone(t, inst)
				if sts := st.get(); len(sts) != 1 || !sts[0].Gone || strings.HasPrefix(sts[0].Reason, CrashPrefix) {
					t.Errorf("states %+v, want Gone and no crash", sts)
				}
				inst, _ = start(t, p, rev)
			}
			if tc.guest == "loop" { // it loops on every request; the instance still takes them
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				wantStatus(t, doCtx(ctx, inst, "GET", "/", nil), http.StatusGatewayTimeout)
				return
			}
			wantStatus(t, do(inst, "GET", "/", nil), http.StatusOK)
		})
	}

	t.Run("timeoutSeconds", func(t *testing.T) {
		one := int64(1)
		inst, _ := start(t, p, newRevision("loop-ts", "loop", func(r *api.Revision) { r.Spec.TimeoutSeconds = &one }))
		w := do(inst, "GET", "/", nil)
		wantStatus(t, w, http.StatusGatewayTimeout)
		if !strings.Contains(w.Body.String(), "timeout of 1s (spec.timeoutSeconds)") {
			t.Errorf("body %s", w.Body.String())
		}
	})
}

func TestMemoryLimit(t *testing.T) {
	p := newProvider(t, Options{})
	rev := newRevision("oom-1", "reactor", func(r *api.Revision) { r.Spec.Wasm.MemoryLimitPages = 256 })
	inst, st := start(t, p, rev)
	w := do(inst, "GET", "/oom", nil)
	wantStatus(t, w, http.StatusInternalServerError)
	waitDone(t, inst)
	if sts := st.get(); len(sts) != 1 || !strings.HasPrefix(sts[0].Reason, CrashPrefix) {
		t.Errorf("states %+v", sts)
	}
	inst, _ = start(t, p, rev)
	wantStatus(t, do(inst, "GET", "/", nil), http.StatusOK)

	// A module whose memory starts above the limit cannot be prepared.
	err := p.Prepare(context.Background(), newRevision("oom-2", "reactor", func(r *api.Revision) { r.Spec.Wasm.MemoryLimitPages = 16 }))
	if err == nil || !strings.Contains(err.Error(), "raise wasm.memoryLimitPages") {
		t.Errorf("Prepare: %v, want the memory limit named", err)
	}
}

func TestBodyLimit(t *testing.T) {
	p := newProvider(t, Options{})
	for _, guest := range []string{"reactor", "wagi"} {
		inst, _ := start(t, p, newRevision("body-"+guest, guest, func(r *api.Revision) { r.Spec.Wasm.MaxRequestBodyBytes = 100 }))
		wantStatus(t, do(inst, "POST", "/", strings.NewReader(strings.Repeat("x", 101))), http.StatusRequestEntityTooLarge)
		// Without a Content-Length the body is cut while it is read.
		chunked := do(inst, "POST", "/", struct{ *strings.Reader }{strings.NewReader(strings.Repeat("x", 101))})
		wantStatus(t, chunked, http.StatusRequestEntityTooLarge)
		w := do(inst, "POST", "/", strings.NewReader(strings.Repeat("x", 100)))
		wantStatus(t, w, http.StatusOK)
		if guest == "reactor" {
			if e := decode[echoed](t, w.Body.Bytes()); e.Count != 1 || len(e.Body) != 100 {
				t.Errorf("count %d, body %d bytes: the guest saw a refused request", e.Count, len(e.Body))
			}
		}
	}
}

func TestDirs(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, Options{})
	inst, _ := start(t, p, newRevision("dirs-1", "reactor", func(r *api.Revision) {
		r.Spec.Wasm.Dirs = []api.WasmDir{{HostPath: dir, GuestPath: "/data", ReadOnly: true}}
	}))
	w := do(inst, "GET", "/file?name=/data/hello.txt", nil)
	wantStatus(t, w, http.StatusOK)
	if w.Body.String() != "from the host" {
		t.Errorf("body %q", w.Body.String())
	}
	wantStatus(t, do(inst, "GET", "/file?name=/etc/hostname", nil), http.StatusNotFound)
	wantStatus(t, do(inst, "GET", "/file?name=/data/../../etc/hostname", nil), http.StatusNotFound)
	wantStatus(t, do(inst, "GET", "/write?name=/data/new.txt", nil), http.StatusForbidden)

	// Without a grant there is no filesystem at all.
	bare, _ := start(t, p, newRevision("dirs-2", "reactor"))
	wantStatus(t, do(bare, "GET", "/file?name=/data/hello.txt", nil), http.StatusNotFound)
}

func TestCompilationCacheSurvivesProvider(t *testing.T) {
	dir := t.TempDir()
	rev := newRevision("cache-1", "hello-wat")
	p := newProvider(t, Options{CacheDir: dir})
	if err := p.Prepare(context.Background(), rev); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "wazero-*", "*"))
	if len(files) == 0 {
		t.Fatalf("no compiled code under %s", dir)
	}
	// A new Provider (a restarted node) finds and runs it.
	p2 := newProvider(t, Options{CacheDir: dir})
	inst, _ := start(t, p2, rev)
	wantStatus(t, do(inst, "GET", "/", nil), http.StatusOK)
	after, _ := filepath.Glob(filepath.Join(dir, "wazero-*", "*"))
	if len(after) != len(files) {
		t.Errorf("%d cache files after a restart, %d before: the code was compiled again", len(after), len(files))
	}
}

func TestConcurrentRequestsAreSerialized(t *testing.T) {
	p := newProvider(t, Options{})
	inst, _ := start(t, p, newRevision("conc-1", "reactor"))
	const n = 16
	counts := make([]int, n)
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() {
			w := do(inst, "POST", "/", strings.NewReader(strconv.Itoa(k)))
			if w.Code != http.StatusOK {
				t.Errorf("status %d: %s", w.Code, w.Body.String())
				return
			}
			e := decode[echoed](t, w.Body.Bytes())
			if e.Body != strconv.Itoa(k) {
				t.Errorf("request %d got the body %q", k, e.Body)
			}
			counts[k] = e.Count
		})
	}
	wg.Wait()
	slices.Sort(counts)
	for k, c := range counts {
		if c != k+1 {
			t.Fatalf("counts %v, want 1..%d: requests overlapped", counts, n)
		}
	}
}

func TestStop(t *testing.T) {
	p := newProvider(t, Options{})
	rev := newRevision("stop-1", "reactor")

	inst, st := start(t, p, rev)
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitDone(t, inst)
	if sts := st.get(); len(sts) != 1 || !sts[0].Gone || sts[0].Reason != "" {
		t.Errorf("states %+v", sts)
	}
	wantStatus(t, do(inst, "GET", "/", nil), http.StatusServiceUnavailable)
	if err := inst.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	// A request in flight is interrupted once Stop's context ends.
	inst, _ = start(t, p, rev)
	res := make(chan int)
	go func() { res <- do(inst, "GET", "/sleep", nil).Code }()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := inst.Stop(ctx); err == nil {
		t.Error("Stop cut a request and returned no error")
	}
	if code := <-res; code != http.StatusServiceUnavailable {
		t.Errorf("the cut request got %d, want 503", code)
	}
}

func TestRelease(t *testing.T) {
	p := newProvider(t, Options{})
	rev := newRevision("release-1", "reactor")
	inst, _ := start(t, p, rev)
	_ = inst.Stop(context.Background())
	p.Release(rev)
	p.mu.Lock()
	n := len(p.modules)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("%d modules kept after Release", n)
	}
}
