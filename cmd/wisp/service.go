package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/internal/adminclient"
)

// templateFlags are kn's flags that shape a Function's template, shared by
// service create and service update.
type templateFlags struct {
	image        string
	exec         string
	wasm         string
	wasmModule   string // --wasm resolved: a digest or an oci:// reference
	abi          string
	plainHTTP    bool
	env          []string
	envFiles     []string
	annotations  []string
	labels       []string
	scaleMin     int
	scaleMax     int
	scaleInit    int
	scaleTarget  float64
	scaleMetric  string
	scaleWindow  string
	concurrency  int64
	timeout      int64
	revisionName string
}

func (tf *templateFlags) register(f *pflag.FlagSet) {
	f.StringVar(&tf.image, "image", "", "container image to run (Knative-style container function)")
	f.StringVar(&tf.exec, "exec", "", "executable on this machine that serves HTTP on $PORT; its arguments follow '--'")
	f.StringVar(&tf.wasm, "wasm", "", "WebAssembly module: a local .wasm file (uploaded to the node) or oci://REGISTRY/REPO:TAG")
	f.StringVar(&tf.abi, "abi", "", "Wasm ABI: wagi or http (default: detected from the module's exports)")
	f.BoolVar(&tf.plainHTTP, "plain-http", false, "pull the --wasm oci:// module over plain HTTP (local registries)")
	f.StringArrayVarP(&tf.env, "env", "e", nil, "environment variable NAME=value; NAME- removes it (repeatable)")
	f.StringArrayVar(&tf.envFiles, "env-file", nil, "file of NAME=value lines to add to the environment")
	f.StringArrayVarP(&tf.annotations, "annotation", "a", nil, "annotation KEY=value on the function and its revisions (autoscaling.knative.dev/ keys on the revisions only, as in kn); KEY- removes it")
	f.StringArrayVarP(&tf.labels, "label", "l", nil, "label KEY=value on the function and its revisions; KEY- removes it")
	f.IntVar(&tf.scaleMin, "scale-min", 0, "minimum number of instances (autoscaling.knative.dev/min-scale)")
	f.IntVar(&tf.scaleMax, "scale-max", 0, "maximum number of instances, 0 for no limit (autoscaling.knative.dev/max-scale)")
	f.IntVar(&tf.scaleInit, "scale-init", 0, "instances to start a new revision with (autoscaling.knative.dev/initial-scale)")
	f.Float64Var(&tf.scaleTarget, "scale-target", 0, "concurrency (or rps) per instance the autoscaler aims for (autoscaling.knative.dev/target)")
	f.StringVar(&tf.scaleMetric, "scale-metric", "", "autoscaling metric: concurrency or rps (autoscaling.knative.dev/metric)")
	f.StringVar(&tf.scaleWindow, "scale-window", "", "autoscaler stable window, e.g. 60s (autoscaling.knative.dev/window)")
	f.Int64Var(&tf.concurrency, "concurrency-limit", 0, "most requests one instance serves at once, 0 for no limit")
	f.Int64Var(&tf.timeout, "timeout", 0, "seconds a request may take (default 300)")
	f.StringVar(&tf.revisionName, "revision-name", "", "name of the new revision (prefixed with '<name>-' if it is not)")
}

// apply edits f's template (and metadata) by the flags that were set.
func (tf *templateFlags) apply(cmd *cobra.Command, f *api.Function, args []string) error {
	fl := cmd.Flags()
	spec := &f.Spec.Template.Spec
	tmeta := &f.Spec.Template.Metadata
	sources := 0
	for _, n := range []string{"image", "exec", "wasm"} {
		if fl.Changed(n) {
			sources++
		}
	}
	if sources > 1 {
		return fmt.Errorf("give one of --image, --exec and --wasm")
	}
	if fl.Changed("wasm") {
		spec.Process, spec.Container = nil, nil
		spec.Wasm = &api.WasmSource{Module: tf.wasmModule, ABI: tf.abi, PlainHTTP: tf.plainHTTP}
	} else if spec.Wasm != nil {
		if fl.Changed("abi") {
			spec.Wasm.ABI = tf.abi
		}
		if fl.Changed("plain-http") {
			spec.Wasm.PlainHTTP = tf.plainHTTP
		}
	}
	if fl.Changed("image") {
		spec.Wasm, spec.Process = nil, nil
		spec.Container = &api.ContainerSource{Image: tf.image}
	}
	if fl.Changed("exec") {
		path := tf.exec
		if !filepath.IsAbs(path) && strings.ContainsRune(path, filepath.Separator) {
			abs, err := filepath.Abs(path)
			if err != nil {
				return fmt.Errorf("--exec %s: %w", path, err)
			}
			path = abs
		}
		spec.Wasm, spec.Container = nil, nil
		spec.Process = &api.ProcessSource{Command: path, Args: args}
	} else if len(args) > 0 {
		return fmt.Errorf("arguments after '--' go with --exec; got %q", args)
	}

	var err error
	for _, file := range tf.envFiles {
		lines, rerr := readEnvFile(file)
		if rerr != nil {
			return rerr
		}
		if spec.Env, err = editEnv(spec.Env, lines); err != nil {
			return fmt.Errorf("--env-file %s: %w", file, err)
		}
	}
	if spec.Env, err = editEnv(spec.Env, tf.env); err != nil {
		return fmt.Errorf("--env: %w", err)
	}
	if f.Annotations, err = editMap(f.Annotations, functionAnnotationEdits(tf.annotations)); err != nil {
		return fmt.Errorf("--annotation: %w", err)
	}
	if tmeta.Annotations, err = editMap(tmeta.Annotations, tf.annotations); err != nil {
		return fmt.Errorf("--annotation: %w", err)
	}
	if f.Labels, err = editMap(f.Labels, tf.labels); err != nil {
		return fmt.Errorf("--label: %w", err)
	}
	if tmeta.Labels, err = editMap(tmeta.Labels, tf.labels); err != nil {
		return fmt.Errorf("--label: %w", err)
	}

	setAnn := func(flag, key, value string) {
		if fl.Changed(flag) {
			if tmeta.Annotations == nil {
				tmeta.Annotations = map[string]string{}
			}
			tmeta.Annotations[key] = value
		}
	}
	setAnn("scale-min", api.AnnotationMinScale, strconv.Itoa(tf.scaleMin))
	setAnn("scale-max", api.AnnotationMaxScale, strconv.Itoa(tf.scaleMax))
	setAnn("scale-init", api.AnnotationInitialScale, strconv.Itoa(tf.scaleInit))
	setAnn("scale-target", api.AnnotationTarget, strconv.FormatFloat(tf.scaleTarget, 'f', -1, 64))
	setAnn("scale-metric", api.AnnotationMetric, tf.scaleMetric)
	setAnn("scale-window", api.AnnotationWindow, tf.scaleWindow)
	if fl.Changed("concurrency-limit") {
		spec.ContainerConcurrency = &tf.concurrency
	}
	if fl.Changed("timeout") {
		spec.TimeoutSeconds = &tf.timeout
	}
	tmeta.Name = ""
	if tf.revisionName != "" {
		tmeta.Name = tf.revisionName
		if !strings.HasPrefix(tmeta.Name, f.Name+"-") {
			tmeta.Name = f.Name + "-" + tmeta.Name
		}
	}
	return nil
}

// upload resolves --wasm: a local file is uploaded to the node and named
// by its digest; an oci:// reference is kept as it is.
func (tf *templateFlags) upload(ctx context.Context, c *adminclient.Client) error {
	if tf.wasm == "" || strings.HasPrefix(tf.wasm, "oci://") {
		tf.wasmModule = tf.wasm
		return nil
	}
	f, err := os.Open(tf.wasm)
	if err != nil {
		return fmt.Errorf("--wasm: %w", err)
	}
	defer f.Close()
	digest, err := c.UploadModule(ctx, f)
	if err != nil {
		return fmt.Errorf("--wasm %s: %w", tf.wasm, err)
	}
	tf.wasmModule = digest
	return nil
}

// editEnv applies NAME=value (set) and NAME- (remove) edits in order.
func editEnv(env []api.EnvVar, edits []string) ([]api.EnvVar, error) {
	for _, e := range edits {
		if name, ok := strings.CutSuffix(e, "-"); ok && !strings.Contains(e, "=") {
			env = slices.DeleteFunc(env, func(v api.EnvVar) bool { return v.Name == name })
			continue
		}
		name, value, ok := strings.Cut(e, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not NAME=value or NAME-", e)
		}
		i := slices.IndexFunc(env, func(v api.EnvVar) bool { return v.Name == name })
		if i >= 0 {
			env[i].Value = value
		} else {
			env = append(env, api.EnvVar{Name: name, Value: value})
		}
	}
	return env, nil
}

// functionAnnotationEdits are the --annotation edits that go on the
// Function's own metadata: as kn does, autoscaling.knative.dev/ keys go
// only on the revision template, where the autoscaler reads them (setting
// one there removes nothing from the Function, which never holds them).
func functionAnnotationEdits(edits []string) []string {
	var out []string
	for _, e := range edits {
		if !strings.HasPrefix(e, autoscalingPrefix) {
			out = append(out, e)
		}
	}
	return out
}

const autoscalingPrefix = "autoscaling.knative.dev/"

// editMap applies KEY=value (set) and KEY- (remove) edits to a copy of m.
func editMap(m map[string]string, edits []string) (map[string]string, error) {
	if len(edits) == 0 {
		return m, nil
	}
	out := make(map[string]string, len(m)+len(edits))
	for k, v := range m {
		out[k] = v
	}
	for _, e := range edits {
		if key, ok := strings.CutSuffix(e, "-"); ok && !strings.Contains(e, "=") {
			delete(out, key)
			continue
		}
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=value or KEY-", e)
		}
		out[k] = v
	}
	return out, nil
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "=") {
			return nil, fmt.Errorf("--env-file %s line %d: %q is not NAME=value", path, n, line)
		}
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--env-file %s: %w", path, err)
	}
	return lines, nil
}

// waitFlags are kn's --wait options.
type waitFlags struct {
	noWait  bool
	timeout time.Duration
}

func (w *waitFlags) register(f *pflag.FlagSet) {
	f.Bool("wait", true, "wait until the function is ready (default)")
	f.BoolVar(&w.noWait, "no-wait", false, "return as soon as the change is accepted")
	f.DurationVar(&w.timeout, "wait-timeout", 600*time.Second, "how long to wait for the function to become ready")
}

func (w *waitFlags) wait(cmd *cobra.Command) bool {
	if cmd.Flags().Changed("wait") {
		v, _ := cmd.Flags().GetBool("wait")
		return v && !w.noWait
	}
	return !w.noWait
}

// waitAndReport waits for readiness if asked to and prints kn's closing line.
func waitAndReport(ctx context.Context, g *globals, cmd *cobra.Command, wf *waitFlags, c *adminclient.Client, f *api.Function, verb string) error {
	if !wf.wait(cmd) {
		fmt.Fprintf(g.out, "Function '%s' %s in namespace '%s'.\n", f.Name, verb, f.Namespace)
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, wf.timeout)
	defer cancel()
	begin := time.Now()
	ready, err := c.WaitReady(wctx, f.Namespace, f.Name)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "Function '%s' %s to latest revision '%s' and is ready after %s:\n%s\n",
		f.Name, verb, ready.Status.LatestReadyRevisionName, time.Since(begin).Round(time.Millisecond), ready.Status.URL)
	if ready.Status.Address != "" {
		fmt.Fprintf(g.out, "%s\n", ready.Status.Address)
	}
	return nil
}

func newServiceCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "service",
		Aliases: []string{"services", "svc", "function", "fn"},
		Short:   "Create, update, delete, list and describe functions",
	}
	c.AddCommand(newServiceCreateCmd(g), newServiceUpdateCmd(g), newServiceDeleteCmd(g), newServiceListCmd(g), newServiceDescribeCmd(g))
	return c
}

func newServiceCreateCmd(g *globals) *cobra.Command {
	var tf templateFlags
	var wf waitFlags
	var force bool
	c := &cobra.Command{
		Use:   "create NAME (--wasm FILE|oci://REF | --exec PATH [-- ARGS...] | --image IMAGE) [flags]",
		Short: "Create a function",
		Example: `  wisp service create hello --wasm ./hello.wasm
  wisp service create hello --wasm oci://127.0.0.1:5000/hello:v1 --plain-http
  wisp service create hello --exec ./bin/hello -e GREETING=hi
  wisp service create api --exec /usr/local/bin/api-server -- --verbose
  wisp service create web --image ghcr.io/example/web:1 --scale-min 1`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, extra := args[0], execArgs(cmd, args)
			if !cmd.Flags().Changed("image") && !cmd.Flags().Changed("exec") && !cmd.Flags().Changed("wasm") {
				return fmt.Errorf("a function needs something to run: give --wasm FILE|oci://REF, --exec PATH or --image IMAGE")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			if err := tf.upload(ctx, c); err != nil {
				return err
			}
			f := &api.Function{}
			f.APIVersion, f.Kind = api.APIVersion, api.KindFunction
			f.Name, f.Namespace = name, g.namespace
			if err := tf.apply(cmd, f, extra); err != nil {
				return err
			}
			verb := "created"
			created, err := c.CreateFunction(ctx, f)
			if err != nil && force && adminclient.IsAlreadyExists(err) {
				verb = "replaced"
				created, err = c.UpdateFunction(ctx, f)
			}
			if err != nil {
				return err
			}
			return waitAndReport(cmd.Context(), g, cmd, &wf, c, created, verb)
		},
	}
	tf.register(c.Flags())
	wf.register(c.Flags())
	c.Flags().BoolVar(&force, "force", false, "replace the function if it already exists")
	return c
}

// execArgs returns the arguments after "--" (the --exec command's).
func execArgs(cmd *cobra.Command, args []string) []string {
	if i := cmd.ArgsLenAtDash(); i >= 0 {
		return args[i:]
	}
	return args[1:]
}

func newServiceUpdateCmd(g *globals) *cobra.Command {
	var tf templateFlags
	var wf waitFlags
	var tags, untags, shares, routes []string
	var clearRoutes bool
	c := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Update a function; a changed template cuts a new revision",
		Example: `  wisp service update hello -e GREETING=hello
  wisp service update hello --exec ./bin/hello-v2 --revision-name v2
  wisp service update hello --traffic hello-00001=90,@latest=10 --tag hello-00001=stable
  wisp service update hello --untag stable --traffic @latest=100
  wisp service update hello --route 'header:x-env=canary->@latest' --traffic hello-00001=100`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, extra := args[0], execArgs(cmd, args)
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			if err := tf.upload(ctx, c); err != nil {
				return err
			}
			// Read, edit, write with the resourceVersion read; retry on conflicts.
			for attempt := 0; ; attempt++ {
				f, _, err := c.GetFunction(ctx, g.namespace, name)
				if err != nil {
					return err
				}
				if err := tf.apply(cmd, f, extra); err != nil {
					return err
				}
				if len(tags)+len(untags)+len(shares) > 0 {
					if f.Spec.Traffic, err = editTraffic(f.Spec.Traffic, f.Name, tags, untags, shares); err != nil {
						return err
					}
				}
				if clearRoutes {
					f.Spec.Routes = nil
				}
				for _, rs := range routes {
					rule, err := parseRoute(f.Name, rs, f.Spec.Traffic)
					if err != nil {
						return err
					}
					f.Spec.Routes = append(f.Spec.Routes, rule)
				}
				updated, err := c.UpdateFunction(ctx, f)
				if adminclient.IsConflict(err) && attempt < 5 {
					continue
				}
				if err != nil {
					return err
				}
				return waitAndReport(cmd.Context(), g, cmd, &wf, c, updated, "updated")
			}
		},
	}
	tf.register(c.Flags())
	wf.register(c.Flags())
	c.Flags().StringSliceVar(&shares, "traffic", nil, "split traffic: REF=PERCENT,... where REF is a revision, a tag or @latest; the percents sum to 100")
	c.Flags().StringSliceVar(&tags, "tag", nil, "give a revision (or @latest) its own URL: REVISION=TAG,...")
	c.Flags().StringSliceVar(&untags, "untag", nil, "remove tags: TAG,...")
	c.Flags().StringArrayVar(&routes, "route", nil, "send matching requests to a revision, tag or @latest before the split: header:NAME=VALUE->TARGET (also NAME^=PREFIX, NAME~=REGEX, query:...; conditions joined with ',')")
	c.Flags().BoolVar(&clearRoutes, "clear-routes", false, "remove every --route rule (before adding new ones)")
	return c
}

func newServiceDeleteCmd(g *globals) *cobra.Command {
	return newDeleteCmd(g, "Function", "Delete functions with their revisions", (*adminclient.Client).DeleteFunction)
}

func newServiceListCmd(g *globals) *cobra.Command {
	return newListCmd(g, "functions", "List functions", (*adminclient.Client).ListFunctions, printServiceList)
}

func printServiceList(t *table, list *api.FunctionList) {
	t.header("NAMESPACE", "NAME", "URL", "LATEST", "AGE", "READY", "REASON")
	for _, f := range list.Items {
		ready, reason := conditionColumns(f.Status.GetCondition(api.ConditionReady))
		t.row(f.Namespace, f.Name, f.Status.URL, f.Status.LatestReadyRevisionName, age(f.CreationTimestamp.Time), ready, reason)
	}
}

func newServiceDescribeCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a function: URLs, revisions, traffic and conditions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			f, raw, err := c.GetFunction(ctx, g.namespace, args[0])
			if err != nil {
				return err
			}
			revs, _, err := c.ListRevisions(ctx, g.namespace, f.Name)
			if err != nil {
				return err
			}
			return g.print(raw, func(t *table) { describeFunction(t, f, revs.Items) })
		},
	}
	g.addOutputFlag(c)
	return c
}
