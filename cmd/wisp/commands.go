package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wisp-faas/wisp/internal/adminclient"
)

// The commands every kind has, in one place.

// newDeleteCmd is the delete command of every kind: it deletes each named
// object of the namespace in turn and stops at the first error.
func newDeleteCmd(g *globals, kind, short string, del func(*adminclient.Client, context.Context, string, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			for _, name := range args {
				if err := del(c, ctx, g.namespace, name); err != nil {
					return err
				}
				fmt.Fprintf(g.out, "%s '%s' deleted in namespace '%s'.\n", kind, name, g.namespace)
			}
			return nil
		},
	}
}

// newDescribeCmd is the describe command of a kind: it gets one object
// and prints it with describe, or as the API returned it with -o.
func newDescribeCmd[T any](g *globals, short string, get func(*adminclient.Client, context.Context, string, string) (T, []byte, error), describe func(*table, T)) *cobra.Command {
	c := &cobra.Command{
		Use:   "describe NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			obj, raw, err := get(c, ctx, g.namespace, args[0])
			if err != nil {
				return err
			}
			return g.print(raw, func(t *table) { describe(t, obj) })
		},
	}
	g.addOutputFlag(c)
	return c
}

// newListCmd is the list command of a kind: the namespace's objects, or
// every namespace's with -A, printed as a table by print or as the API
// returned them with -o.
func newListCmd[L any](g *globals, plural, short string, list func(*adminclient.Client, context.Context, string) (L, []byte, error), print func(*table, L)) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   short,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			ns := g.namespace
			if all {
				ns = ""
			}
			l, raw, err := list(c, ctx, ns)
			if err != nil {
				return err
			}
			return g.print(raw, func(t *table) { print(t, l) })
		},
	}
	c.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list "+plural+" of every namespace")
	g.addOutputFlag(c)
	return c
}
