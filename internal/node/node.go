package node

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wisp-faas/wisp/activator"
	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/autoscaler"
	"github.com/wisp-faas/wisp/controller"
	"github.com/wisp-faas/wisp/controller/admin"
	"github.com/wisp-faas/wisp/controller/leader"
	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/functions/modules"
	"github.com/wisp-faas/wisp/internal/adminclient"
	"github.com/wisp-faas/wisp/internal/logs"
	"github.com/wisp-faas/wisp/runtime/container"
	"github.com/wisp-faas/wisp/runtime/process"
	"github.com/wisp-faas/wisp/runtime/proxywasm"
	"github.com/wisp-faas/wisp/runtime/wasm"
	"github.com/wisp-faas/wisp/triggers"
)

// Config configures a node. Zero values are not defaults: cmd/wisp
// sets every field from its flags.
type Config struct {
	DataDir     string
	GatewayAddr string
	AdminAddr   string
	Domain      string
	// NATSURL, when set, is an external NATS server with JetStream used
	// instead of the embedded one.
	NATSURL string
	// NATSListen, when set, exposes the embedded NATS server on a TCP address.
	NATSListen string
	// NATSSync is how the embedded NATS server makes writes durable:
	// "always" (write and fsync each message before acknowledging it,
	// so that nothing acknowledged is lost when the node is killed), or
	// a duration between fsyncs, faster but able to lose the last few
	// milliseconds of acknowledged writes to a kill and up to that
	// duration to a power loss.
	NATSSync string
	Version  string
	Log      *slog.Logger
	// Profiling serves pprof on the admin API.
	Profiling bool
	// AutoscalerConfig is a config/autoscaler.yaml file; empty means
	// Knative's defaults.
	AutoscalerConfig string
	// AccessLog logs one line per gateway request.
	AccessLog bool
	// TLSCert and TLSKey, when both set, make the gateway serve HTTPS
	// (HTTP/1.1 and HTTP/2) instead of plain HTTP (HTTP/1.1 and h2c).
	TLSCert, TLSKey string
	// GatewayConfig is a config/gateway.yaml file (global filters);
	// empty means none.
	GatewayConfig string
	// RetainRevisions is how many unrouted Revisions of a Function are
	// kept; negative keeps all.
	RetainRevisions int
	// PublicURL is where clients reach the gateway, the base of every
	// function's status URL port and path address. Empty means the
	// gateway's own address, or KubernetesPublicURL in Kubernetes mode,
	// where the leader writes one URL for all nodes behind a Service.
	PublicURL string
	// OTLPEndpoint, when set, exports a span per gateway request over
	// OTLP/HTTP; TraceSampleRatio samples the traces the gateway starts.
	OTLPEndpoint     string
	TraceSampleRatio float64
	// Kubernetes runs the node against a Kubernetes cluster: the state is
	// in wisp's CRDs (config/crd), and the nodes elect a leader.
	Kubernetes KubernetesConfig
}

// KubernetesConfig configures a node in Kubernetes mode.
type KubernetesConfig struct {
	// Enabled turns Kubernetes mode on.
	Enabled bool
	// Kubeconfig and Context choose the cluster; both empty means the
	// in-cluster configuration of a Pod, else $KUBECONFIG or
	// ~/.kube/config.
	Kubeconfig, Context string
	// NodeName names this node (in the Lease and its log); it must be
	// unique among the running nodes.
	NodeName string
	// LeaseNamespace holds the leader's Lease.
	LeaseNamespace string
	// LeaseDuration is how long a leader's Lease lasts without renewal;
	// 0 means the leader package's default.
	LeaseDuration time.Duration
	// QPS and Burst bound the node's requests to the apiserver.
	QPS   float32
	Burst int
}

// logLinesPerFunction is how many lines of output the node keeps per function.
const logLinesPerFunction = 1000

// shutdownGrace bounds how long requests in flight may take to finish
// when the node stops.
const shutdownGrace = 30 * time.Second

// Run runs a node until ctx ends, then shuts it down gracefully.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Close()

	asCfg := autoscaler.DefaultConfig()
	if cfg.AutoscalerConfig != "" {
		if asCfg, err = autoscaler.LoadConfig(cfg.AutoscalerConfig); err != nil {
			return fmt.Errorf("--autoscaler-config: %w", err)
		}
	}

	token, err := loadOrCreateToken(filepath.Join(cfg.DataDir, "token"))
	if err != nil {
		return err
	}

	// Listen first: a port in use is the most common start-up failure and
	// should fail fast, before anything is started.
	gwLn, err := listen("gateway", "--gateway-addr", cfg.GatewayAddr)
	if err != nil {
		return err
	}
	defer gwLn.Close()
	adminLn, err := listen("admin API", "--admin-addr", cfg.AdminAddr)
	if err != nil {
		return err
	}
	defer adminLn.Close()

	nc, stopNATS, err := connectNATS(cfg, log)
	if err != nil {
		return err
	}
	defer stopNATS()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening JetStream: %w", err)
	}
	var st store.Store
	var k8s *kubeMode
	if cfg.Kubernetes.Enabled {
		if k8s, err = openKubernetes(ctx, cfg.Kubernetes, log); err != nil {
			return err
		}
		st = k8s.store
	} else if st, err = store.NewKV(ctx, js, store.KVOptions{}); err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	var leading func() bool
	if k8s != nil {
		leading = k8s.elector.Leading
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return errors.New("give both --tls-cert and --tls-key, or neither")
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		gwLn = tls.NewListener(gwLn, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	gatewayURL := scheme + "://" + gwLn.Addr().String()
	var loopbackTLS *tls.Config
	if cfg.TLSCert != "" {
		// Deliveries dial this node's own gateway on loopback; its
		// certificate names the public host, not 127.0.0.1.
		loopbackTLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	}
	trg, err := triggers.New(triggers.Options{
		JetStream: js, Store: st, GatewayURL: scheme + "://" + dialAddr(gwLn.Addr()), GatewayTLS: loopbackTLS, Domain: cfg.Domain,
		Log: log.With("component", "triggers"), Registry: reg, Leading: leading,
	})
	if err != nil {
		return err
	}
	adminURL := "http://" + adminLn.Addr().String()
	mods, err := modules.Open(filepath.Join(cfg.DataDir, "modules"))
	if err != nil {
		return err
	}
	source := &moduleSource{store: mods, indexDir: filepath.Join(cfg.DataDir, "oci")}
	book := logs.New(logLinesPerFunction)
	logSink := func(rev *api.Revision, instance, stream, line string) {
		book.Add(rev.Namespace, rev.Labels[api.LabelFunction], logs.Line{
			Time: time.Now(), Revision: rev.Name, Instance: instance, Stream: stream, Text: line,
		})
		log.Debug("function output", "namespace", rev.Namespace, "revision", rev.Name, "instance", instance, "stream", stream, "line", line)
	}

	wasmProvider, err := wasm.New(ctx, wasm.Options{
		Load:     source.Load,
		CacheDir: filepath.Join(cfg.DataDir, "wasm"),
		Logger:   log,
		LogSink:  logSink,
	})
	if err != nil {
		return fmt.Errorf("starting the Wasm runtime: %w", err)
	}

	containers := container.New(container.Options{
		Dir:     filepath.Join(cfg.DataDir, "containers"),
		Process: process.Options{Logger: log, LogSink: logSink},
	})
	source.images = containers

	var gwCfg GatewayConfig
	if cfg.GatewayConfig != "" {
		if gwCfg, err = LoadGatewayConfig(cfg.GatewayConfig); err != nil {
			return fmt.Errorf("--gateway-config: %w", err)
		}
	}
	routes := activator.NewRoutes(cfg.Domain)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wisp_gateway_routes", Help: "Functions the gateway has a route for.",
	}, func() float64 { return float64(routes.Len()) }))
	pools := activator.NewPools()
	gw, err := activator.NewGateway(routes, pools, log, reg)
	if err != nil {
		return err
	}
	if cfg.AccessLog {
		gw.SetAccessLog(log.With("log", "access"))
	}
	if cfg.OTLPEndpoint != "" {
		tp, err := newTracerProvider(ctx, cfg.OTLPEndpoint, cfg.TraceSampleRatio, cfg.Version)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(sctx); err != nil {
				log.Warn("flushing spans to the OTLP endpoint", "error", err)
			}
		}()
		gw.SetTracer(tp)
	}
	pwHost, err := proxywasm.NewHost(ctx, proxywasm.HostOptions{
		Logger: log, Metrics: reg, CacheDir: filepath.Join(cfg.DataDir, "proxywasm-cache"),
		Functions: gw, FunctionDomain: cfg.Domain,
	})
	if err != nil {
		return fmt.Errorf("starting the proxy-wasm host: %w", err)
	}
	var ctrl *controller.Controller
	filters := controller.NewFilterManager(controller.FilterManagerOptions{
		Store: st, Log: log, Fetch: source.Filter,
		Load: func(ctx context.Context, s controller.PluginSpec) (controller.Plugin, error) {
			p, err := pwHost.Load(ctx, proxywasm.PluginSpec{Name: s.Name, RootID: s.RootID, Wasm: s.Wasm,
				PluginConfig: s.PluginConfig, VMConfig: s.VMConfig, Env: s.Env, FailOpen: s.FailOpen})
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return p, nil
		},
		OnChange: func(ns string) { ctrl.Resync(ns) },
		Leading:  leading,
	})
	ctrl, err = controller.New(controller.Options{
		Store:  st,
		Routes: routes,
		Pools:  pools,
		Providers: controller.Providers{
			Process:   process.New(process.Options{Logger: log, LogSink: logSink}),
			Wasm:      wasmProvider,
			Container: containers,
		},
		Domain:          cfg.Domain,
		GatewayURL:      publicURL(cfg, gatewayURL),
		Log:             log,
		OnDelete:        book.Forget,
		GlobalFilters:   gwCfg.Filters,
		RetainRevisions: cfg.RetainRevisions,
		ExtraFilters:    filters.For,
		Autoscaler:      &asCfg,
		Registry:        reg,
		Pin:             source.Pin,
		Leading:         leading,
	})
	if err != nil {
		return err
	}
	var uploads *modules.Store
	if k8s == nil {
		// On a cluster a module uploaded to one node would be missing on
		// the others: modules come from OCI registries there.
		uploads = mods
	}
	adminSrv := admin.New(admin.Options{
		Store:      st,
		Token:      token,
		Info:       admin.Info{Version: cfg.Version, GatewayURL: gatewayURL, AdminURL: adminURL, Domain: cfg.Domain},
		Log:        log,
		Gather:     reg,
		Ready:      ctrl.Ready,
		Modules:    uploads,
		Logs:       book,
		Profiling:  cfg.Profiling,
		Autoscaler: &asCfg,
	})

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	ctrlDone := make(chan error, 1)
	go func() { ctrlDone <- ctrl.Run(runCtx) }()
	filtersDone := make(chan struct{})
	go func() {
		defer close(filtersDone)
		if err := filters.Run(runCtx); err != nil {
			log.Error("filters stopped: Filter resources are no longer applied", "error", err)
		}
	}()

	electDone := make(chan struct{})
	if k8s != nil {
		k8s.onLead(ctrl.ResyncAll)
		go func() { defer close(electDone); k8s.elector.Run(runCtx) }()
	} else {
		close(electDone)
	}

	trgCtx, stopTriggers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTriggers()
	trgDone := make(chan error, 1)
	go func() { trgDone <- trg.Run(trgCtx) }()

	gwSrv := &http.Server{Handler: trg.Handler(gw), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	// HTTP/1.1 always; HTTP/2 over TLS when serving TLS, h2c otherwise.
	gwSrv.Protocols = new(http.Protocols)
	gwSrv.Protocols.SetHTTP1(true)
	gwSrv.Protocols.SetHTTP2(cfg.TLSCert != "")
	gwSrv.Protocols.SetUnencryptedHTTP2(cfg.TLSCert == "")
	adminHTTP := &http.Server{Handler: adminSrv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	serveErr := make(chan error, 2)
	go func() { serveErr <- serve("gateway", gwSrv, gwLn) }()
	go func() { serveErr <- serve("admin API", adminHTTP, adminLn) }()

	nodeFile := filepath.Join(cfg.DataDir, "node.json")
	if err := writeNodeFile(nodeFile, adminclient.NodeFile{
		PID: os.Getpid(), Version: cfg.Version, GatewayURL: gatewayURL, AdminURL: adminURL, Domain: cfg.Domain,
	}); err != nil {
		return err
	}
	defer os.Remove(nodeFile)
	if k8s != nil {
		log.Info("Kubernetes mode", "apiserver", k8s.host, "node", k8s.identity, "lease", cfg.Kubernetes.LeaseNamespace+"/"+leader.DefaultLeaseName)
	}
	log.Info("wisp node running", "gateway", gatewayURL, "admin", adminURL, "domain", cfg.Domain, "data_dir", cfg.DataDir, "version", cfg.Version)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining requests in flight")
	case runErr = <-serveErr:
	case runErr = <-ctrlDone:
		if runErr == nil {
			runErr = errors.New("controller stopped unexpectedly")
		}
	case runErr = <-trgDone:
		trgDone <- runErr
	}

	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Deliveries in flight finish through the gateway before it closes.
	stopTriggers()
	<-trgDone
	if err := gwSrv.Shutdown(sctx); err != nil {
		log.Warn("gateway shutdown", "error", err)
	}
	stopRun()
	<-ctrlDone
	<-filtersDone
	<-electDone
	pools.CloseAll(sctx)
	if err := pwHost.Close(sctx); err != nil {
		log.Warn("closing the proxy-wasm host", "error", err)
	}
	// Only once no instance runs may compiled modules go.
	if err := wasmProvider.Close(sctx); err != nil {
		log.Warn("closing the Wasm runtime", "error", err)
	}
	if err := adminHTTP.Shutdown(sctx); err != nil {
		log.Warn("admin API shutdown", "error", err)
	}
	log.Info("wisp node stopped")
	return runErr
}

func serve(what string, srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// dialAddr is where this process reaches a listener: its address, with
// loopback for an unspecified host.
func dialAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return addr.String()
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
}

// listen opens a TCP listener and explains the usual failures.
func listen(what, flag, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s address %s is already in use: stop what listens there, or pass %s with another port (port 0 picks a free one)", what, addr, flag)
		}
		return nil, fmt.Errorf("%s: listening on %s (%s): %w", what, addr, flag, err)
	}
	return ln, nil
}

func connectNATS(cfg Config, log *slog.Logger) (*nats.Conn, func(), error) {
	if cfg.NATSURL != "" {
		nc, err := store.Connect(cfg.NATSURL)
		if err != nil {
			return nil, nil, err
		}
		return nc, func() { _ = nc.Drain() }, nil
	}
	opts := store.ServerOptions{DataDir: filepath.Join(cfg.DataDir, "nats"), ListenAddr: cfg.NATSListen, Logger: log}
	switch cfg.NATSSync {
	case "", "always":
		opts.SyncAlways = true
	default:
		d, err := time.ParseDuration(cfg.NATSSync)
		if err != nil || d <= 0 {
			return nil, nil, fmt.Errorf("--nats-sync %q: use always, or a duration between fsyncs such as 1s", cfg.NATSSync)
		}
		opts.SyncInterval = d
	}
	srv, err := store.StartServer(opts)
	if err != nil {
		return nil, nil, err
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		return nil, nil, err
	}
	if cfg.NATSListen != "" {
		log.Info("embedded NATS listening", "url", srv.ClientURL())
	}
	return nc, func() {
		_ = nc.Drain()
		srv.Shutdown()
	}, nil
}

// loadOrCreateToken reads the admin token, creating it (mode 0600) on
// first start.
func loadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if tok := strings.TrimSpace(string(b)); tok != "" {
			if err := os.Chmod(path, 0o600); err != nil {
				return "", fmt.Errorf("restricting %s to mode 0600: %w", path, err)
			}
			return tok, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading admin token: %w", err)
	}
	tok, err := admin.NewToken()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing admin token: %w", err)
	}
	return tok, nil
}

// writeNodeFile writes node.json atomically, so a reader never sees half of it.
func writeNodeFile(path string, nf adminclient.NodeFile) error {
	b, err := json.MarshalIndent(nf, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding node.json: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// KubernetesPublicURL is the gateway Service of config/ as Pods of the
// cluster reach it.
const KubernetesPublicURL = "http://wisp-gateway.wisp-system.svc.cluster.local"

// publicURL is cfg.PublicURL, or its default (see Config.PublicURL).
func publicURL(cfg Config, gatewayURL string) string {
	switch {
	case cfg.PublicURL != "":
		return cfg.PublicURL
	case cfg.Kubernetes.Enabled:
		return KubernetesPublicURL
	}
	return gatewayURL
}
