package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"reflect"

	"github.com/spf13/cobra"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/internal/adminclient"
)

func newApplyCmd(g *globals) *cobra.Command {
	var file string
	var wf waitFlags
	c := &cobra.Command{
		Use:   "apply -f FILE|-",
		Short: "Create or update functions, filters and triggers from wisp, Knative Service or Istio WasmPlugin YAML/JSON",
		Long: `Create or update every resource in FILE (or standard input with -f -).
A file may hold several documents separated by '---'. Accepted kinds are
wisp.dev/v1alpha1 Function, Filter and Trigger, serving.knative.dev/v1
Service and extensions.istio.io/v1alpha1 WasmPlugin. A Knative Service
deploys unchanged, its container becoming a container function; an Istio
WasmPlugin becomes the Filter of the same name (what wisp cannot honour,
such as an https:// url or targetRefs, is an error naming the field).
Filters are applied first, so that functions start behind them, and
triggers last, once their functions exist.`,
		Example: `  wisp apply -f hello.yaml
  cat service.yaml | wisp apply -f -
  kubectl get wasmplugin api-key -n shop -o yaml | wisp apply -n shop -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("give the manifest with -f FILE, or -f - for standard input")
			}
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(g.in)
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("reading %s: %w", file, err)
			}
			objs, err := api.Decode(data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			var fns []*api.Function
			var filters []*api.Filter
			var trs []*api.Trigger
			for _, o := range objs {
				switch o := o.(type) {
				case *api.Function:
					fns = append(fns, o)
				case *api.Filter:
					filters = append(filters, o)
				case *api.Trigger:
					trs = append(trs, o)
				default:
					return fmt.Errorf("%s: %s %s cannot be applied; apply Functions, Filters, Triggers or Knative Services", file, o.GroupVersionKind().Kind, o.GetName())
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			for _, f := range filters {
				if f.Namespace == "" {
					f.Namespace = g.namespace
				}
				verb, err := applyFilter(ctx, c, f)
				if err != nil {
					return fmt.Errorf("filter %s: %w", f.Name, err)
				}
				fmt.Fprintf(g.out, "Filter '%s' %s in namespace '%s'.\n", f.Name, verb, f.Namespace)
			}
			for _, f := range fns {
				if f.Namespace == "" {
					f.Namespace = g.namespace
				}
				verb, applied, err := applyFunction(ctx, c, f)
				if err != nil {
					return fmt.Errorf("function %s: %w", f.Name, err)
				}
				if verb == "unchanged" || !wf.wait(cmd) {
					fmt.Fprintf(g.out, "Function '%s' %s in namespace '%s'.\n", f.Name, verb, f.Namespace)
					continue
				}
				if err := waitAndReport(cmd.Context(), g, cmd, &wf, c, applied, verb); err != nil {
					return err
				}
			}
			return applyTriggers(ctx, g, c, trs)
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "manifest file, or - for standard input")
	wf.register(c.Flags())
	return c
}

// applyFunction creates f, or updates the stored Function to f's spec,
// metadata labels and annotations, retrying on conflicts.
func applyFunction(ctx context.Context, c *adminclient.Client, f *api.Function) (string, *api.Function, error) {
	for attempt := 0; ; attempt++ {
		cur, _, err := c.GetFunction(ctx, f.Namespace, f.Name)
		if adminclient.IsNotFound(err) {
			created, err := c.CreateFunction(ctx, f)
			if adminclient.IsAlreadyExists(err) && attempt < 5 {
				continue
			}
			return "created", created, err
		}
		if err != nil {
			return "", nil, err
		}
		next := cur.DeepCopy()
		next.Spec = f.Spec
		next.Labels, next.Annotations = f.Labels, f.Annotations
		next.SetDefaults()
		if reflect.DeepEqual(next.Spec, cur.Spec) && reflect.DeepEqual(next.Labels, cur.Labels) && reflect.DeepEqual(next.Annotations, cur.Annotations) {
			return "unchanged", cur, nil
		}
		updated, err := c.UpdateFunction(ctx, next)
		if adminclient.IsConflict(err) && attempt < 5 {
			continue
		}
		return "configured", updated, err
	}
}
