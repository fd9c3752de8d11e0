package store_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/controller/store/storetest"
)

// Data and revisions survive a shutdown and a start on the same directory.
func TestRestartPersistence(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	srv, err := store.StartServer(store.ServerOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s := storetest.NewKVOn(t, srv)
	r1, err := s.Create(ctx, store.Functions, "default", "kept", []byte(`"v1"`))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Update(ctx, store.Functions, "default", "kept", []byte(`"v2"`), r1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, store.Functions, "default", "deleted", []byte(`"x"`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, store.Functions, "default", "deleted", 0); err != nil {
		t.Fatal(err)
	}
	rr, err := s.Create(ctx, store.Revisions, "default", "kept-00001", []byte(`"r"`))
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()

	srv, err = store.StartServer(store.ServerOptions{DataDir: dir})
	if err != nil {
		t.Fatalf("restart on the same directory: %v", err)
	}
	defer srv.Shutdown()
	s = storetest.NewKVOn(t, srv)
	got, err := s.Get(ctx, store.Functions, "default", "kept")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Value) != `"v2"` || got.Revision != r2 {
		t.Fatalf("after restart: %q at %d, want \"v2\" at %d", got.Value, got.Revision, r2)
	}
	if got, err := s.Get(ctx, store.Revisions, "default", "kept-00001"); err != nil || got.Revision != rr {
		t.Fatalf("revision object after restart: %+v, %v", got, err)
	}
	if _, err := s.Get(ctx, store.Functions, "default", "deleted"); !errorsIs(err, store.ErrNotFound) {
		t.Fatalf("deleted object after restart: %v", err)
	}
	// Revisions continue: old ones are never handed out again.
	r4, err := s.Create(ctx, store.Functions, "default", "deleted", []byte(`"again"`))
	if err != nil {
		t.Fatal(err)
	}
	if r4 <= r2+1 { // r2+1 was the delete marker
		t.Fatalf("revision after restart %d, want above %d", r4, r2+1)
	}
	if _, err := s.Update(ctx, store.Functions, "default", "kept", []byte(`"stale"`), r1); !errorsIs(err, store.ErrConflict) {
		t.Fatalf("update with pre-restart stale revision: %v", err)
	}
	if _, err := s.Update(ctx, store.Functions, "default", "kept", []byte(`"v3"`), r2); err != nil {
		t.Fatalf("update with pre-restart revision: %v", err)
	}
}

// A second server on a directory in use fails clearly, and the directory
// is free again after Shutdown.
func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	srv, err := store.StartServer(store.ServerOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.StartServer(store.ServerOptions{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "in use by another running server") {
		t.Fatalf("second server on %s: %v, want an in-use error", dir, err)
	}
	srv.Shutdown()
	srv.Shutdown() // idempotent
	srv, err = store.StartServer(store.ServerOptions{DataDir: dir})
	if err != nil {
		t.Fatalf("start after shutdown: %v", err)
	}
	srv.Shutdown()
}

func TestStartServerBadOptions(t *testing.T) {
	for _, opts := range []store.ServerOptions{
		{},
		{DataDir: t.TempDir(), ListenAddr: "no-port"},
		{DataDir: t.TempDir(), ListenAddr: "127.0.0.1:http"},
	} {
		if srv, err := store.StartServer(opts); err == nil {
			srv.Shutdown()
			t.Errorf("StartServer(%+v) succeeded", opts)
		}
	}
}

// A port in use fails the start with the server's reason, quickly.
func TestStartServerPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	srv, err := store.StartServer(store.ServerOptions{DataDir: t.TempDir(), ListenAddr: l.Addr().String(), StartTimeout: 10 * time.Second})
	if err == nil {
		srv.Shutdown()
		t.Fatalf("started on %s, which is in use", l.Addr())
	}
	if !strings.Contains(err.Error(), "address already in use") || time.Since(start) > 5*time.Second {
		t.Fatalf("after %s: %v, want the listen error without waiting for the timeout", time.Since(start), err)
	}
	t.Log(err)
}

// A listening server is reachable over TCP with Connect(url); without
// ListenAddr there is no URL.
func TestListenAndConnect(t *testing.T) {
	ctx := t.Context()
	quiet := storetest.NewServer(t)
	if u := quiet.ClientURL(); u != "" {
		t.Fatalf("server without ListenAddr has URL %q", u)
	}

	srv, err := store.StartServer(store.ServerOptions{DataDir: t.TempDir(), ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	url := srv.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":0") || strings.HasSuffix(url, ":-1") {
		t.Fatalf("ClientURL = %q", url)
	}
	nc, err := store.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if nc.ConnectedUrl() != url {
		t.Fatalf("connected to %q, want %q", nc.ConnectedUrl(), url)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := store.NewKV(ctx, js, store.KVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := tcp.Create(ctx, store.Functions, "default", "over-tcp", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	// The in-process connection sees the same data.
	got, err := storetest.NewKVOn(t, srv).Get(ctx, store.Functions, "default", "over-tcp")
	if err != nil || got.Revision != rev {
		t.Fatalf("in-process read: %+v, %v", got, err)
	}
}

func TestConnectFails(t *testing.T) {
	// Port 1 on loopback: nothing listens there.
	_, err := store.Connect("nats://127.0.0.1:1", nats.Timeout(time.Second))
	if err == nil || !strings.Contains(err.Error(), "--nats-url") {
		t.Fatalf("Connect to a closed port: %v, want an error pointing at --nats-url", err)
	}
}

// NewKV on a NATS without JetStream says how to fix it.
func TestNewKVWithoutJetStream(t *testing.T) {
	ns, err := server.NewServer(&server.Options{DontListen: true, NoSigs: true, NoLog: true, Port: server.RANDOM_PORT})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("plain NATS not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.NewKV(t.Context(), js, store.KVOptions{})
	if err == nil || !strings.Contains(err.Error(), "-js") {
		t.Fatalf("NewKV without JetStream: %v, want a hint to enable JetStream", err)
	}
}

// Shutdown ends watches: their channels close.
func TestShutdownClosesWatch(t *testing.T) {
	srv, err := store.StartServer(store.ServerOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s := storetest.NewKVOn(t, srv)
	ch, err := s.Watch(t.Context(), store.Functions, "")
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != store.Synced {
		t.Fatalf("first event %v, want Synced", ev.Type)
	}
	srv.Shutdown()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("event after shutdown")
		}
	case <-time.After(storetest.Timeout):
		t.Fatal("watch still open after server shutdown")
	}
	if _, err := srv.Connect(); err == nil {
		t.Fatal("Connect after Shutdown succeeded")
	}
}

// The server's own log goes to the given logger, notices at debug level.
func TestServerLogger(t *testing.T) {
	h := &recordHandler{}
	srv, err := store.StartServer(store.ServerOptions{DataDir: t.TempDir(), Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	h.mu.Lock()
	defer h.mu.Unlock()
	var sawJetStream bool
	for _, r := range h.records {
		if r.Level > slog.LevelDebug && r.Level < slog.LevelWarn {
			t.Errorf("server log at %v: %s", r.Level, r.Message)
		}
		if strings.Contains(r.Message, "JetStream") {
			sawJetStream = true
		}
	}
	if !sawJetStream {
		t.Fatalf("no JetStream start-up notice among %d records", len(h.records))
	}
}

type recordHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }
