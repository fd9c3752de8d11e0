package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/internal/adminclient"
)

// globals are the flags every command shares.
type globals struct {
	in             io.Reader
	out, errOut    io.Writer
	dataDir        string
	server, token  string
	namespace      string
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
	pf.StringVar(&g.dataDir, "data-dir", defaultDataDir(), "the node's data dir (env WISP_DATA_DIR); clients read node.json and token from it")
	pf.StringVar(&g.server, "server", "", "admin API URL (env WISP_SERVER; default: from <data-dir>/node.json)")
	pf.StringVar(&g.token, "token", "", "admin API bearer token (env WISP_TOKEN; default: <data-dir>/token)")
	pf.StringVarP(&g.namespace, "namespace", "n", api.DefaultNamespace, "namespace")
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

// client resolves the admin API client from flags, environment and data dir.
func (g *globals) client() (*adminclient.Client, error) {
	return adminclient.Resolve(g.server, g.token, g.dataDir)
}

// ctx bounds one admin API call.
func (g *globals) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, g.requestTimeout)
}

// addOutputFlag adds -o table|json|yaml to a command.
func (g *globals) addOutputFlag(c *cobra.Command) {
	c.Flags().StringVarP(&g.output, "output", "o", "table", "output format: table, json or yaml")
}
