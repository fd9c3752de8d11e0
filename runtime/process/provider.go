package process

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/runtime"
)

// Defaults for the zero values of Options.
const (
	defaultReadyTimeout      = 30 * time.Second
	defaultProbeInterval     = 25 * time.Millisecond
	defaultStopGrace         = 10 * time.Second
	defaultRestartBackoff    = 100 * time.Millisecond
	defaultMaxRestartBackoff = 30 * time.Second
	defaultRestartResetAfter = 60 * time.Second
)

// defaultPath is the PATH given to processes when the node has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// nodeEnv lists the only variables of the node's environment that a
// process inherits. See RATIONALE.md.
var nodeEnv = [...]string{"PATH", "HOME", "LANG", "TZ"}

// Options configures a Provider. The zero value is usable.
type Options struct {
	// Logger receives the provider's logs and, unless LogSink is set, the
	// processes' output. Nil discards both.
	Logger *slog.Logger

	// ReadyTimeout is how long a started process has to answer its first
	// readiness probe before it is killed. Zero means 30s.
	ReadyTimeout time.Duration

	// ProbeInterval is the longest wait between two readiness probes.
	// The first probes come sooner (1ms, then doubling) because most
	// servers listen within a few milliseconds. Zero means 25ms.
	ProbeInterval time.Duration

	// StopGrace is how long Stop waits after SIGTERM before it sends
	// SIGKILL to the process group. Zero means 10s.
	StopGrace time.Duration

	// RestartBackoff is the wait before restarting a process that crashed
	// after it was ready. It doubles with every further crash up to
	// MaxRestartBackoff, and starts again from RestartBackoff once a
	// process stayed up for RestartResetAfter. Zero means 100ms.
	RestartBackoff time.Duration

	// MaxRestartBackoff caps RestartBackoff's doubling. Zero means 30s.
	MaxRestartBackoff time.Duration

	// RestartResetAfter is how long a process must stay up for its next
	// crash to be treated as the first. Zero means 60s.
	RestartResetAfter time.Duration

	// LogSink, when set, receives every line the processes write: stream
	// is "stdout" or "stderr". It is called from one goroutine per stream
	// and must not block for long, or the process blocks writing. Nil
	// logs each line at Info on Logger with the attributes function,
	// revision, instance and stream.
	LogSink func(rev *api.Revision, instanceID, stream, line string)

	// Launcher, when set, runs what it returns for every instance in
	// place of spec.process. See Launcher.
	Launcher Launcher
}

// Provider runs Revisions whose source is an executable on the node. It
// implements runtime.Provider and is safe for concurrent use.
type Provider struct {
	opts    Options
	baseEnv []string

	// transport carries proxied requests of all instances; probes use
	// their own client without keep-alive.
	transport *http.Transport
	// buffers are the proxies' copy buffers: without them every response
	// allocates (and the GC clears and scans) 32 KiB.
	buffers  *bufferPool
	probes   *http.Client
	errorLog *log.Logger

	seq atomic.Uint64 // instance IDs

	mu       sync.Mutex
	commands map[string]string // "namespace/name" → resolved executable
}

var _ runtime.Provider = (*Provider)(nil)

// New returns a Provider configured by opts. It reads PATH, HOME, LANG and
// TZ from the node's environment once, here.
func New(opts Options) *Provider {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&opts.ReadyTimeout, defaultReadyTimeout)
	setDefault(&opts.ProbeInterval, defaultProbeInterval)
	setDefault(&opts.StopGrace, defaultStopGrace)
	setDefault(&opts.RestartBackoff, defaultRestartBackoff)
	setDefault(&opts.MaxRestartBackoff, defaultMaxRestartBackoff)
	setDefault(&opts.RestartResetAfter, defaultRestartResetAfter)
	opts.MaxRestartBackoff = max(opts.MaxRestartBackoff, opts.RestartBackoff)

	var env []string
	for _, k := range nodeEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		} else if k == "PATH" {
			env = append(env, k+"="+defaultPath)
		}
	}

	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &Provider{
		opts:    opts,
		baseEnv: env,
		transport: &http.Transport{
			Proxy:                 nil, // loopback only: never through an HTTP proxy
			DialContext:           dialer.DialContext,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true, // pass Accept-Encoding and bodies through untouched
		},
		probes: &http.Client{
			Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, DialContext: dialer.DialContext},
			// A redirect is an answer; do not follow it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		errorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		buffers:  newBufferPool(32 << 10),
		commands: make(map[string]string),
	}
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Prepare checks that rev's command exists on the node and is an
// executable regular file, and remembers where it is. A bare name (no
// slash) is looked up on the node's PATH; a relative path is taken
// relative to the working directory, which must then be set.
//
// With Options.Launcher set, Prepare checks nothing: the Launcher's owner
// prepares the Revision's source.
func (p *Provider) Prepare(ctx context.Context, rev *api.Revision) error {
	if p.opts.Launcher != nil {
		return nil
	}
	path, err := resolveCommand(rev)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.commands[revKey(rev)] = path
	p.mu.Unlock()
	return nil
}

// Release forgets what Prepare kept for rev.
func (p *Provider) Release(rev *api.Revision) {
	p.mu.Lock()
	delete(p.commands, revKey(rev))
	p.mu.Unlock()
}

// Start starts a process for rev on a free port of 127.0.0.1 and returns
// once it answers the readiness probe. The process is killed if it does
// not within Options.ReadyTimeout, or when ctx ends first; ctx bounds only
// the start, not the life of the instance.
//
// The returned Instance restarts the process with backoff whenever it
// exits, reporting through notify, until Stop is called.
func (p *Provider) Start(ctx context.Context, rev *api.Revision, notify func(runtime.State)) (runtime.Instance, error) {
	p.mu.Lock()
	path, ok := p.commands[revKey(rev)]
	p.mu.Unlock()
	if p.opts.Launcher != nil {
		ok = true // the Launcher says what runs, at each start
	}
	if !ok { // Start without Prepare, or after Release.
		var err error
		if path, err = resolveCommand(rev); err != nil {
			return nil, err
		}
	}
	i := p.newInstance(rev, path, notify)
	begin := time.Now()
	c, err := i.launch(ctx)
	if err != nil {
		i.stopCancel()
		if l := p.opts.Launcher; l != nil {
			return nil, fmt.Errorf("revision %s: %s: %w", rev.Name, l.Describe(rev), err)
		}
		return nil, fmt.Errorf("revision %s: process %s: %w", rev.Name, rev.Spec.Process.Command, err)
	}
	i.log.Info("instance ready", "port", c.port, "pid", c.pid, "startup", time.Since(begin))
	i.setReady(c)
	go i.supervise(c)
	return i, nil
}

func revKey(rev *api.Revision) string { return rev.Namespace + "/" + rev.Name }

// resolveCommand returns the path of rev's executable, or an error that
// says what is wrong with it.
func resolveCommand(rev *api.Revision) (string, error) {
	src := rev.Spec.Process
	if src == nil {
		return "", fmt.Errorf("revision %s has no process source (spec.process); the process runtime runs only executables", rev.Name)
	}
	const hint = "give an absolute path to an executable on the node"
	cmd := src.Command
	if cmd == "" {
		return "", fmt.Errorf("process.command is empty; %s", hint)
	}
	if dir := src.WorkingDir; dir != "" {
		fi, err := os.Stat(dir)
		switch {
		case !filepath.IsAbs(dir):
			return "", fmt.Errorf("process.workingDir %s: not an absolute path; give an absolute directory on the node", dir)
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("process.workingDir %s: no such directory; give an existing directory on the node", dir)
		case err != nil:
			return "", fmt.Errorf("process.workingDir %s: %w", dir, unwrapPath(err))
		case !fi.IsDir():
			return "", fmt.Errorf("process.workingDir %s: not a directory", dir)
		}
	}

	path, name := cmd, cmd
	switch {
	case filepath.IsAbs(cmd):
	case !strings.Contains(cmd, "/"):
		found, err := exec.LookPath(cmd)
		if err != nil {
			return "", fmt.Errorf("process.command %s: not found on the node's PATH; %s", cmd, hint)
		}
		if path, err = filepath.Abs(found); err != nil {
			return "", fmt.Errorf("process.command %s: %w", cmd, err)
		}
		name = cmd + " (" + path + ")"
	case src.WorkingDir == "":
		return "", fmt.Errorf("process.command %s: a relative path needs process.workingDir; %s", cmd, hint)
	default:
		path = filepath.Join(src.WorkingDir, cmd)
		name = cmd + " (" + path + ")"
	}

	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("process.command %s: no such file; %s", name, hint)
	case err != nil:
		return "", fmt.Errorf("process.command %s: %w; %s", name, unwrapPath(err), hint)
	case fi.IsDir():
		return "", fmt.Errorf("process.command %s: is a directory; %s", name, hint)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("process.command %s: not a regular file (%s); %s", name, fi.Mode().Type(), hint)
	case fi.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("process.command %s: not executable (mode %s); make it executable (chmod +x) or %s", name, fi.Mode().Perm(), hint)
	}
	if err := checkExecutable(path); err != nil {
		return "", fmt.Errorf("process.command %s: %w", name, err)
	}
	return path, nil
}

// unwrapPath drops the path from a *fs.PathError, which the caller's
// message already names.
func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// environ returns the environment of a process of rev listening on port:
// the node's PATH, HOME, LANG and TZ, then the Revision's env, then the
// runtime contract's variables, each later one overriding an earlier one.
func (p *Provider) environ(rev *api.Revision, port int) []string {
	return contractEnv(p.baseEnv, rev, port)
}

// contractEnv returns base, then rev's env, then the runtime contract's
// variables for a process listening on port, each later one overriding
// an earlier one.
func contractEnv(base []string, rev *api.Revision, port int) []string {
	env := make([]string, 0, len(base)+len(rev.Spec.Env)+4)
	at := make(map[string]int, cap(env))
	set := func(k, v string) {
		if k == "" {
			return
		}
		if i, ok := at[k]; ok {
			env[i] = k + "=" + v
			return
		}
		at[k] = len(env)
		env = append(env, k+"="+v)
	}
	for _, kv := range base {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	for _, e := range rev.Spec.Env {
		set(e.Name, e.Value)
	}
	fn := functionName(rev)
	set("PORT", strconv.Itoa(port))
	set("K_SERVICE", fn)
	set("K_CONFIGURATION", fn)
	set("K_REVISION", rev.Name)
	return env
}

// functionName is the name of rev's Function, or rev's own name when the
// label is missing.
func functionName(rev *api.Revision) string {
	if fn := rev.Labels[api.LabelFunction]; fn != "" {
		return fn
	}
	return rev.Name
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
	}
	return port, nil
}

// bufferPool is an httputil.BufferPool of fixed-size buffers.
type bufferPool struct{ p sync.Pool }

func newBufferPool(size int) *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, size); return &b }}}
}

// Get returns a buffer for one copy.
func (b *bufferPool) Get() []byte { return *b.p.Get().(*[]byte) }

// Put returns a buffer Get gave.
func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
