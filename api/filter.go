package api

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
)

// KindFilter is the kind of Filter documents.
const KindFilter = "Filter"

// Phases of the filter chain a Filter is placed in, spelled and ordered as
// in Istio's WasmPlugin (extensions.istio.io/v1alpha1): AUTHN, then AUTHZ,
// then STATS, then UNSPECIFIED_PHASE (or empty), closest to the function,
// as Istio puts it right before the router. See CompareFilters.
const (
	PhaseUnspecified = "UNSPECIFIED_PHASE"
	PhaseAuthN       = "AUTHN"
	PhaseAuthZ       = "AUTHZ"
	PhaseStats       = "STATS"
)

// What the gateway does when a Filter cannot be loaded or fails on a
// request, spelled as in Istio's WasmPlugin.
const (
	// FailClose answers 503 Service Unavailable (the default).
	FailClose = "FAIL_CLOSE"
	// FailOpen skips the filter and lets the request through.
	FailOpen = "FAIL_OPEN"
)

// When the gateway asks the registry again for an oci:// source, spelled
// as in Kubernetes and Istio.
const (
	// PullIfNotPresent pulls a tag once and then uses the cached module
	// (the default).
	PullIfNotPresent = "IfNotPresent"
	// PullAlways resolves the tag at the registry whenever the filter is
	// (re)loaded; the module is downloaded only when its digest changed.
	PullAlways = "Always"
)

// Where a VM environment variable's value comes from, as in Istio's
// WasmPlugin vmConfig.env.valueFrom.
const (
	// EnvInline takes the value from the Value field (the default).
	EnvInline = "INLINE"
	// EnvHost takes the value of the node's environment variable of the
	// same name.
	EnvHost = "HOST"
)

// Reasons of a Filter's Ready condition.
const (
	// ReasonFilterPending: no gateway has loaded the filter yet.
	ReasonFilterPending = "Pending"
	// ReasonPullFailed: the module could not be pulled (or its sha256 did
	// not match spec.sha256).
	ReasonPullFailed = "PullFailed"
	// ReasonLoadFailed: the module was fetched but did not start or
	// refused its configuration (proxy_on_vm_start or proxy_on_configure
	// returned false, or it trapped).
	ReasonLoadFailed = "LoadFailed"
	// ReasonCrashLoop: the filter loaded, but its VMs keep crashing and
	// are no longer recreated for a while.
	ReasonCrashLoop = "CrashLoop"
)

// Filter is a proxy-wasm module run by the gateway on the requests of the
// Functions it selects, in the order its phase and priority give. Its
// fields follow Istio's WasmPlugin, so that the same OCI artifact and
// plugin configuration serve both.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=filters,singular=filter,scope=Namespaced,categories=wisp
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=".spec.source"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".spec.phase"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].reason"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type Filter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec   FilterSpec   `json:"spec"`
	Status FilterStatus `json:"status,omitempty"`
}

// FilterSpec is the desired state of a Filter.
type FilterSpec struct {
	// Source is the module: "oci://registry/repository[:tag][@sha256:...]"
	// pulled with ORAS, or "sha256:<hex>" for a module uploaded to the
	// node (POST /modules).
	Source string `json:"source"`
	// SHA256 is the sha256 of the module's bytes, 64 lower-case hex digits
	// (Istio's WasmPlugin sha256): a pulled module that differs is refused.
	SHA256 string `json:"sha256,omitempty"`
	// PluginName is the root_id the module's root context is created
	// with, for modules that hold several plugins; empty means "".
	PluginName string `json:"pluginName,omitempty"`
	// PluginConfig is given to the module's proxy_on_configure; see
	// PluginConfigBytes. Any JSON value; YAML is converted to JSON.
	//
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	PluginConfig json.RawMessage `json:"pluginConfig,omitempty"`
	// VMConfig configures the VM the module runs in.
	VMConfig *FilterVMConfig `json:"vmConfig,omitempty"`
	// Phase places the filter in the chain: AUTHN, AUTHZ, STATS, or empty
	// (UNSPECIFIED_PHASE) for last, closest to the function.
	Phase string `json:"phase,omitempty"`
	// Priority orders filters of the same phase: higher runs first, as in
	// Istio. Equal priorities run in namespace/name order.
	Priority int32 `json:"priority,omitempty"`
	// Selector picks the Functions the filter runs for; nil or empty means
	// every Function of the Filter's namespace.
	Selector *FilterSelector `json:"selector,omitempty"`
	// FailStrategy is FAIL_CLOSE (503 when the filter cannot run; the
	// default) or FAIL_OPEN (skip it).
	FailStrategy string `json:"failStrategy,omitempty"`
	// ImagePullPolicy is IfNotPresent (the default) or Always, for an
	// oci:// source.
	ImagePullPolicy string `json:"imagePullPolicy,omitempty"`
	// PlainHTTP pulls an oci:// source over plain HTTP (local registries).
	PlainHTTP bool `json:"plainHTTP,omitempty"`
}

// FilterVMConfig configures the VM a filter's module runs in, as Istio's
// WasmPlugin vmConfig does.
type FilterVMConfig struct {
	// Env is the module's WASI environment.
	Env []FilterEnvVar `json:"env,omitempty"`
}

// FilterEnvVar is one environment variable of a filter's VM.
type FilterEnvVar struct {
	Name string `json:"name"`
	// ValueFrom is INLINE (Value; the default) or HOST (the node's
	// variable of the same name).
	ValueFrom string `json:"valueFrom,omitempty"`
	// Value is the value for INLINE; it must be empty for HOST.
	Value string `json:"value,omitempty"`
}

// FilterSelector picks Functions of the Filter's namespace. A Function is
// selected when it meets every criterion given: its name is in Functions
// (if any are listed) and its labels hold every MatchLabels pair (if any
// are given). An empty selector selects every Function.
type FilterSelector struct {
	// Functions names Functions.
	Functions []string `json:"functions,omitempty"`
	// MatchLabels are labels (metadata.labels of the Function) that must
	// all be present with these values.
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// FilterStatus is the observed state of a Filter, written by the gateway.
type FilterStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, with a reason (Pending, PullFailed, LoadFailed)
	// and message when it is not True.
	Conditions apis.Conditions `json:"conditions,omitempty"`
	// ResolvedModule is the digest ("sha256:<hex>") of the module the
	// gateway loaded.
	ResolvedModule string `json:"resolvedModule,omitempty"`
}

// FilterList is a list of Filters.
//
// +kubebuilder:object:root=true
type FilterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Filter `json:"items"`
}

// Selects reports whether the Filter's selector picks the Function of
// that name with those labels. The namespace is the caller's to check.
func (s *FilterSelector) Selects(function string, labels map[string]string) bool {
	if s == nil {
		return true
	}
	if len(s.Functions) > 0 && !slices.Contains(s.Functions, function) {
		return false
	}
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// PluginConfigBytes is the configuration the module reads in
// proxy_on_configure: the contents of a JSON string (so a plugin that
// takes plain text gets it unquoted), the JSON text of any other value
// (as Istio passes its pluginConfig struct), nil when none is set.
func (s *FilterSpec) PluginConfigBytes() []byte {
	if len(s.PluginConfig) == 0 || string(s.PluginConfig) == "null" {
		return nil
	}
	var str string
	if json.Unmarshal(s.PluginConfig, &str) == nil {
		return []byte(str)
	}
	return s.PluginConfig
}

// phaseRank orders the phases of the chain.
var phaseRank = map[string]int{PhaseAuthN: 0, PhaseAuthZ: 1, PhaseStats: 2, PhaseUnspecified: 3, "": 3}

// CompareFilters orders filters as the gateway runs them on a request:
// by phase (AUTHN, AUTHZ, STATS, UNSPECIFIED_PHASE), then by priority,
// higher first, then by namespace and name. It returns a negative number
// when a runs before b, for slices.SortFunc.
func CompareFilters(a, b *Filter) int {
	if d := phaseRank[a.Spec.Phase] - phaseRank[b.Spec.Phase]; d != 0 {
		return d
	}
	if d := cmp.Compare(b.Spec.Priority, a.Spec.Priority); d != 0 {
		return d
	}
	if d := strings.Compare(a.Namespace, b.Namespace); d != 0 {
		return d
	}
	return strings.Compare(a.Name, b.Name)
}

// SetDefaults fills in what a Filter may leave out: apiVersion and kind
// (when empty), the namespace, failStrategy (FAIL_CLOSE) and
// imagePullPolicy (IfNotPresent), and compacts a valid pluginConfig so
// that equal configurations compare equal. The phase stays empty for
// UNSPECIFIED_PHASE. SetDefaults is idempotent.
func (f *Filter) SetDefaults() {
	if f.APIVersion == "" {
		f.APIVersion = APIVersion
	}
	if f.Kind == "" {
		f.Kind = KindFilter
	}
	if f.Namespace == "" {
		f.Namespace = DefaultNamespace
	}
	if f.Spec.FailStrategy == "" {
		f.Spec.FailStrategy = FailClose
	}
	if f.Spec.ImagePullPolicy == "" {
		f.Spec.ImagePullPolicy = PullIfNotPresent
	}
	var compact bytes.Buffer
	if len(f.Spec.PluginConfig) > 0 && json.Compact(&compact, f.Spec.PluginConfig) == nil {
		f.Spec.PluginConfig = compact.Bytes()
	}
}

func filterConditions() apis.ConditionSet { return apis.NewLivingConditionSet() }

// GetConditions returns the conditions; it implements apis.ConditionsAccessor.
func (s *FilterStatus) GetConditions() apis.Conditions { return s.Conditions }

// SetConditions replaces the conditions; it implements apis.ConditionsAccessor.
func (s *FilterStatus) SetConditions(c apis.Conditions) { s.Conditions = c }

// GetCondition returns the condition of type t, or nil.
func (s *FilterStatus) GetCondition(t apis.ConditionType) *apis.Condition {
	return filterConditions().Manage(s).GetCondition(t)
}

// IsReady reports whether the Ready condition is True.
func (s *FilterStatus) IsReady() bool { return filterConditions().Manage(s).IsHappy() }

// MarkReady sets Ready to True and records the module loaded.
func (s *FilterStatus) MarkReady(resolvedModule string) {
	s.ResolvedModule = resolvedModule
	filterConditions().Manage(s).MarkTrue(ConditionReady)
}

// MarkUnknown sets Ready to Unknown, e.g. ReasonFilterPending while the
// module is on its way.
func (s *FilterStatus) MarkUnknown(reason, message string) {
	filterConditions().Manage(s).MarkUnknown(ConditionReady, reason, "%s", message)
}

// MarkFailed sets Ready to False, e.g. with ReasonPullFailed and the
// error.
func (s *FilterStatus) MarkFailed(reason, message string) {
	filterConditions().Manage(s).MarkFalse(ConditionReady, reason, "%s", message)
}
