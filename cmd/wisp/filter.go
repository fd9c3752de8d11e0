package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/functions/oci"
	"github.com/wisp-faas/wisp/internal/adminclient"
)

// filterFlags shape a Filter's spec; create and update share them, and
// update changes only what was given.
type filterFlags struct {
	source       string
	sha256       string
	functions    []string
	selector     []string
	config       string
	phase        string
	priority     int32
	failStrategy string
	pullPolicy   string
	plainHTTP    bool
	pluginName   string
	env          []string
	labels       []string
}

func (ff *filterFlags) register(f *pflag.FlagSet) {
	f.StringVar(&ff.source, "source", "", "the module: oci://REGISTRY/REPO:TAG, a local .wasm file (uploaded to the node), or sha256:HEX of an uploaded one")
	f.StringVar(&ff.sha256, "sha256", "", "sha256 the module must have (64 hex digits, as Istio's WasmPlugin sha256); '' clears it")
	f.StringArrayVar(&ff.functions, "function", nil, "run for this function; FN- removes it (repeatable; none and no --selector: every function of the namespace)")
	f.StringArrayVar(&ff.selector, "selector", nil, "run for functions with this label KEY=value; KEY- removes it (repeatable)")
	f.StringVar(&ff.config, "config", "", "plugin configuration given to proxy_on_configure: JSON, or @FILE of JSON or YAML; '' clears it")
	f.StringVar(&ff.phase, "phase", "", "place in the chain: authn, authz, stats, or unspecified (last, as in Istio)")
	f.Int32Var(&ff.priority, "priority", 0, "order within the phase: higher runs first")
	f.StringVar(&ff.failStrategy, "fail-strategy", "", "when the filter cannot run: close (answer 503; the default) or open (skip it)")
	f.StringVar(&ff.pullPolicy, "pull-policy", "", "for an oci:// source: if-not-present (the default) or always")
	f.BoolVar(&ff.plainHTTP, "plain-http", false, "pull the oci:// source over plain HTTP (local registries)")
	f.StringVar(&ff.pluginName, "plugin-name", "", "root_id of the plugin, for modules that hold several")
	f.StringArrayVarP(&ff.env, "env", "e", nil, "environment variable NAME=value of the filter's VM; NAME- removes it (repeatable)")
	f.StringArrayVarP(&ff.labels, "label", "l", nil, "label KEY=value on the filter; KEY- removes it (repeatable)")
}

// resolveSource uploads a local file given as --source and returns the
// source to store: the file's digest, or the reference as given.
func (ff *filterFlags) resolveSource(ctx context.Context, c *adminclient.Client) (string, error) {
	s := ff.source
	if strings.HasPrefix(s, "oci://") || strings.HasPrefix(s, "sha256:") {
		return s, nil
	}
	f, err := os.Open(s)
	if err != nil {
		return "", fmt.Errorf("--source %s is neither oci://REGISTRY/REPO:TAG, sha256:HEX nor a readable file: %w", s, err)
	}
	defer f.Close()
	digest, err := c.UploadModule(ctx, f)
	if err != nil {
		return "", fmt.Errorf("--source %s: %w", s, err)
	}
	return digest, nil
}

// apply edits f by the flags that were set; source is --source resolved.
func (ff *filterFlags) apply(fl *pflag.FlagSet, f *api.Filter, source string) error {
	spec := &f.Spec
	if fl.Changed("source") {
		spec.Source = source
	}
	if fl.Changed("sha256") {
		spec.SHA256 = strings.TrimPrefix(ff.sha256, "sha256:")
	}
	if fl.Changed("config") {
		cfg, err := readConfig(ff.config)
		if err != nil {
			return err
		}
		spec.PluginConfig = cfg
	}
	if fl.Changed("phase") {
		p := strings.ToUpper(ff.phase)
		switch p {
		case "UNSPECIFIED", api.PhaseUnspecified:
			p = ""
		case "", api.PhaseAuthN, api.PhaseAuthZ, api.PhaseStats:
		default:
			return fmt.Errorf("--phase %q: use authn, authz, stats or unspecified", ff.phase)
		}
		spec.Phase = p
	}
	if fl.Changed("priority") {
		spec.Priority = ff.priority
	}
	if fl.Changed("fail-strategy") {
		switch strings.ToLower(ff.failStrategy) {
		case "close", "fail_close":
			spec.FailStrategy = api.FailClose
		case "open", "fail_open":
			spec.FailStrategy = api.FailOpen
		default:
			return fmt.Errorf("--fail-strategy %q: use close (answer 503) or open (skip the filter)", ff.failStrategy)
		}
	}
	if fl.Changed("pull-policy") {
		switch strings.ToLower(ff.pullPolicy) {
		case "if-not-present", "ifnotpresent":
			spec.ImagePullPolicy = api.PullIfNotPresent
		case "always":
			spec.ImagePullPolicy = api.PullAlways
		default:
			return fmt.Errorf("--pull-policy %q: use if-not-present or always", ff.pullPolicy)
		}
	}
	if fl.Changed("plain-http") {
		spec.PlainHTTP = ff.plainHTTP
	}
	if fl.Changed("plugin-name") {
		spec.PluginName = ff.pluginName
	}
	if err := ff.applySelector(f); err != nil {
		return err
	}
	if len(ff.env) > 0 {
		if err := ff.applyEnv(f); err != nil {
			return err
		}
	}
	var err error
	if f.Labels, err = editMap(f.Labels, ff.labels); err != nil {
		return fmt.Errorf("--label: %w", err)
	}
	return nil
}

func (ff *filterFlags) applySelector(f *api.Filter) error {
	if len(ff.functions) == 0 && len(ff.selector) == 0 {
		return nil
	}
	sel := f.Spec.Selector
	if sel == nil {
		sel = &api.FilterSelector{}
	}
	for _, fn := range ff.functions {
		if name, ok := strings.CutSuffix(fn, "-"); ok {
			sel.Functions = slices.DeleteFunc(sel.Functions, func(s string) bool { return s == name })
		} else if !slices.Contains(sel.Functions, fn) {
			sel.Functions = append(sel.Functions, fn)
		}
	}
	var err error
	if sel.MatchLabels, err = editMap(sel.MatchLabels, ff.selector); err != nil {
		return fmt.Errorf("--selector: %w", err)
	}
	if len(sel.Functions) == 0 && len(sel.MatchLabels) == 0 {
		sel = nil
	}
	f.Spec.Selector = sel
	return nil
}

func (ff *filterFlags) applyEnv(f *api.Filter) error {
	var env []api.EnvVar
	if f.Spec.VMConfig != nil {
		for _, e := range f.Spec.VMConfig.Env {
			if e.ValueFrom == api.EnvHost {
				continue // kept below, untouched by --env
			}
			env = append(env, api.EnvVar{Name: e.Name, Value: e.Value})
		}
	}
	env, err := editEnv(env, ff.env)
	if err != nil {
		return fmt.Errorf("--env: %w", err)
	}
	var out []api.FilterEnvVar
	if f.Spec.VMConfig != nil {
		for _, e := range f.Spec.VMConfig.Env {
			if e.ValueFrom == api.EnvHost {
				out = append(out, e)
			}
		}
	}
	for _, e := range env {
		out = append(out, api.FilterEnvVar{Name: e.Name, Value: e.Value})
	}
	f.Spec.VMConfig = nil
	if len(out) > 0 {
		f.Spec.VMConfig = &api.FilterVMConfig{Env: out}
	}
	return nil
}

// readConfig reads --config: JSON inline, or @FILE holding JSON or YAML;
// empty clears it.
func readConfig(v string) (json.RawMessage, error) {
	if v == "" {
		return nil, nil
	}
	if path, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		js, err := yaml.YAMLToJSON(b)
		if err != nil {
			return nil, fmt.Errorf("--config %s is neither JSON nor YAML: %w", v, err)
		}
		return js, nil
	}
	if !json.Valid([]byte(v)) {
		return nil, fmt.Errorf("--config is not valid JSON (quote a plain-text config as '\"text\"', or pass @FILE for YAML)")
	}
	return json.RawMessage(v), nil
}

func newFilterCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "filter",
		Aliases: []string{"filters"},
		Short:   "Create, update, delete, list, describe and export proxy-wasm filters of the gateway",
	}
	c.AddCommand(newFilterCreateCmd(g), newFilterUpdateCmd(g), newFilterDeleteCmd(g), newFilterListCmd(g), newFilterDescribeCmd(g), newFilterExportCmd(g))
	return c
}

func newFilterCreateCmd(g *globals) *cobra.Command {
	var ff filterFlags
	var force bool
	c := &cobra.Command{
		Use:   "create NAME --source oci://REF|FILE [flags]",
		Short: "Create a filter",
		Example: `  wisp filter create auth --source oci://ghcr.io/acme/filters/auth:v1 --phase authn --config '{"header":"x-api-key"}'
  wisp filter create auth --source ./auth.wasm --function shop --function cart
  wisp filter create stats --source oci://127.0.0.1:5000/filters/stats:v1 --plain-http --phase stats --selector tier=web --fail-strategy open`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ff.source == "" {
				return fmt.Errorf("a filter needs a module: give --source oci://REGISTRY/REPO:TAG or --source FILE.wasm")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			source, err := ff.resolveSource(ctx, c)
			if err != nil {
				return err
			}
			f := &api.Filter{}
			f.APIVersion, f.Kind = api.APIVersion, api.KindFilter
			f.Name, f.Namespace = args[0], g.namespace
			if err := ff.apply(cmd.Flags(), f, source); err != nil {
				return err
			}
			verb := "created"
			_, err = c.CreateFilter(ctx, f)
			if err != nil && force && adminclient.IsAlreadyExists(err) {
				verb = "replaced"
				_, err = c.UpdateFilter(ctx, f)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Filter '%s' %s in namespace '%s'.\n", f.Name, verb, f.Namespace)
			return nil
		},
	}
	ff.register(c.Flags())
	c.Flags().BoolVar(&force, "force", false, "replace the filter if it already exists")
	return c
}

func newFilterUpdateCmd(g *globals) *cobra.Command {
	var ff filterFlags
	c := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Update a filter; only the flags given change",
		Example: `  wisp filter update auth --source oci://ghcr.io/acme/filters/auth:v2
  wisp filter update auth --function cart- --selector tier=web --priority 10`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			source := ""
			if cmd.Flags().Changed("source") {
				if source, err = ff.resolveSource(ctx, c); err != nil {
					return err
				}
			}
			// Read, edit, write with the resourceVersion read; retry on conflicts.
			for attempt := 0; ; attempt++ {
				f, _, err := c.GetFilter(ctx, g.namespace, args[0])
				if err != nil {
					return err
				}
				if err := ff.apply(cmd.Flags(), f, source); err != nil {
					return err
				}
				_, err = c.UpdateFilter(ctx, f)
				if adminclient.IsConflict(err) && attempt < 5 {
					continue
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(g.out, "Filter '%s' updated in namespace '%s'.\n", f.Name, f.Namespace)
				return nil
			}
		},
	}
	ff.register(c.Flags())
	return c
}

func newFilterDeleteCmd(g *globals) *cobra.Command {
	return newDeleteCmd(g, "Filter", "Delete filters", (*adminclient.Client).DeleteFilter)
}

func newFilterListCmd(g *globals) *cobra.Command {
	return newListCmd(g, "filters", "List filters in chain order", (*adminclient.Client).ListFilters, printFilterList)
}

func printFilterList(t *table, list *api.FilterList) {
	items := make([]*api.Filter, len(list.Items))
	for i := range list.Items {
		items[i] = &list.Items[i]
	}
	slices.SortFunc(items, api.CompareFilters)
	t.header("NAMESPACE", "NAME", "PHASE", "PRIORITY", "FUNCTIONS", "SOURCE", "AGE", "READY", "REASON")
	for _, f := range items {
		ready, reason := conditionColumns(f.Status.GetCondition(api.ConditionReady))
		t.row(f.Namespace, f.Name, phaseString(f.Spec.Phase), strconv.Itoa(int(f.Spec.Priority)), selectorString(f.Spec.Selector),
			f.Spec.Source, age(f.CreationTimestamp.Time), ready, reason)
	}
}

func newFilterDescribeCmd(g *globals) *cobra.Command {
	return newDescribeCmd(g, "Show a filter: its module, place in the chain, functions and status", (*adminclient.Client).GetFilter, describeFilter)
}

func describeFilter(t *table, f *api.Filter) {
	s := &f.Spec
	t.line("Name", f.Name)
	t.line("Namespace", f.Namespace)
	t.line("Age", age(f.CreationTimestamp.Time))
	t.line("Source", s.Source)
	if s.SHA256 != "" {
		t.line("SHA256", s.SHA256)
	}
	if f.Status.ResolvedModule != "" {
		t.line("Resolved module", f.Status.ResolvedModule)
	}
	t.line("Phase", phaseString(s.Phase))
	t.line("Priority", s.Priority)
	t.line("Functions", selectorString(s.Selector))
	t.line("Fail strategy", s.FailStrategy)
	if strings.HasPrefix(s.Source, "oci://") {
		t.line("Pull policy", s.ImagePullPolicy)
		if s.PlainHTTP {
			t.line("Plain HTTP", true)
		}
	}
	if s.PluginName != "" {
		t.line("Plugin name", s.PluginName)
	}
	if len(s.PluginConfig) > 0 {
		t.line("Config", string(s.PluginConfig))
	}
	if s.VMConfig != nil {
		for _, e := range s.VMConfig.Env {
			v := e.Value
			if e.ValueFrom == api.EnvHost {
				v = "(from the node's environment)"
			}
			t.line("Env "+e.Name, v)
		}
	}
	fmt.Fprintln(t.w)
	fmt.Fprintln(t.w, "Conditions:")
	for _, c := range f.Status.Conditions {
		fmt.Fprintf(t.w, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
}

func newFilterExportCmd(g *globals) *cobra.Command {
	var format, output string
	var rf registryFlags
	c := &cobra.Command{
		Use:   "export NAME [--format wisp|istio] [-o yaml|json]",
		Short: "Write a filter out as a manifest: a wisp Filter, or an Istio WasmPlugin pinned to its module's digest",
		Long: `Write a filter out as a manifest, without its status and server-set metadata.

--format wisp (the default) writes the wisp.dev/v1alpha1 Filter, for
'wisp apply -f'. --format istio writes an Istio extensions.istio.io/v1alpha1
WasmPlugin that runs the same module with the same configuration in an
Istio mesh: its url is pinned to the manifest digest that the source's tag
names now (asked of the registry, with the flags below; a source already
pinned needs no registry), its selector picks the filter's function by the
Knative label serving.knative.dev/service. What Istio cannot express (an
uploaded module, several functions, a configuration that is not an object)
is an error naming the field. 'wisp apply -f' reads the WasmPlugin back.`,
		Example: `  wisp filter export api-key > api-key.yaml
  wisp filter export api-key --format istio | kubectl apply -f -
  wisp filter export stats --format istio --plain-http -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "yaml" && output != "json" {
				return fmt.Errorf("-o %q: use yaml or json", output)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			f, _, err := c.GetFilter(ctx, g.namespace, args[0])
			if err != nil {
				return err
			}
			inspect := func(ctx context.Context, ref string, plainHTTP bool) (oci.Info, error) {
				opts := rf.options(g.errOut)
				opts.Progress = nil
				opts.PlainHTTP = opts.PlainHTTP || plainHTTP
				return oci.Inspect(ctx, ref, opts)
			}
			obj, err := exportFilter(ctx, f, format, inspect, g.errOut)
			if err != nil {
				return err
			}
			b, err := renderManifest(obj, output)
			if err != nil {
				return err
			}
			_, err = g.out.Write(b)
			return err
		},
	}
	c.Flags().StringVar(&format, "format", "wisp", "manifest to write: wisp (a Filter) or istio (an Istio WasmPlugin)")
	c.Flags().StringVarP(&output, "output", "o", "yaml", "yaml or json")
	rf.register(c.Flags())
	return c
}

// inspectFunc describes what an oci:// reference points at now; plainHTTP
// is the Filter's spec.plainHTTP.
type inspectFunc func(ctx context.Context, ref string, plainHTTP bool) (oci.Info, error)

// exportFilter returns f as the manifest of format: a clean Filter for
// "wisp", an Istio WasmPlugin for "istio". For a WasmPlugin an unpinned
// oci:// source is pinned to the manifest digest inspect finds; a layout
// Istio cannot read is warned about on warn.
func exportFilter(ctx context.Context, f *api.Filter, format string, inspect inspectFunc, warn io.Writer) (any, error) {
	clean := &api.Filter{
		TypeMeta: metav1.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindFilter},
		ObjectMeta: metav1.ObjectMeta{
			Name: f.Name, Namespace: f.Namespace, Labels: f.Labels, Annotations: f.Annotations,
		},
		Spec: f.Spec,
	}
	switch strings.ToLower(format) {
	case "wisp", "filter":
		return clean, nil
	case "istio", "wasmplugin":
	default:
		return nil, fmt.Errorf("--format %q: use wisp (a Filter) or istio (an Istio WasmPlugin)", format)
	}
	digest := ""
	if ref, ok := strings.CutPrefix(f.Spec.Source, "oci://"); ok && !strings.Contains(ref, "@") {
		info, err := inspect(ctx, f.Spec.Source, f.Spec.PlainHTTP)
		if err != nil {
			return nil, fmt.Errorf("pinning filter %s's source %s to a digest: %w", f.Name, f.Spec.Source, err)
		}
		digest = info.ManifestDigest
		switch n := len(info.Manifests); {
		case n == 1:
			// An index of one manifest: wisp pulls that manifest, and
			// Istio checks the digest of that manifest, not the index's.
			digest = info.Manifests[0].Digest
		case n > 1:
			return nil, fmt.Errorf("pinning filter %s's source %s: an image index of %d manifests, which neither wisp nor Istio picks from; push the module with 'wisp plugin push'", f.Name, f.Spec.Source, n)
		default:
			if reads := istioReads(info); strings.HasPrefix(reads, "no") {
				fmt.Fprintf(warn, "Warning: Istio cannot read %s@%s: %s\n", ref, digest, strings.TrimPrefix(reads, "no: "))
			}
		}
	}
	return api.FilterToWasmPlugin(clean, digest)
}

// renderManifest writes a manifest as YAML or indented JSON, without the
// creationTimestamp: null that an unsaved object's metadata marshals to,
// nor an empty status.
func renderManifest(obj any, output string) ([]byte, error) {
	js, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding the manifest: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("encoding the manifest: %w", err)
	}
	if md, ok := m["metadata"].(map[string]any); ok && md["creationTimestamp"] == nil {
		delete(md, "creationTimestamp")
	}
	if st, ok := m["status"].(map[string]any); ok && len(st) == 0 {
		delete(m, "status") // a Filter's status is a struct, never left out
	}
	if output == "json" {
		b, err := json.MarshalIndent(m, "", "  ")
		return append(b, '\n'), err
	}
	js, _ = json.Marshal(m)
	b, err := yaml.JSONToYAML(js)
	if err != nil {
		return nil, fmt.Errorf("converting the manifest to YAML: %w", err)
	}
	return b, nil
}

func phaseString(p string) string {
	if p == "" {
		return api.PhaseUnspecified
	}
	return p
}

// selectorString renders a selector as "all", "shop,cart", "tier=web" or
// both joined by " & ".
func selectorString(s *api.FilterSelector) string {
	if s == nil || len(s.Functions) == 0 && len(s.MatchLabels) == 0 {
		return "all"
	}
	var parts []string
	if len(s.Functions) > 0 {
		parts = append(parts, strings.Join(s.Functions, ","))
	}
	if len(s.MatchLabels) > 0 {
		keys := make([]string, 0, len(s.MatchLabels))
		for k := range s.MatchLabels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			keys[i] = k + "=" + s.MatchLabels[k]
		}
		parts = append(parts, strings.Join(keys, ","))
	}
	return strings.Join(parts, " & ")
}

// applyFilter creates f, or updates the stored Filter to f's spec,
// labels and annotations, retrying on conflicts.
func applyFilter(ctx context.Context, c *adminclient.Client, f *api.Filter) (string, error) {
	for attempt := 0; ; attempt++ {
		cur, _, err := c.GetFilter(ctx, f.Namespace, f.Name)
		if adminclient.IsNotFound(err) {
			_, err := c.CreateFilter(ctx, f)
			if adminclient.IsAlreadyExists(err) && attempt < 5 {
				continue
			}
			return "created", err
		}
		if err != nil {
			return "", err
		}
		next := cur.DeepCopy()
		next.Spec = f.Spec
		next.Labels, next.Annotations = f.Labels, f.Annotations
		next.SetDefaults()
		cur.SetDefaults() // compacts pluginConfig as the API indented it
		if reflect.DeepEqual(next.Spec, cur.Spec) && reflect.DeepEqual(next.Labels, cur.Labels) && reflect.DeepEqual(next.Annotations, cur.Annotations) {
			return "unchanged", nil
		}
		_, err = c.UpdateFilter(ctx, next)
		if adminclient.IsConflict(err) && attempt < 5 {
			continue
		}
		return "configured", err
	}
}
