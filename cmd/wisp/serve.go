package main

import (
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/wisp-faas/wisp/controller"
	"github.com/wisp-faas/wisp/controller/leader"
	"github.com/wisp-faas/wisp/internal/node"
)

func newServeCmd(g *globals) *cobra.Command {
	cfg := node.Config{Version: version}
	var logLevel, logFormat string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run a wisp node: store, controller, gateway and admin API in one process",
		Long: `Run a wisp node in the foreground until interrupted (Ctrl-C or SIGTERM),
then drain requests in flight and stop every function instance.

The chosen addresses are logged and written to <data-dir>/node.json, where
the CLI finds them; the admin token is <data-dir>/token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(g.errOut, logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.DataDir = g.dataDir
			cfg.Log = log
			cfg.Kubernetes.Kubeconfig, cfg.Kubernetes.Context = g.kubeconfig, g.kubeContext
			if cfg.Kubernetes.Kubeconfig != "" || cfg.Kubernetes.Context != "" {
				cfg.Kubernetes.Enabled = true
			}
			// A node whose log reader went away (a closed pipe) keeps
			// running and stops its instances on the signal it is sent,
			// instead of dying of SIGPIPE and orphaning them.
			signal.Ignore(syscall.SIGPIPE)
			return node.Run(cmd.Context(), cfg)
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.GatewayAddr, "gateway-addr", "127.0.0.1:8080", "gateway listen address (port 0 picks a free port)")
	f.StringVar(&cfg.AdminAddr, "admin-addr", "127.0.0.1:8081", "admin API listen address (port 0 picks a free port)")
	f.StringVar(&cfg.Domain, "domain", "127.0.0.1.sslip.io", "domain of function hosts: <name>.<namespace>.<domain>")
	f.StringVar(&cfg.PublicURL, "public-url", "", "where clients reach the gateway, for functions' URLs and addresses (default: the gateway address; with --kubernetes "+node.KubernetesPublicURL+")")
	f.StringVar(&cfg.NATSURL, "nats-url", "", "use this NATS server (with JetStream) instead of the embedded one")
	f.StringVar(&cfg.NATSListen, "nats-listen", "", "expose the embedded NATS server on this address (default: in-process only)")
	f.StringVar(&cfg.NATSSync, "nats-sync", "always", "embedded NATS durability: always (fsync each write before acknowledging it) or a duration between fsyncs (faster; a killed node may lose the last few ms of writes)")
	f.BoolVar(&cfg.AccessLog, "access-log", false, "log one structured line per gateway request, with its W3C trace id")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate: the gateway serves HTTPS and HTTP/2 (with --tls-key)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&cfg.AutoscalerConfig, "autoscaler-config", "", "autoscaler configuration with Knative's keys (see config/autoscaler.yaml); default: Knative's defaults")
	f.StringVar(&cfg.GatewayConfig, "gateway-config", "", "gateway configuration with global filters (see config/gateway.yaml)")
	f.IntVar(&cfg.RetainRevisions, "retain-revisions", controller.DefaultRetainRevisions, "unrouted revisions kept per function before older ones are deleted; -1 keeps all")
	f.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", "", "export a span per gateway request over OTLP/HTTP to this URL, e.g. http://127.0.0.1:4318")
	f.Float64Var(&cfg.TraceSampleRatio, "trace-sample-ratio", 1, "share of new traces sampled when --otlp-endpoint is set; a client's traceparent decides for its own")
	f.BoolVar(&cfg.Profiling, "profiling", false, "serve Go's pprof profiles on the admin API under /debug/pprof/ (token required)")
	k := &cfg.Kubernetes
	f.BoolVar(&k.Enabled, "kubernetes", false, "run against a Kubernetes cluster: state in wisp's CRDs (kubectl apply -k config/), one leader among the nodes; uses --kubeconfig and --context (either implies --kubernetes), $KUBECONFIG, or the Pod's in-cluster configuration")
	f.StringVar(&k.NodeName, "node-name", "", "this node's name in the leader Lease (default $POD_NAME, else the host name)")
	f.StringVar(&k.LeaseNamespace, "lease-namespace", "wisp-system", "namespace of the leader Lease")
	f.DurationVar(&k.LeaseDuration, "lease-duration", leader.DefaultLeaseDuration, "how long a leader that stops renewing keeps the Lease")
	f.Float32Var(&k.QPS, "kube-api-qps", 50, "requests per second to the apiserver (sustained)")
	f.IntVar(&k.Burst, "kube-api-burst", 100, "requests to the apiserver in a burst")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return c
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}
