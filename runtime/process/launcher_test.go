//go:build unix

package process

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/wisp-faas/wisp/api"
)

// testLauncher runs the test server through the Launcher hook, as a
// container runtime would run runc.
type testLauncher struct {
	fail error

	mu       sync.Mutex
	commands int
	cleanups int
	env      []string // the env of the last Command
}

func (l *testLauncher) Describe(rev *api.Revision) string { return "test launcher for " + rev.Name }

func (l *testLauncher) Command(rev *api.Revision, instanceID string, port int, env []string) (*Cmd, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return nil, l.fail
	}
	l.commands++
	l.env = env
	return &Cmd{
		Path: serverBin,
		Args: []string{"launched"},
		Env:  append(env[:len(env):len(env)], "LAUNCHED="+instanceID),
		Cleanup: func() {
			l.mu.Lock()
			l.cleanups++
			l.mu.Unlock()
		},
	}, nil
}

func (l *testLauncher) counts() (commands, cleanups int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.commands, l.cleanups
}

// launchedRev is a Revision without spec.process, as a container's is.
func launchedRev(env ...string) *api.Revision {
	rev := newRev(env...)
	rev.Spec.Process = nil
	return rev
}

func TestLauncherRunsItsCommandWithTheContractEnv(t *testing.T) {
	t.Parallel()
	l := &testLauncher{}
	opts := testOptions()
	opts.Launcher = l
	p := New(opts)
	s := newStates()
	inst := start(t, p, launchedRev("SPEC_VAR=from-spec"), s.notify)

	code, body := get(t, inst, "/env")
	var env map[string]string
	if code != http.StatusOK || json.Unmarshal([]byte(body), &env) != nil {
		t.Fatalf("GET /env = %d %q", code, body)
	}
	for k, want := range map[string]string{"LAUNCHED": inst.ID(), "SPEC_VAR": "from-spec", "K_REVISION": "hello-00001", "K_SERVICE": "hello"} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	if env["PORT"] == "" || env["PORT"] != strings.TrimPrefix(inst.target.Load().Host, "127.0.0.1:") {
		t.Errorf("PORT = %q, want the port proxied to (%s)", env["PORT"], inst.target.Load().Host)
	}
	// The Launcher gets the function's env only, not the node's.
	l.mu.Lock()
	for _, kv := range l.env {
		if k, _, _ := strings.Cut(kv, "="); k == "PATH" || k == "HOME" || k == secretEnv {
			t.Errorf("the Launcher got the node's %s", k)
		}
	}
	l.mu.Unlock()

	// A crash: the program is cleaned up, then started again.
	get(t, inst, "/crash")
	if st := s.next(t); st.Ready {
		t.Fatalf("after the crash: %+v", st)
	}
	if st := s.next(t); !st.Ready {
		t.Fatalf("after the restart: %+v", st)
	}
	if c, u := l.counts(); c != 2 || u != 1 {
		t.Errorf("after a restart: %d commands, %d cleanups; want 2 and 1", c, u)
	}
	if err := inst.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c, u := l.counts(); c != 2 || u != 2 {
		t.Errorf("after Stop: %d commands, %d cleanups; want 2 and 2", c, u)
	}
}

func TestLauncherWithoutReadinessPathProbesTCP(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.Launcher = &testLauncher{}
	p := New(opts)
	// It answers 500 to everything: an HTTP probe would never pass.
	inst := start(t, p, launchedRev("UNHEALTHY=1"), nil)
	if !inst.Ready() {
		t.Fatal("not ready")
	}
}

func TestLauncherErrorsNameTheRevisionAndWhatRuns(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.Launcher = &testLauncher{fail: errors.New("no such image")}
	p := New(opts)
	rev := launchedRev()
	if err := p.Prepare(t.Context(), rev); err != nil {
		t.Fatalf("Prepare with a Launcher: %v", err)
	}
	_, err := p.Start(t.Context(), rev, nil)
	if err == nil || err.Error() != "revision hello-00001: test launcher for hello-00001: no such image" {
		t.Errorf("Start = %v", err)
	}
}
