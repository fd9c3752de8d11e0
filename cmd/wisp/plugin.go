package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wisp-faas/wisp/functions/modules"
	"github.com/wisp-faas/wisp/functions/oci"
)

// registryFlags are oras' flags for reaching a registry, shared by the
// plugin commands.
type registryFlags struct {
	username, password string
	dockerConfig       string
	plainHTTP          bool
	insecure           bool
	progress           bool
}

func (rf *registryFlags) register(f *pflag.FlagSet) {
	f.StringVarP(&rf.username, "username", "u", "", "registry username (default: from Docker's config.json)")
	f.StringVarP(&rf.password, "password", "p", "", "registry password or token (default: from Docker's config.json)")
	f.StringVar(&rf.dockerConfig, "registry-config", "", "Docker config.json to take credentials from (default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json)")
	f.BoolVar(&rf.plainHTTP, "plain-http", false, "talk plain HTTP to the registry (local registries)")
	f.BoolVar(&rf.insecure, "insecure", false, "talk HTTPS without verifying the registry's certificate")
	f.BoolVar(&rf.progress, "progress", false, "show progress bars on stderr even when it is not a terminal")
}

// options turns the flags into oci.Options; progress bars go to errOut
// when it is a terminal or --progress was given.
func (rf *registryFlags) options(errOut io.Writer) oci.Options {
	opts := oci.Options{
		PlainHTTP:    rf.plainHTTP,
		Insecure:     rf.insecure,
		Username:     rf.username,
		Password:     rf.password,
		DockerConfig: rf.dockerConfig,
	}
	if rf.progress || isTerminal(errOut) {
		opts.Progress = newProgressBars(errOut).report
	}
	return opts
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBars draws one bar per blob, redrawn in place at most every
// 100ms, and ends the bar's line when the blob is complete. Blobs move one
// at a time, so one line is live at once.
type progressBars struct {
	w     io.Writer
	drawn map[string]time.Time
	done  map[string]bool
}

func newProgressBars(w io.Writer) *progressBars {
	return &progressBars{w: w, drawn: map[string]time.Time{}, done: map[string]bool{}}
}

func (p *progressBars) report(e oci.ProgressEvent) {
	if p.done[e.Digest] {
		return
	}
	complete := e.Done >= e.Total
	if !complete && time.Since(p.drawn[e.Digest]) < 100*time.Millisecond {
		return
	}
	p.drawn[e.Digest] = time.Now()
	const width = 30
	filled, pct := width, 100
	if e.Total > 0 {
		filled, pct = int(e.Done*width/e.Total), int(e.Done*100/e.Total)
	}
	short := strings.TrimPrefix(e.Digest, "sha256:")
	if len(short) > 12 {
		short = short[:12]
	}
	fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %s/%s  %s", short, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), pct, bytesString(e.Done), bytesString(e.Total), e.MediaType)
	if complete {
		p.done[e.Digest] = true
		fmt.Fprintln(p.w)
	}
}

// bytesString renders n as B, KiB or MiB.
func bytesString(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%dB", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
}

func newPluginCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "plugin",
		Aliases: []string{"plugins"},
		Short:   "Push, pull and inspect proxy-wasm filter modules in OCI registries (ORAS)",
		Long: `Push, pull and inspect proxy-wasm filter modules in OCI registries.

push writes the artifact Istio's WasmPlugin reads, so that one artifact
serves both wisp Filters and Istio. pull reads that layout, the CNCF Wasm
artifact (one application/wasm layer), a raw single-layer 'oras push', and
an OCI or Docker image whose last layer holds plugin.wasm.`,
	}
	c.AddCommand(newPluginPushCmd(g), newPluginPullCmd(g), newPluginInspectCmd(g))
	return c
}

func newPluginPushCmd(g *globals) *cobra.Command {
	var rf registryFlags
	c := &cobra.Command{
		Use:   "push FILE.wasm REGISTRY/REPOSITORY[:TAG]",
		Short: "Push a Wasm module as an artifact Istio's WasmPlugin and wisp Filters read",
		Long: `Push a compiled Wasm module to an OCI registry and print the manifest digest.

The artifact is the one Istio's WasmPlugin fetcher (istio/istio
pkg/wasm/imagefetcher.go) accepts as its "oci" variant: an OCI image
manifest whose config is application/vnd.module.wasm.config.v1+json and
whose layers are exactly two, that config blob and the module as
application/vnd.module.wasm.content.layer.v1+wasm. Istio refuses a single
layer ("number of layers must be 2"). The tag defaults to latest.`,
		Example: `  wisp plugin push auth.wasm ghcr.io/acme/filters/auth:v1
  wisp plugin push auth.wasm 127.0.0.1:5000/filters/auth:v1 --plain-http`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, ref := args[0], args[1]
			wasm, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("reading the module: %w", err)
			}
			r, err := oci.ParseReference(ref)
			if err != nil {
				return err
			}
			manifest, err := oci.Push(cmd.Context(), wasm, ref, rf.options(g.errOut))
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Pushed %s\nDigest: %s\nModule sha256: %s\n", r, manifest, digest.FromBytes(wasm).Encoded())
			return nil
		},
	}
	rf.register(c.Flags())
	return c
}

func newPluginPullCmd(g *globals) *cobra.Command {
	var rf registryFlags
	var out, sha string
	c := &cobra.Command{
		Use:   "pull REGISTRY/REPOSITORY[:TAG|@DIGEST] -o FILE",
		Short: "Pull a Wasm module from an OCI registry into a file",
		Example: `  wisp plugin pull ghcr.io/acme/filters/auth:v1 -o auth.wasm
  wisp plugin pull 127.0.0.1:5000/filters/auth:v1 --plain-http -o - > auth.wasm
  wisp plugin pull ghcr.io/acme/filters/auth:v1 -o auth.wasm --sha256 3f0a...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("give the file to write with -o FILE (or -o - for standard output)")
			}
			tmp, err := os.MkdirTemp("", "wisp-pull-")
			if err != nil {
				return fmt.Errorf("creating a scratch module store: %w", err)
			}
			defer os.RemoveAll(tmp)
			store, err := modules.Open(tmp)
			if err != nil {
				return err
			}
			opts := rf.options(g.errOut)
			opts.Cache, opts.ModuleSHA256, opts.Policy = store, sha, oci.PullAlways
			p, err := oci.Pull(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			wasm, err := store.Get(p.ModuleDigest)
			if err != nil {
				return fmt.Errorf("reading the pulled module: %w", err)
			}
			if out == "-" {
				_, err := g.out.Write(wasm)
				return err
			}
			if err := writeFileAtomic(out, wasm); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Pulled %s (%s layout, %s)\nModule sha256: %s\nSaved %s\n",
				p.Ref, p.Format, bytesString(p.Size), strings.TrimPrefix(p.ModuleDigest, "sha256:"), out)
			return nil
		},
	}
	rf.register(c.Flags())
	c.Flags().StringVarP(&out, "output", "o", "", "file to write the module to, - for standard output")
	c.Flags().StringVar(&sha, "sha256", "", "refuse the module unless its sha256 is this (64 hex digits, as Istio's WasmPlugin sha256)")
	return c
}

// writeFileAtomic writes data to path through a temporary file in the
// same directory, so that a failed pull never leaves half a module.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".wisp-pull-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func newPluginInspectCmd(g *globals) *cobra.Command {
	var rf registryFlags
	c := &cobra.Command{
		Use:   "inspect REGISTRY/REPOSITORY[:TAG|@DIGEST]",
		Short: "Show what a reference points at, and whether wisp and Istio read it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := oci.Inspect(cmd.Context(), args[0], rf.options(g.errOut))
			if err != nil {
				return err
			}
			raw, err := json.MarshalIndent(info, "", "  ")
			if err != nil {
				return fmt.Errorf("encoding the manifest description: %w", err)
			}
			return g.print(append(raw, '\n'), func(t *table) { describePlugin(t, info) })
		},
	}
	rf.register(c.Flags())
	g.addOutputFlag(c)
	return c
}

func describePlugin(t *table, info oci.Info) {
	t.line("Reference", info.Ref.String())
	t.line("Manifest", info.ManifestDigest+" ("+info.MediaType+")")
	if info.ArtifactType != "" {
		t.line("Artifact type", info.ArtifactType)
	}
	if info.Config != nil {
		t.line("Config", fmt.Sprintf("%s %s %s", info.Config.MediaType, info.Config.Digest, bytesString(info.Config.Size)))
	}
	if len(info.Layers) > 0 {
		fmt.Fprintln(t.w, "Layers:")
		for _, l := range info.Layers {
			fmt.Fprintf(t.w, "  %s\t%s\t%s\t%s\n", l.MediaType, l.Digest, bytesString(l.Size), l.Annotations["org.opencontainers.image.title"])
		}
	}
	if len(info.Manifests) > 0 {
		fmt.Fprintln(t.w, "Manifests:")
		for _, m := range info.Manifests {
			fmt.Fprintf(t.w, "  %s\t%s\t%s\n", m.Platform, m.Digest, m.MediaType)
		}
	}
	if info.Format != "" {
		t.line("wisp reads it", "yes, "+string(info.Format)+" layout")
	} else {
		t.line("wisp reads it", "no: "+info.FormatError)
	}
	t.line("Istio reads it", istioReads(info))
}

// istioReads says whether Istio's WasmPlugin fetcher reads the layout:
// an image whose last layer is tar+gzip, or exactly two layers one of
// which is the module (istio/istio pkg/wasm/imagefetcher.go).
func istioReads(info oci.Info) string {
	switch {
	case info.Format == oci.FormatImage:
		return "yes, as an image holding plugin.wasm"
	case info.Format == oci.FormatModule && len(info.Layers) == 2:
		return "yes"
	case info.Format == oci.FormatModule:
		return fmt.Sprintf("no: %d layers, Istio wants exactly 2 (push it with 'wisp plugin push')", len(info.Layers))
	}
	return "no: Istio reads application/vnd.module.wasm.content.layer.v1+wasm in a two-layer manifest, or an image with plugin.wasm (push it with 'wisp plugin push')"
}
