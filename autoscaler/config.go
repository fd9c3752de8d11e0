package autoscaler

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Bounds shared by the configuration and the revision annotations. They are
// Knative's (knative.dev/serving/pkg/apis/autoscaling).
const (
	// WindowMin is the shortest stable window: the panic window must hold at
	// least one one-second bucket.
	WindowMin = 6 * time.Second
	// WindowMax is the longest stable window, scale-down delay and pod
	// retention period.
	WindowMax = time.Hour
	// TargetMin is the smallest per-instance target of either metric.
	TargetMin = 0.01
	// PanicWindowPercentageMin is the smallest panic window, in percent of
	// the stable window.
	PanicWindowPercentageMin = 1.0
	// PanicWindowPercentageMax is the largest panic window, in percent of
	// the stable window.
	PanicWindowPercentageMax = 100.0
	// PanicThresholdPercentageMin is the smallest panic threshold: load over
	// the panic window of 110% of what the ready instances can take.
	PanicThresholdPercentageMin = 110.0
	// PanicThresholdPercentageMax is the largest panic threshold.
	PanicThresholdPercentageMax = 1000.0
)

// rpsTargetUtilization is the utilization applied to
// requests-per-second-target-default. Knative does not make it configurable
// (autoscalerconfig.Config.TargetUtilization); only the
// target-utilization-percentage annotation overrides it.
const rpsTargetUtilization = 0.7

// KPAClass is the only value wisp accepts for the pod-autoscaler-class key
// and the autoscaling.knative.dev/class annotation.
const KPAClass = "kpa.autoscaling.knative.dev"

// Config is the node-wide autoscaler configuration: the data of Knative's
// config-autoscaler ConfigMap, with the same keys, defaults and rules. A
// revision's annotations override parts of it (see SpecFor).
//
// The zero value is not valid; start from DefaultConfig or LoadConfig.
type Config struct {
	// ContainerConcurrencyTargetDefault is the per-instance concurrency
	// the target is a percentage of, for revisions without a
	// containerConcurrency limit. Key container-concurrency-target-default.
	ContainerConcurrencyTargetDefault float64
	// ContainerConcurrencyTargetPercentage is the share of the concurrency
	// capacity (containerConcurrency or ContainerConcurrencyTargetDefault)
	// the autoscaler aims for, in percent (0, 100]. Key
	// container-concurrency-target-percentage; as in Knative, a value in
	// (0, 1] in the file is read as a fraction (0.7 means 70).
	ContainerConcurrencyTargetPercentage float64
	// RequestsPerSecondTargetDefault is the per-instance requests per second
	// capacity for the rps metric; the target is 70% of it. Key
	// requests-per-second-target-default.
	RequestsPerSecondTargetDefault float64
	// TargetBurstCapacity is the spare concurrency the revision should have
	// at all times, reported as Decision.ExcessBurstCapacity; 0 disables
	// it, -1 means unlimited. Key target-burst-capacity.
	TargetBurstCapacity float64
	// StableWindow is the averaging window of the stable mode, and how long
	// a revision must be idle before it can go to zero. Key stable-window.
	StableWindow time.Duration
	// PanicWindowPercentage is the panic window in percent of the stable
	// window. Key panic-window-percentage.
	PanicWindowPercentage float64
	// PanicThresholdPercentage is the load over the panic window, in
	// percent of the ready instances' target, that enters panic mode. Key
	// panic-threshold-percentage.
	PanicThresholdPercentage float64
	// MaxScaleUpRate bounds one decision to ceil(rate × ready) instances.
	// Key max-scale-up-rate.
	MaxScaleUpRate float64
	// MaxScaleDownRate bounds one decision to floor(ready / rate)
	// instances. Key max-scale-down-rate.
	MaxScaleDownRate float64
	// ScaleToZeroGracePeriod is how long a revision stays inactive, after a
	// stable window without traffic, before its last instance goes. Key
	// scale-to-zero-grace-period.
	ScaleToZeroGracePeriod time.Duration
	// ScaleToZeroPodRetentionPeriod is the least time the last instance is
	// kept once the revision is inactive; the longer of it and the grace
	// period applies. Key scale-to-zero-pod-retention-period.
	ScaleToZeroPodRetentionPeriod time.Duration
	// ScaleDownDelay is how long a lower decision must hold before it is
	// applied (the decision is the maximum over this window). Key
	// scale-down-delay.
	ScaleDownDelay time.Duration
	// InitialScale is how many instances a new revision starts with. Key
	// initial-scale.
	InitialScale int32
	// AllowZeroInitialScale permits InitialScale (and the initial-scale
	// annotation) to be 0. Key allow-zero-initial-scale.
	AllowZeroInitialScale bool
	// MinScale is the default lower bound of instances; 0 allows scale to
	// zero. Key min-scale.
	MinScale int32
	// MaxScale is the default upper bound of instances; 0 means no bound.
	// Key max-scale.
	MaxScale int32
	// MaxScaleLimit is the largest max-scale a revision may ask for; 0
	// means no limit. Key max-scale-limit.
	MaxScaleLimit int32
	// EnableScaleToZero lets idle revisions drop to zero instances; when
	// false they keep one. Key enable-scale-to-zero.
	EnableScaleToZero bool
	// ActivatorCapacity is the concurrency one activator takes. wisp runs
	// one activator in process, so it only matters in cluster mode. Key
	// activator-capacity.
	ActivatorCapacity float64
	// ActivationTimeout is how long a revision may wait for its first ready
	// instance before it is given up and scaled to zero. wisp-specific key
	// activation-timeout; Knative derives it from its deployment progress
	// deadline (600s) plus 30s.
	ActivationTimeout time.Duration
}

// DefaultConfig returns Knative's config-autoscaler defaults.
func DefaultConfig() Config {
	return Config{
		ContainerConcurrencyTargetDefault:    100,
		ContainerConcurrencyTargetPercentage: 70,
		RequestsPerSecondTargetDefault:       200,
		TargetBurstCapacity:                  211,
		StableWindow:                         60 * time.Second,
		PanicWindowPercentage:                10,
		PanicThresholdPercentage:             200,
		MaxScaleUpRate:                       1000,
		MaxScaleDownRate:                     2,
		ScaleToZeroGracePeriod:               30 * time.Second,
		ScaleToZeroPodRetentionPeriod:        0,
		ScaleDownDelay:                       0,
		InitialScale:                         1,
		AllowZeroInitialScale:                false,
		MinScale:                             0,
		MaxScale:                             0,
		MaxScaleLimit:                        0,
		EnableScaleToZero:                    true,
		ActivatorCapacity:                    100,
		ActivationTimeout:                    630 * time.Second,
	}
}

// configKeys are the keys ConfigFromMap reads, in file order.
var configKeys = []string{
	"container-concurrency-target-default",
	"container-concurrency-target-percentage",
	"requests-per-second-target-default",
	"target-burst-capacity",
	"stable-window",
	"panic-window-percentage",
	"panic-threshold-percentage",
	"max-scale-up-rate",
	"max-scale-down-rate",
	"scale-to-zero-grace-period",
	"scale-to-zero-pod-retention-period",
	"scale-down-delay",
	"initial-scale",
	"allow-zero-initial-scale",
	"min-scale",
	"max-scale",
	"max-scale-limit",
	"enable-scale-to-zero",
	"activator-capacity",
	"activation-timeout",
	"pod-autoscaler-class",
}

// LoadConfig reads a configuration file such as config/autoscaler.yaml. See
// ParseConfig for the format.
func LoadConfig(path string) (Config, error) {
	data, err := readConfig(path)
	if err != nil {
		return Config{}, fmt.Errorf("autoscaler config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// readConfig reads a file, or a directory of one file per key (a
// ConfigMap mounted as a volume), as a flat YAML mapping.
func readConfig(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil || !fi.IsDir() {
		return os.ReadFile(path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	data := map[string]string{}
	for _, e := range entries {
		// A mounted ConfigMap also holds ..data and ..<timestamp> links.
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(path, e.Name()))
		if err != nil {
			return nil, err
		}
		data[e.Name()] = strings.TrimSpace(string(b))
	}
	return yaml.Marshal(map[string]any{"kind": "ConfigMap", "data": data})
}

// ParseConfig reads YAML (or JSON): either a flat mapping of
// config-autoscaler keys to values, or a Kubernetes ConfigMap whose data
// holds them, so that Knative's config-autoscaler can be used as is. Keys
// left out keep their DefaultConfig value.
func ParseConfig(data []byte) (Config, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Config{}, fmt.Errorf("autoscaler config is not a YAML mapping of key: value: %w", err)
	}
	if kind, _ := doc["kind"].(string); kind == "ConfigMap" {
		d, ok := doc["data"].(map[string]any)
		if !ok && doc["data"] != nil {
			return Config{}, errors.New("autoscaler config: ConfigMap data must be a mapping of key: value")
		}
		doc = d
	}
	m := make(map[string]string, len(doc))
	for k, v := range doc {
		switch v := v.(type) {
		case string:
			m[k] = v
		case bool:
			m[k] = strconv.FormatBool(v)
		case float64:
			m[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case nil:
			return Config{}, fmt.Errorf("autoscaler config: %s has no value; give one or remove the key", k)
		default:
			return Config{}, fmt.Errorf("autoscaler config: %s must be a single value, not a list or a mapping", k)
		}
	}
	return ConfigFromMap(m)
}

// ConfigFromMap builds a Config from the data of a config-autoscaler
// ConfigMap: DefaultConfig, overridden by the keys present, then validated.
// Unknown keys are errors (so that a typo is not silently ignored), except
// Knative's "_example" documentation key.
func ConfigFromMap(data map[string]string) (Config, error) {
	cfg := DefaultConfig()
	var errs []error
	bad := func(key, value, want string) {
		errs = append(errs, fmt.Errorf("%s: %q is not %s", key, value, want))
	}
	float := func(key string, dst *float64) {
		if v, ok := data[key]; ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				bad(key, v, "a number")
				return
			}
			*dst = f
		}
	}
	integer := func(key string, dst *int32) {
		if v, ok := data[key]; ok {
			i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
			if err != nil {
				bad(key, v, "a whole number")
				return
			}
			*dst = int32(i)
		}
	}
	boolean := func(key string, dst *bool) {
		if v, ok := data[key]; ok {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				bad(key, v, "true or false")
				return
			}
			*dst = b
		}
	}
	duration := func(key string, dst *time.Duration) {
		if v, ok := data[key]; ok {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				bad(key, v, `a duration with a unit, such as "60s" or "1m30s"`)
				return
			}
			*dst = d
		}
	}

	for k := range data {
		if k != "_example" && !slices.Contains(configKeys, k) {
			errs = append(errs, fmt.Errorf("%s: unknown key; the keys are %s", k, strings.Join(configKeys, ", ")))
		}
	}
	if v, ok := data["pod-autoscaler-class"]; ok && strings.TrimSpace(v) != KPAClass {
		errs = append(errs, fmt.Errorf("pod-autoscaler-class: %q is not supported; wisp implements only %s", v, KPAClass))
	}

	float("container-concurrency-target-default", &cfg.ContainerConcurrencyTargetDefault)
	float("container-concurrency-target-percentage", &cfg.ContainerConcurrencyTargetPercentage)
	float("requests-per-second-target-default", &cfg.RequestsPerSecondTargetDefault)
	float("target-burst-capacity", &cfg.TargetBurstCapacity)
	duration("stable-window", &cfg.StableWindow)
	float("panic-window-percentage", &cfg.PanicWindowPercentage)
	float("panic-threshold-percentage", &cfg.PanicThresholdPercentage)
	float("max-scale-up-rate", &cfg.MaxScaleUpRate)
	float("max-scale-down-rate", &cfg.MaxScaleDownRate)
	duration("scale-to-zero-grace-period", &cfg.ScaleToZeroGracePeriod)
	duration("scale-to-zero-pod-retention-period", &cfg.ScaleToZeroPodRetentionPeriod)
	duration("scale-down-delay", &cfg.ScaleDownDelay)
	integer("initial-scale", &cfg.InitialScale)
	boolean("allow-zero-initial-scale", &cfg.AllowZeroInitialScale)
	integer("min-scale", &cfg.MinScale)
	integer("max-scale", &cfg.MaxScale)
	integer("max-scale-limit", &cfg.MaxScaleLimit)
	boolean("enable-scale-to-zero", &cfg.EnableScaleToZero)
	float("activator-capacity", &cfg.ActivatorCapacity)
	duration("activation-timeout", &cfg.ActivationTimeout)

	// Knative accepts the legacy fraction form: values in (0, 1] are
	// fractions, larger ones percentages.
	if p := cfg.ContainerConcurrencyTargetPercentage; p > 0 && p <= 1 {
		cfg.ContainerConcurrencyTargetPercentage = p * 100
	}

	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return Config{}, errors.Join(errs...)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every value of c that Knative's config-autoscaler would
// reject (and a few it lets through but cannot work), each error naming its
// key and the accepted range.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

	if p := c.ContainerConcurrencyTargetPercentage; !finite(p) || p <= 0 || p > 100 {
		add("container-concurrency-target-percentage: %v is outside (0, 100]; 70 is the default", p)
	} else if t := p / 100 * c.ContainerConcurrencyTargetDefault; !finite(t) || t < TargetMin {
		add("container-concurrency-target-default: %v × container-concurrency-target-percentage %v%% gives a target of %v; it must be at least %v",
			c.ContainerConcurrencyTargetDefault, p, t, TargetMin)
	}
	if r := c.RequestsPerSecondTargetDefault; !finite(r) || r < TargetMin {
		add("requests-per-second-target-default: %v must be at least %v", r, TargetMin)
	}
	if b := c.TargetBurstCapacity; !finite(b) || (b < 0 && b != -1) {
		add("target-burst-capacity: %v must be 0 or more, or -1 for unlimited", b)
	}
	if w := c.StableWindow; w < WindowMin || w > WindowMax || w.Truncate(time.Second) != w {
		add("stable-window: %v must be between %v and %v, in whole seconds", w, WindowMin, WindowMax)
	}
	if p := c.PanicWindowPercentage; !finite(p) || p < PanicWindowPercentageMin || p > PanicWindowPercentageMax {
		add("panic-window-percentage: %v must be between %v and %v", p, PanicWindowPercentageMin, PanicWindowPercentageMax)
	}
	if p := c.PanicThresholdPercentage; !finite(p) || p < PanicThresholdPercentageMin || p > PanicThresholdPercentageMax {
		add("panic-threshold-percentage: %v must be between %v and %v", p, PanicThresholdPercentageMin, PanicThresholdPercentageMax)
	}
	if r := c.MaxScaleUpRate; !finite(r) || r <= 1 {
		add("max-scale-up-rate: %v must be greater than 1", r)
	}
	if r := c.MaxScaleDownRate; !finite(r) || r <= 1 {
		add("max-scale-down-rate: %v must be greater than 1", r)
	}
	if g := c.ScaleToZeroGracePeriod; g <= 0 {
		add("scale-to-zero-grace-period: %v must be positive, such as 30s", g)
	}
	if r := c.ScaleToZeroPodRetentionPeriod; r < 0 {
		add("scale-to-zero-pod-retention-period: %v must not be negative", r)
	}
	if d := c.ScaleDownDelay; d < 0 || d.Truncate(time.Second) != d {
		add("scale-down-delay: %v must be 0 or more, in whole seconds", d)
	}
	if i := c.InitialScale; i < 0 || (i == 0 && !c.AllowZeroInitialScale) {
		add("initial-scale: %d must be at least 1, or 0 with allow-zero-initial-scale: true", i)
	}
	if c.MinScale < 0 {
		add("min-scale: %d must be 0 or more", c.MinScale)
	}
	if c.MaxScaleLimit < 0 {
		add("max-scale-limit: %d must be 0 (no limit) or more", c.MaxScaleLimit)
	}
	switch {
	case c.MaxScale < 0:
		add("max-scale: %d must be 0 (no limit) or more", c.MaxScale)
	case c.MaxScaleLimit > 0 && (c.MaxScale == 0 || c.MaxScale > c.MaxScaleLimit):
		add("max-scale: %d must be between 1 and max-scale-limit (%d) when max-scale-limit is set", c.MaxScale, c.MaxScaleLimit)
	case c.MaxScale > 0 && c.MinScale > c.MaxScale:
		add("min-scale: %d is greater than max-scale (%d)", c.MinScale, c.MaxScale)
	}
	if a := c.ActivatorCapacity; !finite(a) || a < 1 {
		add("activator-capacity: %v must be at least 1", a)
	}
	if a := c.ActivationTimeout; a <= 0 {
		add("activation-timeout: %v must be positive, such as 630s", a)
	}
	return errors.Join(errs...)
}
