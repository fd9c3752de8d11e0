package store

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// DefaultStartTimeout is how long StartServer waits for the embedded
// server when ServerOptions.StartTimeout is zero.
const DefaultStartTimeout = 30 * time.Second

// LockFileName is the file, inside ServerOptions.DataDir, that a running
// embedded server holds an exclusive lock on.
const LockFileName = "nats.lock"

// ServerOptions configures the embedded NATS server.
type ServerOptions struct {
	// DataDir holds the JetStream files (in DataDir/jetstream) and the
	// lock file DataDir/nats.lock. Required. Give NATS a directory of its
	// own: at first start nats-server moves directories it takes for
	// account data into DataDir/jetstream.
	DataDir string

	// ListenAddr, when set ("host:port"; port 0 picks a free port), also
	// serves NATS clients over TCP. Empty means in-process clients only:
	// the server opens no socket at all.
	ListenAddr string

	// Logger receives the server's own log: notices at debug level,
	// warnings and errors at theirs. Nil discards it.
	Logger *slog.Logger

	// StartTimeout bounds the wait for the server to be ready, which
	// includes recovering every JetStream stream from disk. Zero means
	// DefaultStartTimeout.
	StartTimeout time.Duration

	// SyncInterval is how often JetStream fsyncs its files. Writes reach
	// the operating system at once either way; this bounds what a power
	// loss can take. Zero means the nats-server default (2 minutes).
	SyncInterval time.Duration
	// SyncAlways writes and fsyncs every message before JetStream
	// acknowledges it. Without it, an acknowledged message may sit in the
	// server's write buffer for a few milliseconds, and a process killed
	// then loses it.
	SyncAlways bool
}

// Server is an embedded NATS server with JetStream enabled.
type Server struct {
	ns      *server.Server
	dataDir string
	unlock  func() error

	mu     sync.Mutex
	conns  []*nats.Conn
	closed bool
}

// StartServer starts a NATS server with JetStream in this process and
// waits until it is ready. It fails if another server holds DataDir.
func StartServer(opts ServerOptions) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("store: start NATS: ServerOptions.DataDir is empty; give the embedded server a directory for its data")
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("store: start NATS: data directory %q: %w", opts.DataDir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: start NATS: create data directory: %w", err)
	}
	lockPath := filepath.Join(dir, LockFileName)
	unlock, err := lockFile(lockPath)
	if err != nil {
		return nil, fmt.Errorf("store: start NATS: data directory %s is in use by another running server (lock %s): stop it, or use another data directory: %w", dir, lockPath, err)
	}

	sopts := &server.Options{
		ServerName:   "wisp",
		JetStream:    true,
		StoreDir:     dir,
		SyncInterval: opts.SyncInterval,
		SyncAlways:   opts.SyncAlways,
		NoSigs:       true,
		// Port 0 would mean the default 4222; -1 is "any free port".
		Port:       server.RANDOM_PORT,
		DontListen: opts.ListenAddr == "",
	}
	if opts.ListenAddr != "" {
		host, port, err := splitListenAddr(opts.ListenAddr)
		if err != nil {
			_ = unlock()
			return nil, err
		}
		sopts.Host, sopts.Port = host, port
	}

	ns, err := server.NewServer(sopts)
	if err != nil {
		_ = unlock()
		return nil, fmt.Errorf("store: start NATS: %w", err)
	}
	logger := &serverLogger{log: opts.Logger, fatal: make(chan string, 1)}
	if logger.log == nil {
		logger.log = slog.New(slog.DiscardHandler)
	}
	ns.SetLoggerV2(logger, false, false, false)

	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	go ns.Start()

	fail := func(err error) (*Server, error) {
		ns.Shutdown()
		ns.WaitForShutdown()
		_ = unlock()
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		select {
		case msg := <-logger.fatal:
			return fail(fmt.Errorf("store: start NATS in %s: %s", dir, msg))
		default:
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("store: start NATS in %s: not ready after %s; a large JetStream store can take longer to recover: raise the start timeout, and see the server log (debug level) for progress", dir, timeout))
		}
	}
	select {
	case msg := <-logger.fatal:
		return fail(fmt.Errorf("store: start NATS in %s: %s", dir, msg))
	default:
	}
	if !ns.JetStreamEnabled() {
		return fail(fmt.Errorf("store: start NATS in %s: JetStream did not start; see the server log", dir))
	}
	return &Server{ns: ns, dataDir: dir, unlock: unlock}, nil
}

// splitListenAddr turns "host:port" into nats-server's Host and Port.
func splitListenAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("store: start NATS: listen address %q: want host:port: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("store: start NATS: listen address %q: port must be a number from 0 to 65535", addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// Connect opens a client connection to the server. It is in-process
// (no socket) whether or not the server also listens on TCP. The
// connection does not reconnect: it closes when the server shuts down,
// which ends every watch made through it. Shutdown closes connections
// made here that are still open.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("store: connect to embedded NATS: the server is shut down")
	}
	all := append([]nats.Option{nats.Name("wisp"), nats.InProcessServer(s.ns), nats.NoReconnect()}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("store: connect to embedded NATS: %w", err)
	}
	s.conns = append(s.conns, nc)
	return nc, nil
}

// ClientURL returns the nats:// URL that TCP clients use, or "" when the
// server was started without ListenAddr. An unspecified listen host
// (0.0.0.0, ::) is reported as the loopback address.
func (s *Server) ClientURL() string {
	addr, ok := s.ns.Addr().(*net.TCPAddr)
	if !ok || addr == nil {
		return ""
	}
	host := addr.IP.String()
	switch {
	case addr.IP.IsUnspecified() && addr.IP.To4() != nil:
		host = "127.0.0.1"
	case addr.IP.IsUnspecified():
		host = "::1"
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// DataDir returns the absolute directory the server keeps its data in.
func (s *Server) DataDir() string { return s.dataDir }

// Shutdown closes the connections made with Connect, stops the server
// (JetStream writes its state to disk), waits for it, and releases the
// data directory. It is safe to call more than once.
func (s *Server) Shutdown() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()

	for _, nc := range conns {
		nc.Close()
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	_ = s.unlock()
}

// Connect opens a client connection to an external NATS server at url
// (as given to --nats-url; a comma-separated list is allowed). The
// connection reconnects forever after it was first established, so
// watches survive a NATS restart.
func Connect(url string, opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.Name("wisp"), nats.MaxReconnects(-1)}, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		return nil, fmt.Errorf("store: connect to NATS at %s: %w; check --nats-url and that the server is running with JetStream (-js)", url, err)
	}
	return nc, nil
}

// serverLogger routes nats-server's log into slog and remembers the
// first fatal message, which nats-server logs instead of returning.
type serverLogger struct {
	log   *slog.Logger
	fatal chan string
}

func (l *serverLogger) Noticef(format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...), "component", "nats")
}

func (l *serverLogger) Warnf(format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...), "component", "nats")
}

func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg, "component", "nats", "fatal", true)
	select {
	case l.fatal <- msg:
	default:
	}
}

func (l *serverLogger) Errorf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...), "component", "nats")
}

func (l *serverLogger) Debugf(format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...), "component", "nats")
}

func (l *serverLogger) Tracef(format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...), "component", "nats")
}
