//go:build unix

package process

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wisp-faas/wisp/api"
)

func TestStartServesAndKeepsTheEnvironmentContract(t *testing.T) {
	t.Parallel()
	p := New(testOptions())
	// A PORT in the Revision's env cannot take the contract's port away.
	inst := start(t, p, newRev("GREETING=hi there", "PORT=1"), nil)

	if !inst.Ready() || !strings.HasPrefix(inst.ID(), "hello-00001-") {
		t.Fatalf("Ready() = %v, ID() = %q", inst.Ready(), inst.ID())
	}
	if code, body := get(t, inst, "/"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("GET / = %d %q", code, body)
	}

	code, body := get(t, inst, "/env")
	if code != http.StatusOK {
		t.Fatalf("GET /env = %d %q", code, body)
	}
	var env map[string]string
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"PORT":            inst.target.Load().Port(),
		"K_SERVICE":       "hello",
		"K_CONFIGURATION": "hello",
		"K_REVISION":      "hello-00001",
		"GREETING":        "hi there",
		"PATH":            os.Getenv("PATH"),
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("process env %s = %q, want %q", k, env[k], v)
		}
	}
	allowed := []string{"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION", "GREETING", "PATH", "HOME", "LANG", "TZ"}
	for k := range env {
		if !slices.Contains(allowed, k) {
			t.Errorf("process env has %s=%q, which is neither the contract's, the Revision's nor PATH/HOME/LANG/TZ", k, env[k])
		}
	}
	if _, ok := env[secretEnv]; ok {
		t.Errorf("the node's %s reached the process", secretEnv)
	}

	// The probe announced itself as Knative's queue-proxy does.
	if code, body := get(t, inst, "/last-probe"); code != http.StatusOK || body != "queue\n" {
		t.Errorf("K-Network-Probe of the readiness probe = %d %q, want queue", code, body)
	}
}

func TestPrepareRefusesWhatCannotRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "script")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rev := func(command, workingDir string) *api.Revision {
		r := newRev()
		r.Spec.Process.Command, r.Spec.Process.WorkingDir = command, workingDir
		return r
	}
	noSource := newRev()
	noSource.Spec.Process = nil

	for _, tc := range []struct {
		name string
		rev  *api.Revision
		want []string
	}{
		{"missing file", rev(filepath.Join(dir, "nope"), ""), []string{"nope", "no such file", "absolute path"}},
		{"not executable", rev(notExec, ""), []string{"script", "not executable", "chmod +x"}},
		{"directory", rev(dir, ""), []string{"is a directory"}},
		{"bare name not on PATH", rev("wisp-no-such-command", ""), []string{"wisp-no-such-command", "not found on the node's PATH"}},
		{"relative without workingDir", rev("bin/server", ""), []string{"bin/server", "needs process.workingDir"}},
		{"relative missing in workingDir", rev("bin/server", dir), []string{filepath.Join(dir, "bin/server"), "no such file"}},
		{"workingDir missing", rev(serverBin, filepath.Join(dir, "gone")), []string{"process.workingDir", "no such directory"}},
		{"workingDir relative", rev(serverBin, "tmp"), []string{"process.workingDir", "not an absolute path"}},
		{"empty command", rev("", ""), []string{"process.command is empty"}},
		{"no process source", noSource, []string{"no process source"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New(testOptions())
			err := p.Prepare(t.Context(), tc.rev)
			if err == nil {
				t.Fatal("Prepare succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			// Start checks the same without Prepare.
			if _, err := p.Start(t.Context(), tc.rev, nil); err == nil {
				t.Fatal("Start succeeded")
			}
		})
	}
}

// Not parallel: it changes PATH.
func TestPrepareResolvesBareNameOnPathAndRelativeInWorkingDir(t *testing.T) {
	dir, name := filepath.Split(serverBin)
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	p := New(testOptions())

	bare := newRev()
	bare.Spec.Process.Command = name
	if err := p.Prepare(t.Context(), bare); err != nil {
		t.Fatal(err)
	}
	if got := p.commands[revKey(bare)]; got != serverBin {
		t.Errorf("%s resolved to %q, want %q", name, got, serverBin)
	}
	inst := start(t, p, bare, nil)
	if code, body := get(t, inst, "/"); code != http.StatusOK {
		t.Fatalf("GET / = %d %q", code, body)
	}

	rel := newRev()
	rel.Name = "hello-00002"
	rel.Spec.Process.Command, rel.Spec.Process.WorkingDir = "./"+name, dir
	if err := p.Prepare(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	if got := p.commands[revKey(rel)]; got != serverBin {
		t.Errorf("./%s in %s resolved to %q, want %q", name, dir, got, serverBin)
	}
	p.Release(rel)
	if _, ok := p.commands[revKey(rel)]; ok {
		t.Error("Release kept the command")
	}
}

func TestStartFailsWithStderrWhenTheProcessExits(t *testing.T) {
	t.Parallel()
	p := New(testOptions())
	begin := time.Now()
	_, err := p.Start(t.Context(), newRev("EXIT_AT_START=boom: no config file"), nil)
	if err == nil {
		t.Fatal("Start succeeded")
	}
	for _, w := range []string{"hello-00001", serverBin, "exited with status 3", "before becoming ready", "boom: no config file"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	// It noticed the exit rather than waiting for ReadyTimeout.
	if d := time.Since(begin); d >= testOptions().ReadyTimeout {
		t.Errorf("Start took %s", d)
	}
}

func TestStartTimesOutAndKillsAProcessThatNeverAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  string
		want string
	}{
		{"never listens", "NEVER_LISTEN=1", "must listen on 127.0.0.1:$PORT"},
		{"answers 500", "UNHEALTHY=1", "it answered 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := testOptions()
			opts.ReadyTimeout = 300 * time.Millisecond
			p := New(opts)
			dir := t.TempDir()
			pidFile, childFile := filepath.Join(dir, "pid"), filepath.Join(dir, "child")
			_, err := p.Start(t.Context(), newRev(tc.env, "PID_FILE="+pidFile, "SPAWN_CHILD="+childFile), nil)
			if err == nil {
				t.Fatal("Start succeeded")
			}
			for _, w := range []string{"did not answer on $PORT", "within 300ms", tc.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			pid, child := readPID(t, pidFile), readPID(t, childFile)
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("the process %d is still there after Start failed: kill(pid, 0) = %v", pid, err)
			}
			eventually(t, "the process's child to end", func() bool { return !alive(t, child) })
		})
	}
}

func TestStartGivesUpWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	p := New(testOptions())
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := p.Start(ctx, newRev("NEVER_LISTEN=1", "PID_FILE="+pidFile), nil)
	if err == nil || !strings.Contains(err.Error(), "gave up waiting") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start = %v, want it to give up with the context's error", err)
	}
	if pid := readPID(t, pidFile); !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		t.Errorf("the process %d is still there after Start failed", pid)
	}

	// A context that already ended starts nothing.
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.Start(ended, newRev(), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with an ended context = %v", err)
	}
}

func TestRestartsACrashedProcess(t *testing.T) {
	t.Parallel()
	p := New(testOptions())
	pidFile := filepath.Join(t.TempDir(), "pid")
	s := newStates()
	inst := start(t, p, newRev("PID_FILE="+pidFile), s.notify)
	first := readPID(t, pidFile)
	if err := os.Remove(pidFile); err != nil {
		t.Fatal(err)
	}

	if code, _ := get(t, inst, "/crash"); code != http.StatusBadGateway {
		t.Errorf("GET /crash = %d, want 502", code)
	}
	down := s.next(t)
	if down.Ready || down.Gone || down.Restarts != 1 ||
		!strings.Contains(down.Reason, "exited with status 1") || !strings.Contains(down.Reason, "crash requested") ||
		!strings.Contains(down.Reason, "restarting in 10ms") {
		t.Fatalf("after the crash: %+v, want not ready, 1 restart and a reason naming the exit", down)
	}
	if up := s.next(t); !up.Ready || up.Restarts != 1 || up.Reason != "" {
		t.Fatalf("after the restart: %+v, want ready with 1 restart", up)
	}
	if !inst.Ready() {
		t.Fatal("Ready() = false after the restart")
	}
	if code, body := get(t, inst, "/"); code != http.StatusOK {
		t.Fatalf("GET / after the restart = %d %q", code, body)
	}
	if second := readPID(t, pidFile); second == first {
		t.Errorf("the process after the restart has the PID %d of the one that crashed", first)
	}
	s.none(t)
}

func TestRestartBacksOffWhileTheProcessKeepsFailing(t *testing.T) {
	t.Parallel()
	p := New(testOptions())
	bad := filepath.Join(t.TempDir(), "bad")
	s := newStates()
	inst := start(t, p, newRev("FAIL_IF_EXISTS="+bad), s.notify)

	if err := os.WriteFile(bad, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	get(t, inst, "/crash")
	if st := s.next(t); st.Restarts != 1 || !strings.Contains(st.Reason, "crash requested; restarting in 10ms") {
		t.Fatalf("after the crash: %+v", st)
	}
	if code, _ := get(t, inst, "/"); code != http.StatusServiceUnavailable {
		t.Errorf("GET / while restarting = %d, want 503", code)
	}
	// Each failed restart waits twice as long as the one before.
	for n, wait := range []string{"20ms", "40ms"} {
		st := s.next(t)
		want := "exited with status 3 before becoming ready: config is bad; restarting in " + wait
		if st.Ready || st.Restarts != n+2 || st.Reason != want {
			t.Fatalf("failed restart %d: %+v, want reason %q", n+1, st, want)
		}
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	for {
		st := s.next(t)
		if st.Ready {
			break
		}
	}
	if code, body := get(t, inst, "/"); code != http.StatusOK {
		t.Fatalf("GET / after recovering = %d %q", code, body)
	}
}

func TestStopDuringRestartBackoffEndsAtOnce(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.RestartBackoff = time.Hour
	p := New(opts)
	s := newStates()
	inst := start(t, p, newRev(), s.notify)
	get(t, inst, "/crash")
	if st := s.next(t); st.Ready || st.Restarts != 1 {
		t.Fatalf("after the crash: %+v", st)
	}
	if err := inst.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st := s.next(t); !st.Gone {
		t.Fatalf("after Stop: %+v, want gone", st)
	}
	<-inst.Done()
}

func TestStopWaitsForRequestsInFlight(t *testing.T) {
	t.Parallel()
	p := New(testOptions())
	inst := start(t, p, newRev(), nil)

	slow := httptest.NewRecorder()
	served := make(chan struct{})
	go func() {
		defer close(served)
		inst.ServeHTTP(slow, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/slow?gate=stop", nil))
	}()
	eventually(t, "the slow request to reach the process", func() bool { return direct(t, inst, "/active") == "1" })

	stopped := make(chan error, 1)
	go func() { stopped <- inst.Stop(t.Context()) }()
	eventually(t, "Stop to begin", func() bool { return !inst.Ready() })
	if code, body := get(t, inst, "/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "is stopping") {
		t.Errorf("a request while stopping = %d %q, want 503", code, body)
	}
	// Stop is waiting: the process was not told to end and still serves.
	if got := direct(t, inst, "/active"); got != "1" {
		t.Fatalf("requests in progress while stopping = %s, want 1", got)
	}
	select {
	case <-inst.Done():
		t.Fatal("Done closed while a request was in flight")
	default:
	}

	direct(t, inst, "/release?gate=stop")
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Stop did not return")
	}
	<-served
	if slow.Code != http.StatusOK || slow.Body.String() != "slept\n" {
		t.Errorf("the request in flight got %d %q, want 200", slow.Code, slow.Body)
	}
}

func TestStopWithAnEndedContextCutsOnlyRequestsInFlight(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.StopGrace = 200 * time.Millisecond
	p := New(opts)
	ended, cancel := context.WithCancel(t.Context())
	cancel()

	// Nothing in flight: nothing was cut.
	for range 3 {
		if err := start(t, p, newRev(), nil).Stop(ended); err != nil {
			t.Fatalf("Stop with nothing in flight: %v", err)
		}
	}

	inst := start(t, p, newRev(), nil)
	slow := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		inst.ServeHTTP(w, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/slow?gate=never", nil))
		slow <- w.Code
	}()
	eventually(t, "the slow request to reach the process", func() bool { return direct(t, inst, "/active") == "1" })
	// The test server waits for its handlers on SIGTERM: it is killed.
	err := inst.Stop(ended)
	if err == nil || !strings.Contains(err.Error(), "stopped with 1 request(s) still in flight") || !errors.Is(err, context.Canceled) {
		t.Errorf("Stop = %v, want it to say a request was cut", err)
	}
	if code := <-slow; code != http.StatusBadGateway {
		t.Errorf("the request cut = %d, want 502", code)
	}
}

func TestStopEndsTheProcessGroup(t *testing.T) {
	t.Parallel()
	p := New(testOptions())
	dir := t.TempDir()
	pidFile, childFile := filepath.Join(dir, "pid"), filepath.Join(dir, "child")
	s := newStates()
	inst := start(t, p, newRev("PID_FILE="+pidFile, "SPAWN_CHILD="+childFile), s.notify)
	pid, child := readPID(t, pidFile), readPID(t, childFile)

	if err := inst.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-inst.Done():
	default:
		t.Fatal("Done is not closed after Stop returned")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the process %d is still there after Stop: kill(pid, 0) = %v", pid, err)
	}
	eventually(t, "the process's child to end", func() bool { return !alive(t, child) })
	if st := s.next(t); !st.Gone || st.Ready {
		t.Errorf("after Stop: %+v, want gone", st)
	}
	s.none(t)

	code, body := get(t, inst, "/")
	var e struct{ Error string }
	if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, "stopping") {
		t.Errorf("a request after Stop = %d %q, want 503 with a JSON error", code, body)
	}
	if inst.Ready() {
		t.Error("Ready() after Stop")
	}
}

func TestStopKillsAProcessThatIgnoresSIGTERM(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.StopGrace = 300 * time.Millisecond
	p := New(opts)
	pidFile := filepath.Join(t.TempDir(), "pid")
	inst := start(t, p, newRev("IGNORE_SIGTERM=1", "PID_FILE="+pidFile), nil)
	pid := readPID(t, pidFile)

	begin := time.Now()
	err := inst.Stop(t.Context())
	took := time.Since(begin)
	if err == nil || !strings.Contains(err.Error(), "did not exit within 300ms of SIGTERM") {
		t.Errorf("Stop = %v, want it to say the process was killed", err)
	}
	if took < opts.StopGrace || took > opts.StopGrace+5*time.Second {
		t.Errorf("Stop took %s, want a little over StopGrace (%s)", took, opts.StopGrace)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the process %d is still there after Stop: kill(pid, 0) = %v", pid, err)
	}
	<-inst.Done()
}

func TestStopTwiceAndConcurrentlyIsSafe(t *testing.T) {
	t.Parallel()
	p := New(testOptions())
	s := newStates()
	inst := start(t, p, newRev(), s.notify)

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- inst.Stop(t.Context()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Stop: %v", err)
		}
	}
	if err := inst.Stop(t.Context()); err != nil {
		t.Errorf("Stop again: %v", err)
	}
	if st := s.next(t); !st.Gone {
		t.Errorf("after Stop: %+v, want gone", st)
	}
	s.none(t)
}

func TestStreamsChunksAsTheProcessFlushesThem(t *testing.T) {
	t.Parallel()
	p := New(testOptions())
	inst := start(t, p, newRev(), nil)
	srv := httptest.NewServer(inst)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/stream?n=3&gate=rest")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	if err != nil || line != "chunk 0\n" {
		t.Fatalf("first chunk = %q, %v", line, err)
	}
	// The handler is still waiting to write the rest.
	if got := direct(t, inst, "/active"); got != "1" {
		t.Fatalf("handlers in progress after the first chunk = %s, want 1", got)
	}
	direct(t, inst, "/release?gate=rest")
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "chunk 1\nchunk 2\n" {
		t.Fatalf("the rest = %q, %v", rest, err)
	}
}

func TestRequestPastItsDeadlineGets504(t *testing.T) {
	t.Parallel()
	p := New(testOptions())
	inst := start(t, p, newRev(), nil)

	// A deadline set upstream (the gateway's).
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	w := serve(t, inst, httptest.NewRequestWithContext(ctx, http.MethodGet, "/slow?sleep=1m", nil))
	var e struct{ Error string }
	if w.Code != http.StatusGatewayTimeout || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, "deadline") {
		t.Errorf("past the request's deadline: %d %q, want 504 with a JSON error", w.Code, w.Body)
	}

	// The Revision's own timeout.
	rev := newRev()
	rev.Name = "hello-00002"
	rev.Spec.TimeoutSeconds = new(int64(1))
	inst2 := start(t, p, rev, nil)
	w = serve(t, inst2, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/slow?sleep=1m", nil))
	if w.Code != http.StatusGatewayTimeout || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, "timeoutSeconds") {
		t.Errorf("past the Revision's timeout: %d %q, want 504 with a JSON error", w.Code, w.Body)
	}
}

func TestClientGoneIsNotLoggedButAFailureIs(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	opts := testOptions()
	opts.Logger = bufferLogger(&logs)
	opts.LogSink = func(*api.Revision, string, string, string) {}
	p := New(opts)
	inst := start(t, p, newRev(), nil)

	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		inst.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/slow?gate=never", nil))
		served <- w.Code
	}()
	eventually(t, "the request to reach the process", func() bool { return direct(t, inst, "/active") == "1" })
	cancel()
	if code := <-served; code != http.StatusBadGateway {
		t.Errorf("a request whose client went away = %d, want 502", code)
	}
	if strings.Contains(logs.String(), "forwarding to the process failed") {
		t.Errorf("a client going away was logged as a failure:\n%s", logs.String())
	}

	if code, _ := get(t, inst, "/crash"); code != http.StatusBadGateway {
		t.Errorf("GET /crash = %d, want 502", code)
	}
	if !strings.Contains(logs.String(), "forwarding to the process failed") {
		t.Errorf("a process that did not answer was not logged:\n%s", logs.String())
	}
}

func TestForwardsHostAndXForwardedHeaders(t *testing.T) {
	t.Parallel()
	p := New(testOptions())
	inst := start(t, p, newRev(), nil)

	r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "http://hello.default.example.com/headers", nil)
	r.RemoteAddr = "203.0.113.7:5555"
	r.Header.Set("X-Forwarded-For", "198.51.100.1") // from the client: not trusted
	w := serve(t, inst, r)
	var h map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &h); err != nil {
		t.Fatalf("GET /headers = %d %q", w.Code, w.Body)
	}
	want := map[string]string{
		"Host":              "hello.default.example.com",
		"X-Forwarded-For":   "203.0.113.7",
		"X-Forwarded-Host":  "hello.default.example.com",
		"X-Forwarded-Proto": "http",
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("the process saw %s = %q, want %q", k, h[k], v)
		}
	}
}

func TestLogSinkGetsStdoutAndStderrLines(t *testing.T) {
	t.Parallel()
	type line struct{ rev, instance, stream, text string }
	var (
		mu    sync.Mutex
		lines []line
	)
	opts := testOptions()
	opts.LogSink = func(rev *api.Revision, instance, stream, text string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, line{rev.Name, instance, stream, text})
	}
	p := New(opts)
	inst := start(t, p, newRev(), nil)
	get(t, inst, "/print?stdout=to+stdout&stderr=to+stderr")

	for _, want := range []line{
		{"hello-00001", inst.ID(), "stdout", "listening on 127.0.0.1:" + inst.target.Load().Port()},
		{"hello-00001", inst.ID(), "stdout", "to stdout"},
		{"hello-00001", inst.ID(), "stderr", "to stderr"},
	} {
		eventually(t, strconv.Quote(want.text)+" on "+want.stream, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Contains(lines, want)
		})
	}
}
