package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// maxLine is the longest line passed to the log sink; longer lines
	// are split.
	maxLine = 64 << 10
	// tailLines is how many stderr lines are kept for error messages.
	tailLines = 20
	// maxTailLine bounds one kept stderr line.
	maxTailLine = 512
	// outputDrain bounds the wait for the output pipes to reach EOF after
	// the process exited (a detached descendant may hold them open).
	outputDrain = time.Second
	// probeTimeout bounds one readiness probe.
	probeTimeout = time.Second
)

// errReadyTimeout is the cause of awaitReady's context ending at
// Options.ReadyTimeout.
var errReadyTimeout = errors.New("ready timeout")

// earlyExit is the error of a process that exited before it answered.
type earlyExit struct {
	exit  string   // "exited with status 1"
	lines []string // the last lines of its stderr
}

func (e *earlyExit) Error() string {
	msg := e.exit + " before becoming ready"
	if len(e.lines) == 0 {
		return msg + " (it wrote nothing to stderr)"
	}
	return msg + ": " + strings.Join(e.lines, "\n")
}

// short is the exit and the last stderr line, for a State's Reason.
func (e *earlyExit) short() string {
	if len(e.lines) == 0 {
		return e.exit + " before becoming ready"
	}
	return e.exit + " before becoming ready: " + e.lines[len(e.lines)-1]
}

// portTaken reports whether the process said its address is in use: it
// probably lost the race for the port between freePort and binding it.
func (e *earlyExit) portTaken() bool {
	for _, l := range e.lines {
		if strings.Contains(l, "address already in use") {
			return true
		}
	}
	return false
}

// child is one OS process of an instance.
type child struct {
	cmd       *exec.Cmd
	pid       int
	port      int
	readiness string // the HTTP path probed; empty: a TCP probe
	started   time.Time
	stderr    *tail

	// exited is closed once the process was reaped, the rest of its
	// process group killed and its output read.
	exited chan struct{}
}

// launch starts a process and waits until it answers the readiness
// probe. On error the process has been killed and reaped. If the process
// exits saying its address is in use, launch tries once more on another
// port.
func (i *instance) launch(ctx context.Context) (*child, error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("not started: %w", context.Cause(ctx))
		}
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		c, err := i.spawn(port)
		if err != nil {
			return nil, err
		}
		err = i.awaitReady(ctx, c)
		if err == nil {
			return c, nil
		}
		if ee, ok := errors.AsType[*earlyExit](err); ok && ee.portTaken() && attempt == 0 {
			i.log.Warn("port taken before the process bound it; retrying on another port", "port", port, "error", err)
			continue
		}
		return nil, err
	}
}

// spawn starts the process listening on port, in a process group of its
// own, with its output going to the log sink.
func (i *instance) spawn(port int) (*child, error) {
	prog, err := i.program(port)
	if err != nil {
		return nil, err
	}
	cleanup := func() {
		if prog.Cleanup != nil {
			prog.Cleanup()
		}
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("creating stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		cleanup()
		return nil, fmt.Errorf("creating stderr pipe: %w", err)
	}
	cmd := &exec.Cmd{
		Path:        prog.Path,
		Args:        prog.Args,
		Dir:         prog.Dir,
		Env:         prog.Env,
		Stdout:      outW, // an *os.File goes to the child as is: Wait
		Stderr:      errW, // does not wait for the pipes to drain
		SysProcAttr: processGroupAttr(),
	}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		cleanup()
		return nil, fmt.Errorf("starting %s: %w", prog.Path, err)
	}
	c := &child{
		cmd:       cmd,
		pid:       cmd.Process.Pid,
		port:      port,
		readiness: prog.ReadinessPath,
		started:   time.Now(),
		stderr:    &tail{},
		exited:    make(chan struct{}),
	}
	var readers sync.WaitGroup
	readers.Go(func() { i.readLines(outR, "stdout", nil) })
	readers.Go(func() { i.readLines(errR, "stderr", c.stderr) })
	go func() {
		_ = cmd.Wait() // the status is in cmd.ProcessState
		killGroup(cmd.Process)
		cleanup() // may end what still holds the output pipes
		drained := make(chan struct{})
		go func() { readers.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(outputDrain):
			// Closing the read ends wakes the readers.
			outR.Close()
			errR.Close()
			<-drained
		}
		outR.Close()
		errR.Close()
		close(c.exited)
	}()
	return c, nil
}

// program returns what to run for a process listening on port: the
// Revision's executable, or what the Launcher says.
func (i *instance) program(port int) (*Cmd, error) {
	if l := i.p.opts.Launcher; l != nil {
		prog, err := l.Command(i.rev, i.id, port, contractEnv(nil, i.rev, port))
		if err != nil {
			return nil, err
		}
		if prog.Env == nil {
			prog.Env = i.p.baseEnv
		}
		return prog, nil
	}
	src := i.rev.Spec.Process
	return &Cmd{
		Path:          i.path,
		Args:          append([]string{src.Command}, src.Args...),
		Dir:           src.WorkingDir,
		Env:           i.p.environ(i.rev, port),
		ReadinessPath: i.readinessPath,
	}, nil
}

// awaitReady probes c until it answers, exits, Options.ReadyTimeout
// passes or ctx ends. In the last two cases it kills c.
func (i *instance) awaitReady(ctx context.Context, c *child) error {
	ctx, cancel := context.WithTimeoutCause(ctx, i.p.opts.ReadyTimeout, errReadyTimeout)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", c.port, c.readiness)
	// Probe at once, then after 1ms, doubling up to ProbeInterval: most
	// servers listen within a few milliseconds of starting.
	wait := time.Millisecond
	timer := time.NewTimer(time.Hour)
	timer.Stop() // since Go 1.23 a stopped timer delivers no stale tick
	defer timer.Stop()
	lastStatus := 0
	for {
		var status int
		var err error
		if c.readiness == "" {
			status, err = probeTCP(ctx, c.port)
		} else {
			status, err = i.p.probe(ctx, url)
		}
		if err == nil && status < http.StatusInternalServerError {
			return nil
		}
		if err == nil {
			lastStatus = status
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-c.exited:
			return exitedBeforeReady(c)
		case <-ctx.Done():
			killGroup(c.cmd.Process)
			<-c.exited
			if !errors.Is(context.Cause(ctx), errReadyTimeout) {
				return fmt.Errorf("gave up waiting for it to answer on $PORT: %w", context.Cause(ctx))
			}
			msg := fmt.Sprintf("did not answer on $PORT (%d) within %s; it must listen on 127.0.0.1:$PORT (or 0.0.0.0)",
				c.port, i.p.opts.ReadyTimeout)
			if lastStatus != 0 {
				msg += fmt.Sprintf(" and answer GET %s with a status below 500 (it answered %d)", c.readiness, lastStatus)
			}
			if l := c.stderr.last(1); len(l) > 0 {
				msg += "; its last line on stderr: " + l[0]
			}
			return errors.New(msg)
		}
		wait = min(wait*2, i.p.opts.ProbeInterval)
	}
}

// exitedBeforeReady describes the exit of a process that never answered.
func exitedBeforeReady(c *child) error {
	return &earlyExit{exit: describeExit(c.cmd.ProcessState), lines: c.stderr.last(tailLines)}
}

// probe sends one readiness probe, as Knative's queue-proxy does, and
// returns the status it got.
func (p *Provider) probe(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("K-Network-Probe", "queue")
	req.Header.Set("User-Agent", "wisp-probe")
	resp, err := p.probes.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// probeTCP connects to 127.0.0.1:port and hangs up: the readiness
// probe of a program that gave no HTTP path. A connection counts as
// status 200.
func probeTCP(ctx context.Context, port int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return 0, err
	}
	conn.Close()
	return http.StatusOK, nil
}

// readLines passes each line read from f to the log sink, and keeps it in
// keep when that is not nil, until f reaches EOF or is closed.
func (i *instance) readLines(f *os.File, stream string, keep *tail) {
	r := bufio.NewReaderSize(f, maxLine)
	for {
		b, err := r.ReadSlice('\n')
		if len(b) > 0 {
			line := strings.TrimRight(string(b), "\r\n")
			i.sink(stream, line)
			if keep != nil {
				keep.add(line)
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func (i *instance) sink(stream, line string) {
	if s := i.p.opts.LogSink; s != nil {
		s(i.rev, i.id, stream, line)
		return
	}
	i.log.Info(line, "stream", stream)
}

// tail keeps the last tailLines non-blank lines written to it.
type tail struct {
	mu    sync.Mutex
	lines [tailLines]string
	n     int // lines written so far
}

func (t *tail) add(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	if len(line) > maxTailLine {
		line = line[:maxTailLine] + "…"
	}
	t.mu.Lock()
	t.lines[t.n%tailLines] = line
	t.n++
	t.mu.Unlock()
}

// last returns up to n of the last lines, oldest first.
func (t *tail) last(n int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	n = min(n, t.n, tailLines)
	out := make([]string, 0, n)
	for k := t.n - n; k < t.n; k++ {
		out = append(out, t.lines[k%tailLines])
	}
	return out
}
