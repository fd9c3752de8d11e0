package main

import (
	"cmp"
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/internal/adminclient"
)

// globals are the flags every command shares.
type globals struct {
	in             io.Reader
	out, errOut    io.Writer
	dataDir        string
	server, token  string
	kubeconfig     string
	kubeContext    string
	gateway        string
	namespace      string
	flags          *pflag.FlagSet
	output         string
	requestTimeout time.Duration
}

func defaultDataDir() string {
	if d := os.Getenv("WISP_DATA_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".wisp"
	}
	return filepath.Join(home, ".wisp")
}

func newRoot(in io.Reader, out, errOut io.Writer) *cobra.Command {
	g := &globals{in: in, out: out, errOut: errOut}
	root := &cobra.Command{
		Use:           "wisp",
		Short:         "wisp runs functions that scale to zero and wake in milliseconds",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	pf := root.PersistentFlags()
	g.flags = pf
	pf.StringVar(&g.dataDir, "data-dir", defaultDataDir(), "the node's data dir (env WISP_DATA_DIR); clients read node.json and token from it")
	pf.StringVar(&g.server, "server", "", "admin API URL (env WISP_SERVER; default: from <data-dir>/node.json)")
	pf.StringVar(&g.token, "token", "", "admin API bearer token (env WISP_TOKEN; default: <data-dir>/token)")
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "kubeconfig of a Kubernetes cluster running wisp: commands talk to its API server, as kn does (default $KUBECONFIG when neither --server nor $WISP_SERVER is set)")
	pf.StringVar(&g.kubeContext, "context", "", "kubeconfig context of the cluster (implies the cluster)")
	pf.StringVar(&g.gateway, "gateway", cmp.Or(os.Getenv("WISP_GATEWAY"), "http://127.0.0.1:8080"), "on a cluster, the gateway that invoke and event call (env WISP_GATEWAY), e.g. after 'kubectl -n wisp-system port-forward svc/wisp-gateway 8080:80'")
	pf.StringVarP(&g.namespace, "namespace", "n", api.DefaultNamespace, "namespace (on a cluster, default: the kubeconfig context's)")
	pf.DurationVar(&g.requestTimeout, "request-timeout", 30*time.Second, "how long one call to the admin API may take")

	root.AddCommand(
		newServeCmd(g),
		newServiceCmd(g),
		newRevisionCmd(g),
		newApplyCmd(g),
		newInvokeCmd(g),
		newLogsCmd(g),
		newVersionCmd(g),
		newFilterCmd(g),
		newPluginCmd(g),
		newTriggerCmd(g),
		newEventCmd(g),
	)
	return root
}

// client resolves the admin API client from flags, environment and data
// dir: a node's, or the cluster's (see useCluster).
func (g *globals) client() (*adminclient.Client, error) {
	cluster, err := g.useCluster()
	if err != nil {
		return nil, err
	}
	if cluster {
		return g.clusterClient()
	}
	return adminclient.Resolve(g.server, g.token, g.dataDir)
}

// namespaceSet reports whether -n was given.
func (g *globals) namespaceSet() bool {
	f := g.flags.Lookup("namespace")
	return f != nil && f.Changed
}

// ctx bounds one admin API call.
func (g *globals) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, g.requestTimeout)
}

// addOutputFlag adds -o table|json|yaml to a command.
func (g *globals) addOutputFlag(c *cobra.Command) {
	c.Flags().StringVarP(&g.output, "output", "o", "table", "output format: table, json or yaml")
}
