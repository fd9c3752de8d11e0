package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/internal/adminclient"
)

func newRevisionCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "revision",
		Aliases: []string{"revisions", "rev"},
		Short:   "List, describe and delete revisions",
	}
	c.AddCommand(newRevisionListCmd(g), newRevisionDescribeCmd(g), newRevisionDeleteCmd(g))
	return c
}

func newRevisionListCmd(g *globals) *cobra.Command {
	var service string
	c := &cobra.Command{
		Use:     "list [NAME]",
		Aliases: []string{"ls"},
		Short:   "List revisions, of one function when NAME or --service is given",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				service = args[0]
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			list, raw, err := c.ListRevisions(ctx, g.namespace, service)
			if err != nil {
				return err
			}
			// Traffic shares come from the functions' status.
			traffic := map[string]string{}
			fns, _, err := c.ListFunctions(ctx, g.namespace)
			if err != nil {
				return err
			}
			for _, f := range fns.Items {
				for _, t := range f.Status.Traffic {
					if t.Percent != nil {
						traffic[t.RevisionName] = fmt.Sprintf("%d%%", *t.Percent)
					}
				}
			}
			return g.print(raw, func(t *table) {
				t.header("NAME", "FUNCTION", "TRAFFIC", "GENERATION", "AGE", "INSTANCES", "READY", "REASON")
				for i := len(list.Items) - 1; i >= 0; i-- {
					r := &list.Items[i]
					ready, reason := conditionColumns(r.Status.GetCondition(api.ConditionReady))
					t.row(r.Name, r.Labels[api.LabelFunction], traffic[r.Name], r.Labels[api.LabelRevisionNumber], age(r.CreationTimestamp.Time),
						fmt.Sprintf("%d/%d", r.Status.ActualReplicas, r.Status.DesiredReplicas), ready, reason)
				}
			})
		},
	}
	c.Flags().StringVarP(&service, "service", "s", "", "only revisions of this function")
	g.addOutputFlag(c)
	return c
}

func newRevisionDescribeCmd(g *globals) *cobra.Command {
	return newDescribeCmd(g, "Show a revision", (*adminclient.Client).GetRevision, describeRevision)
}

func describeRevision(t *table, r *api.Revision) {
	t.line("Name", r.Name)
	t.line("Namespace", r.Namespace)
	t.line("Function", r.Labels[api.LabelFunction])
	t.line("Age", age(r.CreationTimestamp.Time))
	t.line("Source", sourceString(&r.Spec))
	for _, e := range r.Spec.Env {
		t.line("Env", e.Name+"="+e.Value)
	}
	if r.Spec.ContainerConcurrency != nil {
		t.line("Concurrency", *r.Spec.ContainerConcurrency)
	}
	if r.Spec.TimeoutSeconds != nil {
		t.line("Timeout", fmt.Sprintf("%ds", *r.Spec.TimeoutSeconds))
	}
	t.line("Instances", fmt.Sprintf("%d ready / %d desired", r.Status.ActualReplicas, r.Status.DesiredReplicas))
	if r.Status.ScaleReason != "" {
		t.line("Last scaling", r.Status.ScaleReason)
	}
	if r.Status.PanicMode {
		t.line("Panic mode", "yes: reacting to a burst")
	}
	for _, c := range r.Status.Conditions {
		t.line("Condition "+string(c.Type), fmt.Sprintf("%s %s %s", c.Status, c.Reason, c.Message))
	}
}

func newRevisionDeleteCmd(g *globals) *cobra.Command {
	return newDeleteCmd(g, "Revision", "Delete revisions that receive no traffic", (*adminclient.Client).DeleteRevision)
}
