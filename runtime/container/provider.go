package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/runtime"
	"github.com/wisp-faas/wisp/runtime/process"
)

// Defaults for the zero values of Options.
const (
	defaultRunc         = "runc"
	defaultCgroupParent = "wisp"
	defaultTmpSize      = 128 << 20
)

// defaultPath is the PATH of a container whose image sets none, as
// under Docker and containerd.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// deleteTimeout bounds one `runc delete --force`, which kills the
// container's processes and waits for them.
const deleteTimeout = 30 * time.Second

// installHint is how to get runc on Debian and Ubuntu.
const installHint = "install runc: apt-get install -y runc"

// Options configures a Provider.
type Options struct {
	// Dir holds the provider's files: unpacked images
	// (images/sha256/<hex>/rootfs), one bundle per running container
	// (bundles/) and runc's state (runc/). Required; typically
	// <data dir>/containers.
	Dir string

	// Runc is the runc executable, a path or a name looked up on PATH.
	// Empty means "runc".
	Runc string

	// InsecureRegistries are registries (host or host:port) pulled from
	// over plain HTTP. Registries on the loopback always are.
	InsecureRegistries []string

	// Keychain gives the credentials for a registry. Nil means
	// authn.DefaultKeychain: the Docker config (~/.docker/config.json,
	// $DOCKER_CONFIG) and its credential helpers.
	Keychain authn.Keychain

	// CgroupParent is the cgroup under which every container gets its
	// own, in each hierarchy. Empty means "wisp".
	CgroupParent string

	// MemoryLimit, when positive, is the most memory (and memory plus
	// swap) a container may use, in bytes; the kernel kills it beyond.
	MemoryLimit int64

	// PidsLimit, when positive, is the most processes and threads a
	// container may have.
	PidsLimit int64

	// TmpSize bounds the container's /tmp, a tmpfs, in bytes. Zero means
	// 128 MiB.
	TmpSize int64

	// Process configures what runs the containers: timeouts, restarts,
	// logging (Logger) and where their output goes (LogSink). Its
	// Launcher is set by New.
	Process process.Options
}

// Provider runs Revisions whose source is an OCI image
// (spec.container) under runc. It implements runtime.Provider and is safe
// for concurrent use.
type Provider struct {
	opts Options
	log  *slog.Logger
	proc *process.Provider
	seq  atomic.Uint64 // container IDs

	// token makes the container IDs, and so the cgroups, of this
	// Provider differ from those of any other on the node.
	token string

	// nofile is the containers' limit of open files: the node's hard
	// limit, at most maxNofile.
	nofile uint64

	mu       sync.Mutex
	prepared map[string]*prepared // "namespace/name" → how to run it
	pulls    map[string]*pull     // digest → pull in progress
	runc     string               // resolved runc, once checked
	swept    bool
}

var _ runtime.Provider = (*Provider)(nil)

// prepared is what Start needs of a prepared Revision.
type prepared struct {
	img  *image
	args []string
	env  []string // the image's, before the Revision's
	cwd  string
	user user
}

// New returns a Provider configured by opts. It checks nothing: Prepare
// says what is missing.
func New(opts Options) *Provider {
	if opts.Dir != "" {
		if abs, err := filepath.Abs(opts.Dir); err == nil {
			opts.Dir = abs // the bundles name the rootfs by its absolute path
		}
	}
	if opts.Runc == "" {
		opts.Runc = defaultRunc
	}
	if opts.CgroupParent == "" {
		opts.CgroupParent = defaultCgroupParent
	}
	opts.CgroupParent = strings.Trim(opts.CgroupParent, "/")
	if opts.TmpSize <= 0 {
		opts.TmpSize = defaultTmpSize
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Process.Logger == nil {
		opts.Process.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Provider{
		opts:     opts,
		nofile:   nofileLimit(),
		token:    randomToken(),
		log:      opts.Process.Logger.With("runtime", "container"),
		prepared: make(map[string]*prepared),
		pulls:    make(map[string]*pull),
	}
	popts := opts.Process
	popts.Launcher = launcher{p}
	p.proc = process.New(popts)
	return p
}

// Prepare pulls rev's image, unless the cache has its digest already,
// unpacks it once per digest and works out how to run it: the command
// (spec.container.command overrides the image's Entrypoint, args its
// Cmd, as in Kubernetes), the user and the environment. It fails when
// runc is missing or wisp is not root.
func (p *Provider) Prepare(ctx context.Context, rev *api.Revision) error {
	src := rev.Spec.Container
	if src == nil {
		return fmt.Errorf("revision %s has no container source (spec.container); the container runtime runs only OCI images", rev.Name)
	}
	if p.opts.Dir == "" {
		return errors.New("the container runtime has no directory for its images (container.Options.Dir is empty)")
	}
	if err := p.checkHost(); err != nil {
		return err
	}
	img, err := p.image(ctx, src.Image)
	if err != nil {
		return err
	}
	prep, err := plan(img, src)
	if err != nil {
		return fmt.Errorf("revision %s: image %s: %w", rev.Name, src.Image, err)
	}
	p.mu.Lock()
	p.prepared[revKey(rev)] = prep
	p.mu.Unlock()
	p.log.Info("image ready", "revision", rev.Name, "image", src.Image, "digest", img.digest)
	return nil
}

// plan works out how to run img for src, Knative's way: command replaces
// the Entrypoint (and drops the image's Cmd), args replace the Cmd.
func plan(img *image, src *api.ContainerSource) (*prepared, error) {
	cfg := img.config
	var args []string
	switch {
	case len(src.Command) > 0:
		args = append(append(args, src.Command...), src.Args...)
	case len(src.Args) > 0:
		args = append(append(args, cfg.Entrypoint...), src.Args...)
	default:
		args = append(append(args, cfg.Entrypoint...), cfg.Cmd...)
	}
	if len(args) == 0 || args[0] == "" {
		return nil, errors.New("the image has no Entrypoint or Cmd; set spec.container.command")
	}
	u, err := resolveUser(img.rootfs, cfg.User)
	if err != nil {
		return nil, err
	}
	cwd := path.Clean("/" + cfg.WorkingDir) // OCI wants it absolute; Docker takes it from /
	return &prepared{img: img, args: args, env: cfg.Env, cwd: cwd, user: u}, nil
}

// Start starts a container of rev and returns once it accepts
// connections on $PORT; see process.Provider.Start for the rest: the
// instance restarts the container when it exits, and Stop ends it with
// SIGTERM, then SIGKILL.
func (p *Provider) Start(ctx context.Context, rev *api.Revision, notify func(runtime.State)) (runtime.Instance, error) {
	p.mu.Lock()
	_, ok := p.prepared[revKey(rev)]
	p.mu.Unlock()
	if !ok { // Start without Prepare, or after Release.
		if err := p.Prepare(ctx, rev); err != nil {
			return nil, err
		}
	}
	return p.proc.Start(ctx, rev, notify)
}

// Release forgets what Prepare worked out for rev. The unpacked image
// stays in the cache.
func (p *Provider) Release(rev *api.Revision) {
	p.mu.Lock()
	delete(p.prepared, revKey(rev))
	p.mu.Unlock()
}

// maxNofile is the most open files a container may have, Docker's
// default.
const maxNofile = 1 << 20

// nofileLimit is the node's hard limit of open files, at most maxNofile:
// raising it needs CAP_SYS_RESOURCE, which the node may not have.
func nofileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Max == 0 {
		return 1024
	}
	return min(l.Max, maxNofile)
}

func revKey(rev *api.Revision) string { return rev.Namespace + "/" + rev.Name }

// checkHost finds runc and checks that wisp runs as root, once it
// succeeded; then it removes what a previous run of the node left
// behind.
func (p *Provider) checkHost() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runc != "" {
		return nil
	}
	path, err := exec.LookPath(p.opts.Runc)
	if err != nil {
		return fmt.Errorf("running containers needs runc, and %q was not found: %s", p.opts.Runc, installHint)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("running containers needs root: runc makes namespaces and cgroups, and rootless runc is not supported; run wisp as root (it runs as uid %d)", os.Geteuid())
	}
	p.runc = path
	if !p.swept {
		p.swept = true
		p.sweep()
	}
	return nil
}

// runcRoot is runc's state directory: containers there are wisp's.
func (p *Provider) runcRoot() string { return filepath.Join(p.opts.Dir, "runc") }

// bundles holds one bundle directory per container.
func (p *Provider) bundles() string { return filepath.Join(p.opts.Dir, "bundles") }

// sweep deletes the containers and bundles that a previous run of the
// node left behind (it was killed; its containers outlived runc), and
// half-unpacked images.
func (p *Provider) sweep() {
	if entries, err := os.ReadDir(p.runcRoot()); err == nil {
		for _, e := range entries {
			p.log.Warn("deleting a container left by a previous run", "container", e.Name())
			p.deleteContainer(e.Name())
		}
	}
	if entries, err := os.ReadDir(p.bundles()); err == nil {
		for _, e := range entries {
			_ = os.RemoveAll(filepath.Join(p.bundles(), e.Name()))
		}
	}
	images := filepath.Join(p.opts.Dir, "images")
	if entries, err := os.ReadDir(images); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "tmp-") {
				_ = os.RemoveAll(filepath.Join(images, e.Name()))
			}
		}
	}
}

// deleteContainer kills and deletes the container id, with its cgroups.
func (p *Provider) deleteContainer(id string) {
	defer p.removeCgroups(id)
	if _, err := os.Stat(filepath.Join(p.runcRoot(), id)); err != nil {
		return // runc deleted it when it exited
	}
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, p.runc, "--root", p.runcRoot(), "delete", "--force", id).CombinedOutput()
	if err != nil {
		p.log.Warn("runc delete failed", "container", id, "error", err, "output", strings.TrimSpace(string(out)))
	}
}

// removeCgroups removes the cgroups of the container id that runc left
// behind, which it does when it cannot remove one and gives up (it logs
// "Failed to remove paths"). They are empty by now: the container's
// processes are gone.
func (p *Provider) removeCgroups(id string) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", p.opts.CgroupParent, id))
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", p.opts.CgroupParent, id)) // cgroup v2
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			p.log.Warn("removing a container's cgroup failed", "container", id, "cgroup", d, "error", err)
		}
	}
}

// randomToken returns 6 random hexadecimal digits.
func randomToken() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// launcher has the process provider run `runc run` for containers.
type launcher struct{ p *Provider }

func (l launcher) Describe(rev *api.Revision) string {
	return "container " + rev.Spec.Container.Image
}

// Command writes a bundle for one container of rev and returns `runc
// run` for it, in the foreground: runc forwards the signals it gets to
// the container and exits with its status, and its stdout and stderr are
// the container's.
func (l launcher) Command(rev *api.Revision, instanceID string, port int, env []string) (*process.Cmd, error) {
	p := l.p
	p.mu.Lock()
	prep, ok := p.prepared[revKey(rev)]
	runc := p.runc
	p.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("revision %s was released; prepare it again", rev.Name)
	}
	id := instanceID + "-" + p.token + strconv.FormatUint(p.seq.Add(1), 10)
	bundle := filepath.Join(p.bundles(), id)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return nil, fmt.Errorf("making the bundle: %w", err)
	}
	spec, err := p.spec(prep, id, instanceID, bundle, env)
	if err == nil {
		var b []byte
		if b, err = json.MarshalIndent(spec, "", "\t"); err == nil {
			err = os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600)
		}
	}
	if err != nil {
		_ = os.RemoveAll(bundle)
		return nil, fmt.Errorf("writing the bundle: %w", err)
	}
	return &process.Cmd{
		Path: runc,
		Args: []string{"runc", "--root", p.runcRoot(), "run", "--bundle", bundle, id},
		Cleanup: func() {
			p.deleteContainer(id)
			if err := os.RemoveAll(bundle); err != nil {
				p.log.Warn("removing a bundle failed", "container", id, "error", err)
			}
		},
	}, nil
}

// spec is the OCI runtime configuration of the container id.
func (p *Provider) spec(prep *prepared, id, hostname, bundle string, env []string) (*ociSpec, error) {
	if len(hostname) > 63 {
		hostname = hostname[:63]
	}
	caps := ociCaps{Bounding: defaultCaps, Effective: defaultCaps, Permitted: defaultCaps, Inheritable: []string{}, Ambient: []string{}}
	if prep.user.uid != 0 {
		// Like an exec by a non-root user: Docker gives such a process
		// only the bounding set.
		caps.Effective, caps.Permitted = []string{}, []string{}
	}
	s := &ociSpec{
		Version: "1.0.2",
		Process: ociProcess{
			User:            ociUser{UID: prep.user.uid, GID: prep.user.gid, AdditionalGids: prep.user.additional},
			Args:            prep.args,
			Env:             containerEnv(prep, env),
			Cwd:             prep.cwd,
			Capabilities:    caps,
			Rlimits:         []ociRlimit{{Type: "RLIMIT_NOFILE", Hard: p.nofile, Soft: p.nofile}},
			NoNewPrivileges: true,
		},
		Root:     ociRoot{Path: prep.img.rootfs, Readonly: true},
		Hostname: hostname,
		Mounts: []ociMount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=" + strconv.FormatInt(p.opts.TmpSize>>10, 10) + "k"}},
		},
		Linux: ociLinux{
			// No network namespace: the container serves on the node's
			// 127.0.0.1:$PORT. See RATIONALE.md.
			Namespaces: []ociNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}},
			Resources: ociResources{
				Devices: []ociDeviceRule{{Allow: false, Access: "rwm"}}, // runc adds its default devices
			},
			CgroupsPath:   "/" + p.opts.CgroupParent + "/" + id,
			MaskedPaths:   maskedPaths,
			ReadonlyPaths: readonlyPaths,
			Seccomp:       seccompProfile(),
		},
	}
	if l := p.opts.MemoryLimit; l > 0 {
		s.Linux.Resources.Memory = &ociMemory{Limit: &l, Swap: &l}
	}
	if l := p.opts.PidsLimit; l > 0 {
		s.Linux.Resources.Pids = &ociPids{Limit: l}
	}

	// The node's name resolution, and a hosts file that knows the
	// container's hostname.
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		hosts = []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	}
	hosts = fmt.Appendf(hosts, "127.0.0.1\t%s\n", hostname)
	for name, content := range map[string][]byte{"hosts": hosts, "hostname": []byte(hostname + "\n")} {
		f := filepath.Join(bundle, name)
		if err := os.WriteFile(f, content, 0o644); err != nil {
			return nil, err
		}
		s.Mounts = append(s.Mounts, ociMount{Destination: "/etc/" + name, Type: "bind", Source: f, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
	}
	if _, err := os.Stat("/etc/resolv.conf"); err == nil {
		s.Mounts = append(s.Mounts, ociMount{Destination: "/etc/resolv.conf", Type: "bind", Source: "/etc/resolv.conf", Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
	}
	return s, nil
}

// containerEnv is the image's environment, then env (the Revision's,
// then the runtime contract's), each later variable overriding an
// earlier one; PATH and HOME get defaults when neither sets them.
func containerEnv(prep *prepared, env []string) []string {
	out := make([]string, 0, len(prep.env)+len(env)+2)
	at := make(map[string]int, cap(out))
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if k == "" {
			return
		}
		if i, ok := at[k]; ok {
			out[i] = kv
			return
		}
		at[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range prep.env {
		set(kv)
	}
	for _, kv := range env {
		set(kv)
	}
	if _, ok := at["PATH"]; !ok {
		set("PATH=" + defaultPath)
	}
	if _, ok := at["HOME"]; !ok {
		set("HOME=" + prep.user.home)
	}
	return out
}
