package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/wisp-faas/wisp/internal/logs"
)

func newLogsCmd(g *globals) *cobra.Command {
	var follow bool
	var tail int
	c := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print what a function's instances wrote to stdout and stderr",
		Long: `Print a function's recent output: every line its instances wrote to stdout
or stderr, with the revision and instance that wrote it. The node keeps the
last 1,000 lines of each function in memory. With -f, keep printing new
lines until interrupted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !follow {
				var cancel context.CancelFunc
				ctx, cancel = g.ctx(ctx)
				defer cancel()
			}
			q := url.Values{"tail": {strconv.Itoa(tail)}}
			if follow {
				q.Set("follow", "true")
			}
			path := fmt.Sprintf("/apis/wisp.dev/v1alpha1/namespaces/%s/functions/%s/logs?%s", url.PathEscape(g.namespace), url.PathEscape(args[0]), q.Encode())
			resp, err := c.Stream(ctx, http.MethodGet, path)
			if err != nil {
				return err
			}
			defer resp.Close()
			sc := bufio.NewScanner(resp)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				var l logs.Line
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					return fmt.Errorf("decoding a log line: %w", err)
				}
				fmt.Fprintf(g.out, "%s %s/%s %s: %s\n", l.Time.Format("15:04:05.000"), l.Revision, l.Instance, l.Stream, l.Text)
			}
			if err := sc.Err(); err != nil && ctx.Err() == nil {
				return fmt.Errorf("reading logs: %w", err)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	c.Flags().IntVar(&tail, "tail", 100, "how many recent lines to print first (0: all kept)")
	return c
}
