package api

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"knative.dev/pkg/apis"
)

// filterSHA256RE is Istio's WasmPlugin pattern for spec.sha256.
var filterSHA256RE = regexp.MustCompile(`^[a-f0-9]{64}$`)

// Validate checks a Filter, with or without defaults applied. Every error
// names the field path, e.g. "spec.phase".
func (f *Filter) Validate() *apis.FieldError {
	errs := validateTypeMeta(f.APIVersion, f.Kind, KindFilter)
	switch msgs := validation.IsDNS1123Label(f.Name); {
	case f.Name == "":
		errs = errs.Also(apis.ErrMissingField("metadata.name"))
	case len(msgs) > 0:
		errs = errs.Also(apis.ErrInvalidValue(f.Name, "metadata.name", msgs...))
	}
	errs = errs.Also(validateNamespace(f.Namespace).ViaField("metadata"))
	return errs.Also(f.Spec.validate().ViaField("spec"))
}

// ValidateUpdate checks f as a replacement of old: f must be valid and
// keep old's name and namespace.
func (f *Filter) ValidateUpdate(old *Filter) *apis.FieldError {
	errs := f.Validate()
	errs = errs.Also(validateImmutable(old.Name, f.Name, "metadata.name"))
	return errs.Also(validateImmutable(old.Namespace, f.Namespace, "metadata.namespace"))
}

func (s *FilterSpec) validate() *apis.FieldError {
	var errs *apis.FieldError
	switch src := s.Source; {
	case src == "":
		errs = errs.Also(apis.ErrMissingField("source"))
	case strings.HasPrefix(src, "sha256:"):
		if !sha256RE.MatchString(src) {
			errs = errs.Also(apis.ErrInvalidValue(src, "source", "want sha256: and 64 lower-case hex digits"))
		} else if s.SHA256 != "" && s.SHA256 != strings.TrimPrefix(src, "sha256:") {
			errs = errs.Also(&apis.FieldError{
				Message: "the source is an uploaded module whose digest differs from sha256",
				Paths:   []string{"source", "sha256"},
				Details: "drop sha256, or make it the hex digits of the source's digest",
			})
		}
	case strings.HasPrefix(src, "oci://"):
		if !ociRefRE.MatchString(strings.TrimPrefix(src, "oci://")) {
			errs = errs.Also(apis.ErrInvalidValue(src, "source", "want oci://<registry>/<repository>[:<tag>][@<digest>]"))
		}
	default:
		errs = errs.Also(apis.ErrInvalidValue(src, "source",
			`want "oci://<registry>/<repository>[:<tag>]" or "sha256:<hex>" of an uploaded module (wisp filter create --source FILE uploads a file)`))
	}
	if s.SHA256 != "" && !filterSHA256RE.MatchString(s.SHA256) {
		errs = errs.Also(apis.ErrInvalidValue(s.SHA256, "sha256", "want 64 lower-case hex digits, without a sha256: prefix (as Istio's WasmPlugin)"))
	}
	if len(s.PluginConfig) > 0 && !json.Valid(s.PluginConfig) {
		errs = errs.Also(apis.ErrInvalidValue(string(s.PluginConfig), "pluginConfig", "not valid JSON"))
	}
	if s.VMConfig != nil {
		errs = errs.Also(validateFilterEnv(s.VMConfig.Env).ViaField("vmConfig.env"))
	}
	switch s.Phase {
	case "", PhaseUnspecified, PhaseAuthN, PhaseAuthZ, PhaseStats:
	default:
		errs = errs.Also(apis.ErrInvalidValue(s.Phase, "phase",
			fmt.Sprintf("want %s, %s, %s, or empty (%s)", PhaseAuthN, PhaseAuthZ, PhaseStats, PhaseUnspecified)))
	}
	switch s.FailStrategy {
	case "", FailClose, FailOpen:
	default:
		errs = errs.Also(apis.ErrInvalidValue(s.FailStrategy, "failStrategy", fmt.Sprintf("want %s (the default) or %s", FailClose, FailOpen)))
	}
	switch s.ImagePullPolicy {
	case "", PullIfNotPresent, PullAlways:
	default:
		errs = errs.Also(apis.ErrInvalidValue(s.ImagePullPolicy, "imagePullPolicy", fmt.Sprintf("want %s (the default) or %s", PullIfNotPresent, PullAlways)))
	}
	if s.Selector != nil {
		errs = errs.Also(s.Selector.validate().ViaField("selector"))
	}
	return errs
}

func (s *FilterSelector) validate() *apis.FieldError {
	var errs *apis.FieldError
	seen := make(map[string]int, len(s.Functions))
	for i, name := range s.Functions {
		if fe := validateFunctionName(name); fe != nil {
			errs = errs.Also(apis.ErrInvalidValue(name, apis.CurrentField, fe.Message).ViaFieldIndex("functions", i))
			continue
		}
		if j, dup := seen[name]; dup {
			errs = errs.Also(&apis.FieldError{
				Message: fmt.Sprintf("duplicate function %q", name),
				Paths:   []string{fmt.Sprintf("functions[%d]", j), fmt.Sprintf("functions[%d]", i)},
			})
		}
		seen[name] = i
	}
	for k, v := range s.MatchLabels {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs = errs.Also(apis.ErrInvalidKeyName(k, "matchLabels", msgs...))
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			errs = errs.Also(apis.ErrInvalidValue(v, apis.CurrentField, msgs...).ViaKey(k).ViaField("matchLabels"))
		}
	}
	return errs
}

func validateFilterEnv(env []FilterEnvVar) *apis.FieldError {
	names := make([]string, len(env))
	for i, e := range env {
		names[i] = e.Name
	}
	errs := validateEnvNames(names, nil)
	for i, e := range env {
		switch e.ValueFrom {
		case "", EnvInline:
		case EnvHost:
			if e.Value != "" {
				errs = errs.Also((&apis.FieldError{
					Message: "must be empty when valueFrom is HOST",
					Paths:   []string{"value"},
					Details: "HOST takes the node's variable of the same name",
				}).ViaIndex(i))
			}
		default:
			errs = errs.Also(apis.ErrInvalidValue(e.ValueFrom, "valueFrom", fmt.Sprintf("want %s (the default) or %s", EnvInline, EnvHost)).ViaIndex(i))
		}
	}
	return errs
}
