package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wisp-faas/wisp/activator"
	"github.com/wisp-faas/wisp/internal/adminclient"
)

func newInvokeCmd(g *globals) *cobra.Command {
	var data, method, path, contentType string
	var headers []string
	var verbose bool
	c := &cobra.Command{
		Use:   "invoke NAME",
		Short: "Call a function through the gateway and print its answer",
		Long: `Call a function through the node's gateway, addressing it by its host
<name>.<namespace>.<domain> (no DNS needed: the request goes to the gateway's
address). The body comes from --data, or --data @FILE, or --data @- for
standard input. Exits non-zero when the function answers with a status of
400 or more.`,
		Example: `  wisp invoke hello
  wisp invoke hello --data '{"name":"wisp"}' --path /greet
  wisp invoke hello -H 'x-env: canary' -v`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			info, err := c.Info(ctx)
			if err != nil {
				return err
			}
			var body io.Reader
			switch {
			case data == "@-":
				body = g.in
			case strings.HasPrefix(data, "@"):
				b, err := os.ReadFile(data[1:])
				if err != nil {
					return fmt.Errorf("--data %s: %w", data, err)
				}
				body = bytes.NewReader(b)
			case data != "":
				body = strings.NewReader(data)
			}
			if method == "" {
				method = http.MethodGet
				if body != nil {
					method = http.MethodPost
				}
			}
			if !strings.HasPrefix(path, "/") {
				path = "/" + path
			}
			req, err := http.NewRequestWithContext(ctx, method, info.GatewayURL+path, body)
			if err != nil {
				return fmt.Errorf("building the request: %w", err)
			}
			req.Host = activator.HostName(info.Domain, g.namespace, args[0], "")
			if info.Domain == "" {
				// On a cluster the domain is the nodes' flag: the
				// function's URL, written by the leader, carries it.
				if req.Host, err = functionHost(ctx, c, g.namespace, args[0]); err != nil {
					return err
				}
			}
			if body != nil {
				req.Header.Set("Content-Type", contentType)
			}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, ":")
				if !ok {
					return fmt.Errorf("-H %q: use 'Name: value'", h)
				}
				req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("calling %s through the gateway at %s: %w", args[0], info.GatewayURL, err)
			}
			defer resp.Body.Close()
			if verbose {
				fmt.Fprintf(g.errOut, "< %s %s\n", resp.Proto, resp.Status)
				for k, vs := range resp.Header {
					for _, v := range vs {
						fmt.Fprintf(g.errOut, "< %s: %s\n", k, v)
					}
				}
			}
			if _, err := io.Copy(g.out, resp.Body); err != nil {
				return fmt.Errorf("reading the answer: %w", err)
			}
			if resp.StatusCode >= 400 {
				fmt.Fprintf(g.errOut, "wisp: %s answered %s\n", args[0], resp.Status)
				return &exitError{code: 1}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&data, "data", "d", "", "request body; @FILE reads a file, @- standard input")
	f.StringVarP(&method, "request", "X", "", "HTTP method (default GET, or POST with --data)")
	f.StringVar(&path, "path", "/", "path to call on the function")
	f.StringArrayVarP(&headers, "header", "H", nil, "request header 'Name: value' (repeatable)")
	f.StringVar(&contentType, "content-type", "application/json", "Content-Type of --data")
	f.BoolVarP(&verbose, "verbose", "v", false, "print the response status and headers to standard error")
	return c
}

// functionHost is the host of a function's URL in its status.
func functionHost(ctx context.Context, c *adminclient.Client, ns, name string) (string, error) {
	f, _, err := c.GetFunction(ctx, ns, name)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(f.Status.URL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("function %s has no URL yet (status.url %q): wait until it is ready", name, f.Status.URL)
	}
	return u.Host, nil
}
