package autoscaler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const configFile = "../config/autoscaler.yaml"

// TestConfigFileIsDefault keeps config/autoscaler.yaml and DefaultConfig in
// step, and makes sure the file documents every key.
func TestConfigFileIsDefault(t *testing.T) {
	cfg, err := LoadConfig(configFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg != DefaultConfig() {
		t.Errorf("%s:\n got %+v\nwant %+v", configFile, cfg, DefaultConfig())
	}
	data, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range configKeys {
		if !strings.Contains(string(data), "\n"+k+":") && !strings.Contains(string(data), k) {
			t.Errorf("%s does not mention %s", configFile, k)
		}
		if k == "pod-autoscaler-class" {
			continue
		}
		// Every key is set, with a comment right above it.
		i := strings.Index(string(data), "\n"+k+": ")
		if i < 0 {
			t.Errorf("%s does not set %s", configFile, k)
			continue
		}
		before := strings.Split(string(data[:i]), "\n")
		if !strings.HasPrefix(before[len(before)-1], "#") {
			t.Errorf("%s: %s has no comment above it", configFile, k)
		}
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseConfig(t *testing.T) {
	def := DefaultConfig()
	with := func(f func(*Config)) Config {
		c := def
		f(&c)
		return c
	}
	tests := []struct {
		name string
		doc  string
		want Config
	}{
		{name: "empty", doc: "", want: def},
		{name: "comments only", doc: "# nothing\n", want: def},
		{name: "flat", doc: "stable-window: 2m\nmin-scale: 1\nenable-scale-to-zero: false\ntarget-burst-capacity: -1\n",
			want: with(func(c *Config) {
				c.StableWindow, c.MinScale, c.EnableScaleToZero, c.TargetBurstCapacity = 2*time.Minute, 1, false, -1
			})},
		{name: "quoted values", doc: `max-scale-up-rate: "10"` + "\n" + `allow-zero-initial-scale: "true"` + "\ninitial-scale: 0\n",
			want: with(func(c *Config) { c.MaxScaleUpRate, c.AllowZeroInitialScale, c.InitialScale = 10, true, 0 })},
		{name: "fraction percentage", doc: "container-concurrency-target-percentage: 0.85\n",
			want: with(func(c *Config) { c.ContainerConcurrencyTargetPercentage = 85 })},
		{name: "knative ConfigMap", doc: `
apiVersion: v1
kind: ConfigMap
metadata:
  name: config-autoscaler
  namespace: knative-serving
data:
  _example: |
    ignored documentation
  pod-autoscaler-class: kpa.autoscaling.knative.dev
  scale-to-zero-grace-period: 45s
  container-concurrency-target-default: "50"
`, want: with(func(c *Config) { c.ScaleToZeroGracePeriod, c.ContainerConcurrencyTargetDefault = 45*time.Second, 50 })},
		{name: "json", doc: `{"activator-capacity": 7, "activation-timeout": "1m"}`,
			want: with(func(c *Config) { c.ActivatorCapacity, c.ActivationTimeout = 7, time.Minute })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestConfigErrors checks that every rejected value is reported with its
// key, and what it accepts.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		doc  string
		want []string // substrings of the error
	}{
		{"stable-window: 60\n", []string{"stable-window", `"60" is not a duration`}},
		{"stable-window: 5s\n", []string{"stable-window: 5s must be between 6s and 1h0m0s"}},
		{"stable-window: 6500ms\n", []string{"stable-window", "whole seconds"}},
		{"min-scale: 1.5\n", []string{"min-scale", "whole number"}},
		{"min-scale: -1\n", []string{"min-scale: -1 must be 0 or more"}},
		{"min-scale: 3\nmax-scale: 2\n", []string{"min-scale: 3 is greater than max-scale (2)"}},
		{"max-scale-limit: 5\n", []string{"max-scale: 0 must be between 1 and max-scale-limit (5)"}},
		{"max-scale-limit: -5\n", []string{"max-scale-limit: -5"}},
		{"max-scale: -1\n", []string{"max-scale: -1"}},
		{"enable-scale-to-zero: maybe\n", []string{"enable-scale-to-zero", "true or false"}},
		{"initial-scale: 0\n", []string{"initial-scale: 0", "allow-zero-initial-scale: true"}},
		{"container-concurrency-target-percentage: 150\n", []string{"container-concurrency-target-percentage: 150 is outside (0, 100]"}},
		{"container-concurrency-target-default: 0.001\n", []string{"container-concurrency-target-default", "at least 0.01"}},
		{"requests-per-second-target-default: 0\n", []string{"requests-per-second-target-default: 0 must be at least 0.01"}},
		{"target-burst-capacity: -3\n", []string{"target-burst-capacity: -3", "-1 for unlimited"}},
		{"panic-window-percentage: 0\n", []string{"panic-window-percentage: 0 must be between 1 and 100"}},
		{"panic-threshold-percentage: 100\n", []string{"panic-threshold-percentage: 100 must be between 110 and 1000"}},
		{"max-scale-up-rate: 1\n", []string{"max-scale-up-rate: 1 must be greater than 1"}},
		{"max-scale-down-rate: 0.5\n", []string{"max-scale-down-rate: 0.5 must be greater than 1"}},
		{"scale-to-zero-grace-period: 0s\n", []string{"scale-to-zero-grace-period: 0s must be positive"}},
		{"scale-to-zero-pod-retention-period: -1s\n", []string{"scale-to-zero-pod-retention-period: -1s"}},
		{"scale-down-delay: 500ms\n", []string{"scale-down-delay: 500ms", "whole seconds"}},
		{"activator-capacity: 0\n", []string{"activator-capacity: 0 must be at least 1"}},
		{"activation-timeout: 0s\n", []string{"activation-timeout: 0s must be positive"}},
		{"stable-windw: 60s\n", []string{"stable-windw: unknown key", "stable-window"}},
		{"pod-autoscaler-class: hpa.autoscaling.knative.dev\n", []string{"pod-autoscaler-class", "only kpa.autoscaling.knative.dev"}},
		{"min-scale:\n", []string{"min-scale has no value"}},
		{"min-scale: [1]\n", []string{"min-scale must be a single value"}},
		{"- a\n- b\n", []string{"not a YAML mapping"}},
		{"kind: ConfigMap\ndata: [1]\n", []string{"ConfigMap data must be a mapping"}},
		// Every error is reported, not just the first.
		{"min-scale: x\nmax-scale: z\nactivation-timeout: 1\n", []string{"min-scale", "max-scale", "activation-timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.doc, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.doc))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("stable-window: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "stable-window") {
		t.Errorf("invalid file: %v, want the path and the key", err)
	}
}

// TestLoadConfigFromMountedConfigMap reads config/base/config-autoscaler
// as the kubelet mounts it: one file per key, plus its ..data links.
func TestLoadConfigFromMountedConfigMap(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{"stable-window": "90s", "max-scale": "7\n", "..data": "ignored"} {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StableWindow != 90*time.Second || cfg.MaxScale != 7 {
		t.Fatalf("stable window %s, max scale %d; want 90s and 7", cfg.StableWindow, cfg.MaxScale)
	}
	if _, err := LoadConfig(filepath.Join("..", "config", "base", "config-autoscaler.yaml")); err != nil {
		t.Fatalf("the shipped ConfigMap: %v", err)
	}
}
