//go:build linux

package container

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/internal/testregistry"
	"github.com/wisp-faas/wisp/runtime/process"
)

func TestServesAContainerWithTheEnvContractAndStopsCleanly(t *testing.T) {
	t.Parallel()
	_, image, _ := startRegistry(t)
	p, logs := newProvider(t)
	rev := newRev(image, "OVERRIDE_ME=from-spec", "SPEC_VAR=from-spec")
	if err := p.Prepare(t.Context(), rev); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	begin := time.Now()
	inst, err := p.Start(t.Context(), rev, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("start to ready: %s", time.Since(begin))
	if !inst.Ready() {
		t.Fatal("Ready() = false after Start")
	}

	in := getInfo(t, inst)
	port, err := strconv.Atoi(in.Env["PORT"])
	if err != nil || port <= 0 {
		t.Errorf("PORT = %q, want the port wisp chose", in.Env["PORT"])
	}
	for k, want := range map[string]string{
		"K_SERVICE":       "hello",
		"K_CONFIGURATION": "hello",
		"K_REVISION":      "hello-00001",
		"IMAGE_VAR":       "from-image", // the image's env
		"OVERRIDE_ME":     "from-spec",  // the Revision's env wins over the image's
		"SPEC_VAR":        "from-spec",
		"PATH":            "/bin", // the image's, not the node's
		"HOME":            "/root",
	} {
		if got := in.Env[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if _, ok := in.Env[secretEnv]; ok {
		t.Errorf("the node's %s reached the container", secretEnv)
	}
	if want := []string{"/server", "from-image-cmd"}; !slices.Equal(in.Args, want) {
		t.Errorf("args = %q, want the image's Entrypoint and Cmd %q", in.Args, want)
	}
	if in.Cwd != "/app" || in.UID != 0 || in.PID != 1 || in.Hostname != inst.ID() {
		t.Errorf("cwd %q, uid %d, pid %d, hostname %q; want /app, 0, 1, %q", in.Cwd, in.UID, in.PID, in.Hostname, inst.ID())
	}
	for _, l := range []string{"stdout: server starting on port " + in.Env["PORT"], "stderr: server stderr works"} {
		if !logs.has(l) {
			t.Errorf("the log sink did not get %q; it got:\n%s", l, logs)
		}
	}

	ids := containers(t, p)
	if len(ids) != 1 || !slices.Equal(bundles(t, p), ids) {
		t.Fatalf("containers %q, bundles %q; want one of each, the same", ids, bundles(t, p))
	}
	if len(cgroupDirs(p, ids[0])) == 0 {
		t.Errorf("the container %s has no cgroup under /sys/fs/cgroup/*/%s", ids[0], p.opts.CgroupParent)
	}

	if err := inst.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	// runc forwarded SIGTERM: the server shut down by itself.
	if !logs.has("stdout: shutting down on terminated") || !logs.has("stdout: server stopped") {
		t.Errorf("the container did not get SIGTERM; its output:\n%s", logs)
	}
	if got := containers(t, p); len(got) != 0 {
		t.Errorf("runc still lists %q after Stop", got)
	}
	if got := bundles(t, p); len(got) != 0 {
		t.Errorf("bundles %q left after Stop", got)
	}
	if got := cgroupDirs(p, ids[0]); len(got) != 0 {
		t.Errorf("cgroups left after Stop: %q", got)
	}
}

func TestCommandAndArgsOverrideTheImage(t *testing.T) {
	t.Parallel()
	_, image, _ := startRegistry(t)
	p, _ := newProvider(t)
	for _, tc := range []struct {
		name          string
		command, args []string
		want          []string
	}{
		{"args replace Cmd", nil, []string{"a1", "a2"}, []string{"/server", "a1", "a2"}},
		{"command replaces Entrypoint and Cmd", []string{"/bin/srv"}, nil, []string{"/bin/srv"}},
		{"command looked up on the image's PATH, with args", []string{"srv", "c1"}, []string{"a1"}, []string{"srv", "c1", "a1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rev := newRev(image)
			rev.Name = "hello-" + strings.ReplaceAll(tc.name, " ", "-")[:10]
			rev.Spec.Container.Command, rev.Spec.Container.Args = tc.command, tc.args
			in := getInfo(t, start(t, p, rev, nil))
			if !slices.Equal(in.Args, tc.want) {
				t.Errorf("args = %q, want %q", in.Args, tc.want)
			}
		})
	}
}

func TestContainerIsConfined(t *testing.T) {
	t.Parallel()
	registry, image, _ := startRegistry(t)
	p, _ := newProvider(t)
	p.opts.MemoryLimit, p.opts.PidsLimit = 64<<20, 100
	inst := start(t, p, newRev(image), nil)

	for _, tc := range []struct{ path, want string }{
		{"/written-by-the-container", "read-only file system"},
		{"/app/x", "read-only file system"},
		{"/etc/hosts", "read-only file system"},
		{"/tmp/x", "written"}, // a tmpfs of its own
	} {
		if _, body := get(t, inst, "/write?path="+tc.path); !strings.Contains(body, tc.want) {
			t.Errorf("writing %s: %q, want %q", tc.path, body, tc.want)
		}
	}
	entries, err := os.ReadDir(p.opts.Dir + "/images/sha256")
	if err != nil || len(entries) != 1 {
		t.Fatalf("image cache: %v %v", entries, err)
	}
	if exists(filepath.Join(p.opts.Dir, "images/sha256", entries[0].Name(), "rootfs/written-by-the-container")) {
		t.Error("the container wrote into the cached rootfs")
	}

	// Its own PID namespace: it sees itself only.
	code, body := get(t, inst, "/pids")
	var pids []string
	if code != http.StatusOK || json.Unmarshal([]byte(body), &pids) != nil {
		t.Fatalf("GET /pids = %d %q", code, body)
	}
	if !slices.Equal(pids, []string{"1"}) {
		t.Errorf("the container sees the processes %q, want only itself (1)", pids)
	}
	// The seccomp filter refuses new namespaces.
	if _, body := get(t, inst, "/unshare"); !strings.Contains(body, "operation not permitted") {
		t.Errorf("unshare(CLONE_NEWUSER) in the container: %q, want EPERM", body)
	}

	// No new privileges, the seccomp filter, and the reduced capability
	// set (Docker's less NET_RAW, MKNOD and NET_BIND_SERVICE).
	status := procStatus(t, inst)
	if want := capMask(defaultCaps); status["CapEff"] != want || status["CapBnd"] != want {
		t.Errorf("CapEff %s, CapBnd %s; want %s", status["CapEff"], status["CapBnd"], want)
	}
	if status["NoNewPrivs"] != "1" || status["Seccomp"] != "2" {
		t.Errorf("NoNewPrivs %s, Seccomp %s; want 1 and 2 (filter)", status["NoNewPrivs"], status["Seccomp"])
	}
	// Its cgroup has the limits.
	id, read := containers(t, p)[0], 0
	for file, want := range map[string]string{
		"memory/" + p.opts.CgroupParent + "/" + id + "/memory.limit_in_bytes": "67108864",
		"pids/" + p.opts.CgroupParent + "/" + id + "/pids.max":                "100",
		p.opts.CgroupParent + "/" + id + "/memory.max":                        "67108864", // cgroup v2
	} {
		b, err := os.ReadFile("/sys/fs/cgroup/" + file)
		if err != nil {
			continue // the other cgroup version
		}
		read++
		if strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %s, want %s", file, b, want)
		}
	}
	if read == 0 {
		t.Errorf("found no cgroup limit file of the container %s", id)
	}

	// The image's user, by name, with its groups from the image.
	_, userImage := push(t, registry, "wisp/hello:user", testImage(t, v1.Config{User: "app"}))
	rev := newRev(userImage)
	rev.Name = "hello-00002"
	userInst := start(t, p, rev, nil)
	in := getInfo(t, userInst)
	if in.UID != 1000 || in.GID != 1000 || in.Env["HOME"] != "/home/app" {
		t.Errorf("uid %d gid %d HOME %q, want the image's user app: 1000, 1000, /home/app", in.UID, in.GID, in.Env["HOME"])
	}
	status = procStatus(t, userInst)
	if status["CapEff"] != "0000000000000000" || status["Groups"] != "2000" {
		t.Errorf("a non-root user has CapEff %s and Groups %q, want none and 2000 (extra, from /etc/group)", status["CapEff"], status["Groups"])
	}
}

func TestRestartsACrashedContainer(t *testing.T) {
	t.Parallel()
	_, image, _ := startRegistry(t)
	p, _ := newProvider(t)
	s := newStates()
	inst := start(t, p, newRev(image), s.notify)
	first := containers(t, p)

	if code, _ := get(t, inst, "/crash"); code != http.StatusBadGateway {
		t.Errorf("GET /crash = %d, want 502", code)
	}
	down := s.next(t)
	if down.Ready || down.Restarts != 1 || !strings.Contains(down.Reason, "exited with status 1: crash requested") {
		t.Fatalf("after the crash: %+v, want not ready, 1 restart and the exit and last line", down)
	}
	if up := s.next(t); !up.Ready || up.Restarts != 1 {
		t.Fatalf("after the restart: %+v, want ready", up)
	}
	if code, _ := get(t, inst, "/"); code != http.StatusOK {
		t.Fatalf("GET / after the restart = %d", code)
	}
	// The crashed container is gone; a new one runs.
	now := containers(t, p)
	if len(now) != 1 || slices.Equal(now, first) || !slices.Equal(bundles(t, p), now) {
		t.Errorf("containers before the crash %q, after %q, bundles %q; want one new container", first, now, bundles(t, p))
	}
}

func TestPrepareReusesTheUnpackedImageWithoutTheRegistry(t *testing.T) {
	t.Parallel()
	var tagged, pinned string
	p, _ := newProvider(t)
	t.Run("with the registry", func(t *testing.T) {
		_, tagged, pinned = startRegistry(t) // stopped when this subtest ends
		if err := p.Prepare(t.Context(), newRev(tagged)); err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		if got, err := p.Resolve(t.Context(), tagged); err != nil || got != pinned {
			t.Errorf("Resolve(%s) = %q, %v; want %q", tagged, got, err, pinned)
		}
	})
	if got, err := p.Resolve(t.Context(), pinned); err != nil || got != pinned {
		t.Errorf("Resolve(%s) without the registry = %q, %v", pinned, got, err)
	}
	dirs, _ := filepath.Glob(filepath.Join(p.opts.Dir, "images/sha256/*/rootfs"))
	if len(dirs) != 1 {
		t.Fatalf("unpacked images: %q, want 1", dirs)
	}
	marker := filepath.Join(dirs[0], "etc/marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	// By digest: from the cache, the registry being gone.
	rev := newRev(pinned)
	rev.Name = "hello-00002"
	if err := p.Prepare(t.Context(), rev); err != nil {
		t.Fatalf("Prepare by digest without the registry: %v", err)
	}
	if !exists(marker) {
		t.Error("the image was unpacked again")
	}
	// A fresh provider on the same directory (the node restarted) finds
	// it too.
	p2 := New(Options{Dir: p.opts.Dir})
	if err := p2.Prepare(t.Context(), rev); err != nil {
		t.Errorf("Prepare by digest in a new provider: %v", err)
	}
	if code, _ := get(t, start(t, p2, rev, nil), "/"); code != http.StatusOK {
		t.Errorf("GET / = %d", code)
	}

	// By tag, the registry must say which digest the tag is.
	err := p.Prepare(t.Context(), newRev(tagged))
	if err == nil || !strings.Contains(err.Error(), tagged) || !strings.Contains(err.Error(), "not reachable") {
		t.Errorf("Prepare by tag without the registry = %v, want it to name the image and say the registry is not reachable", err)
	}
}

func TestPrepareErrorsSayWhatIsWrong(t *testing.T) {
	t.Parallel()
	registry := testregistry.Start(t)
	p, _ := newProvider(t)
	missing := registry + "/wisp/nope:v1"
	err := p.Prepare(t.Context(), newRev(missing))
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Prepare of a missing image = %v, want it to name the image and say it is not found", err)
	}

	err = p.Prepare(t.Context(), newRev("Not A Reference"))
	if err == nil || !strings.Contains(err.Error(), "not a valid reference") {
		t.Errorf("Prepare of a bad reference = %v", err)
	}

	rev := newRev("x")
	rev.Spec.Container = nil
	rev.Spec.Process = &api.ProcessSource{Command: "/bin/true"}
	if err := p.Prepare(t.Context(), rev); err == nil || !strings.Contains(err.Error(), "no container source") {
		t.Errorf("Prepare of a process = %v", err)
	}

	noRunc := New(Options{Dir: t.TempDir(), Runc: "/nonexistent/runc"})
	err = noRunc.Prepare(t.Context(), newRev(missing))
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y runc") {
		t.Errorf("Prepare without runc = %v, want the install hint", err)
	}

	_, noCmd := push(t, registry, "wisp/nocmd:v1", testImage(t, v1.Config{Entrypoint: []string{}, Cmd: []string{}}))
	err = p.Prepare(t.Context(), newRev(noCmd))
	if err == nil || !strings.Contains(err.Error(), "no Entrypoint or Cmd; set spec.container.command") {
		t.Errorf("Prepare of an image without a command = %v", err)
	}
}

func TestStartFailsWithTheContainersError(t *testing.T) {
	t.Parallel()
	_, image, _ := startRegistry(t)
	p, _ := newProvider(t)
	rev := newRev(image)
	rev.Spec.Container.Command = []string{"/no/such/program"}
	if err := p.Prepare(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
	_, err := p.Start(t.Context(), rev, nil)
	if err == nil {
		t.Fatal("Start succeeded")
	}
	for _, w := range []string{"revision hello-00001", "container " + image, "before becoming ready", "/no/such/program"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if got := containers(t, p); len(got) != 0 {
		t.Errorf("runc lists %q after a failed Start", got)
	}
	if got := bundles(t, p); len(got) != 0 {
		t.Errorf("bundles %q left after a failed Start", got)
	}
}

func TestStopKillsAContainerThatIgnoresSIGTERM(t *testing.T) {
	t.Parallel()
	_, image, _ := startRegistry(t)
	l := &logs{}
	p := New(Options{Dir: t.TempDir(), Process: process.Options{StopGrace: 300 * time.Millisecond, LogSink: l.sink}})
	inst := start(t, p, newRev(image, "IGNORE_SIGTERM=1"), nil)
	ids := containers(t, p)

	err := inst.Stop(t.Context())
	if err == nil || !strings.Contains(err.Error(), "did not exit within 300ms of SIGTERM") {
		t.Errorf("Stop = %v, want it to say the container was killed", err)
	}
	if !l.has("stdout: ignoring terminated") {
		t.Errorf("the container did not get SIGTERM; its output:\n%s", l)
	}
	if got := containers(t, p); len(got) != 0 {
		t.Errorf("runc still lists %q after Stop", got)
	}
	if got := bundles(t, p); len(got) != 0 {
		t.Errorf("bundles %q left after Stop", got)
	}
	if got := cgroupDirs(p, ids[0]); len(got) != 0 {
		t.Errorf("cgroups left after Stop: %q", got)
	}
}

func TestPrepareDeletesContainersLeftByAPreviousRun(t *testing.T) {
	t.Parallel()
	_, image, _ := startRegistry(t)
	p, _ := newProvider(t)
	rev := newRev(image)
	if err := p.Prepare(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
	// A node killed with SIGKILL: its runc dies of the parent-death
	// signal, and the container, in a session of its own, outlives it.
	port := freePort(t)
	cmd, err := launcher{p}.Command(rev, "orphan", port, []string{"PORT=" + strconv.Itoa(port)})
	if err != nil {
		t.Fatal(err)
	}
	runc := exec.Command(cmd.Path, cmd.Args[1:]...)
	if err := runc.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the container to answer", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	_ = runc.Process.Kill()
	_ = runc.Wait()
	ids := containers(t, p)
	if len(ids) != 1 {
		t.Fatalf("containers after runc was killed: %q, want the orphan", ids)
	}

	// The next run of the node deletes it.
	p2 := New(Options{Dir: p.opts.Dir})
	if err := p2.Prepare(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
	if got := containers(t, p2); len(got) != 0 {
		t.Errorf("runc still lists %q", got)
	}
	if got := bundles(t, p2); len(got) != 0 {
		t.Errorf("bundles %q left", got)
	}
	if got := cgroupDirs(p2, ids[0]); len(got) != 0 {
		t.Errorf("cgroups left: %q", got)
	}
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// procStatus returns the fields of /proc/self/status in the container.
func procStatus(t testing.TB, h http.Handler) map[string]string {
	t.Helper()
	code, body := get(t, h, "/read?path=/proc/self/status")
	if code != http.StatusOK {
		t.Fatalf("reading /proc/self/status: %d %q", code, body)
	}
	m := map[string]string{}
	for _, l := range strings.Split(body, "\n") {
		k, v, _ := strings.Cut(l, ":")
		m[k] = strings.TrimSpace(v)
	}
	return m
}

// capMask is the mask /proc/<pid>/status shows for the capabilities.
func capMask(caps []string) string {
	bits := map[string]uint{
		"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
		"CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13,
		"CAP_SYS_CHROOT": 18, "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29, "CAP_SETFCAP": 31,
	}
	var m uint64
	for _, c := range caps {
		m |= 1 << bits[c]
	}
	return fmt.Sprintf("%016x", m)
}
