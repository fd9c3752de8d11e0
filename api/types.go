package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
)

const (
	// Group is the API group of wisp's resources.
	Group = "wisp.dev"
	// Version is the API version of wisp's resources.
	Version = "v1alpha1"
	// APIVersion is Group/Version, the apiVersion of every wisp document.
	APIVersion = Group + "/" + Version

	// KindFunction is the kind of Function documents.
	KindFunction = "Function"
	// KindRevision is the kind of Revision documents.
	KindRevision = "Revision"

	// DefaultNamespace is used when a resource names no namespace.
	DefaultNamespace = "default"
)

// Labels and annotations wisp sets on the objects it manages.
const (
	// LabelFunction names the Function a Revision belongs to.
	LabelFunction = "wisp.dev/function"
	// LabelRevisionNumber is the ordinal of a Revision within its Function.
	LabelRevisionNumber = "wisp.dev/revision-number"
	// AnnotationTemplateHash records the hash of the template a Revision was cut from.
	AnnotationTemplateHash = "wisp.dev/template-hash"
)

// Knative's autoscaling annotations, honoured with the same names and meanings.
const (
	AnnotationMinScale     = "autoscaling.knative.dev/min-scale"
	AnnotationMaxScale     = "autoscaling.knative.dev/max-scale"
	AnnotationInitialScale = "autoscaling.knative.dev/initial-scale"
	AnnotationTarget       = "autoscaling.knative.dev/target"
	AnnotationMetric       = "autoscaling.knative.dev/metric"
	AnnotationWindow       = "autoscaling.knative.dev/window"
)

// Function is a deployable function: a template from which immutable
// Revisions are cut, and a traffic assignment across those Revisions.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=functions,singular=function,scope=Namespaced,categories=wisp
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=".status.url"
// +kubebuilder:printcolumn:name="LatestCreated",type=string,JSONPath=".status.latestCreatedRevisionName"
// +kubebuilder:printcolumn:name="LatestReady",type=string,JSONPath=".status.latestReadyRevisionName"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].reason"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type Function struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec   FunctionSpec   `json:"spec,omitempty"`
	Status FunctionStatus `json:"status,omitempty"`
}

// FunctionSpec is the desired state of a Function.
type FunctionSpec struct {
	// Template describes the Revisions to cut. Every change to it creates
	// a new Revision.
	Template RevisionTemplate `json:"template"`

	// Traffic splits requests across Revisions. Empty means 100% to the
	// latest ready Revision.
	Traffic []TrafficTarget `json:"traffic,omitempty"`

	// Routes send requests that match them to one Revision or tag,
	// before the percent split ("traffic colouring"); the first rule
	// that matches wins.
	Routes []RouteRule `json:"routes,omitempty"`

	// Filters are the Function's built-in gateway filters; they run
	// with the node's global filters and the Filter resources that
	// select this Function, ordered by phase and priority.
	Filters []GatewayFilter `json:"filters,omitempty"`
	// Retries retries failed attempts of requests to this Function.
	Retries *RetryPolicy `json:"retries,omitempty"`
	// CircuitBreaker bounds the requests each Revision takes.
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
	// OutlierDetection ejects instances that keep failing.
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
}

// RouteRule sends the requests it matches to one target.
type RouteRule struct {
	// Headers and Query must all match.
	Headers []StringMatch `json:"headers,omitempty"`
	Query   []StringMatch `json:"query,omitempty"`
	// Exactly one of RevisionName, Tag (of spec.traffic) and
	// LatestRevision is the target.
	RevisionName   string `json:"revisionName,omitempty"`
	Tag            string `json:"tag,omitempty"`
	LatestRevision *bool  `json:"latestRevision,omitempty"`
	// Timeout bounds requests this rule routes, e.g. "2s", within the
	// Revision's timeoutSeconds.
	Timeout string `json:"timeout,omitempty"`
	// Retries replaces spec.retries for requests this rule routes.
	Retries *RetryPolicy `json:"retries,omitempty"`
}

// StringMatch matches a header or query parameter by name with exactly
// one of Exact, Prefix and Regex (RE2, anchored at both ends).
type StringMatch struct {
	Name   string `json:"name"`
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Regex  string `json:"regex,omitempty"`
}

// RevisionTemplate is the template part of a Function.
type RevisionTemplate struct {
	Metadata TemplateMeta `json:"metadata,omitempty"`
	Spec     RevisionSpec `json:"spec"`
}

// TemplateMeta is the metadata a template may carry to its Revisions.
type TemplateMeta struct {
	// Name, when set, is the name of the next Revision. It must start with
	// "<function>-" and must not already exist.
	Name        string            `json:"name,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// RevisionSpec is what runs: exactly one source, its environment and limits.
type RevisionSpec struct {
	// Exactly one of Wasm, Process and Container is set.
	Wasm      *WasmSource      `json:"wasm,omitempty"`
	Process   *ProcessSource   `json:"process,omitempty"`
	Container *ContainerSource `json:"container,omitempty"`

	Env []EnvVar `json:"env,omitempty"`

	// ContainerConcurrency is the most requests one instance serves at
	// once; 0 means unlimited.
	ContainerConcurrency *int64 `json:"containerConcurrency,omitempty"`

	// TimeoutSeconds is the most a request may take end to end.
	TimeoutSeconds *int64 `json:"timeoutSeconds,omitempty"`
}

// WasmSource is a WebAssembly module run in-process.
type WasmSource struct {
	// Module is "sha256:<hex>" for a module uploaded to the node, or
	// "oci://registry/repo:tag" (or @sha256:...) for one pulled with ORAS.
	Module string `json:"module"`
	// ABI is "wagi" or "http"; empty means detected from the exports.
	ABI string `json:"abi,omitempty"`
	// PlainHTTP pulls from an OCI registry over plain HTTP.
	PlainHTTP bool `json:"plainHTTP,omitempty"`
	// MemoryLimitPages bounds an instance's linear memory, in 64 KiB
	// pages; 0 means the runtime's default (2048 pages, 128 MiB).
	MemoryLimitPages uint32 `json:"memoryLimitPages,omitempty"`
	// MaxRequestBodyBytes bounds a request's body; larger requests get
	// 413. 0 means 10 MiB.
	MaxRequestBodyBytes int64 `json:"maxRequestBodyBytes,omitempty"`
	// Dirs are the only host directories the module may see.
	Dirs []WasmDir `json:"dirs,omitempty"`
}

// WasmDir grants a Wasm module a directory of the node.
type WasmDir struct {
	// HostPath is the directory on the node.
	HostPath string `json:"hostPath"`
	// GuestPath is where the module sees it, e.g. "/data".
	GuestPath string `json:"guestPath"`
	// ReadOnly forbids writes.
	ReadOnly bool `json:"readOnly,omitempty"`
}

// ProcessSource is an executable that serves HTTP on $PORT.
type ProcessSource struct {
	// Command is the path of the executable on the node.
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	// WorkingDir is the directory the process starts in.
	WorkingDir string `json:"workingDir,omitempty"`
	// ReadinessPath is the HTTP path probed until it answers; default "/".
	ReadinessPath string `json:"readinessPath,omitempty"`
}

// ContainerSource is an OCI image run as a container, Knative-style.
type ContainerSource struct {
	Image   string   `json:"image"`
	Command []string `json:"command,omitempty"`
	Args    []string `json:"args,omitempty"`
	// Port the container listens on ($PORT); default 8080.
	Port int32 `json:"port,omitempty"`
}

// EnvVar is one environment variable given to a function.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// TrafficTarget assigns a share of traffic, and optionally a tag, to a
// Revision or to whichever Revision is latest and ready.
type TrafficTarget struct {
	// Tag gives this target its own URL.
	Tag string `json:"tag,omitempty"`
	// RevisionName names a Revision of this Function.
	RevisionName string `json:"revisionName,omitempty"`
	// LatestRevision follows the latest ready Revision; exclusive with RevisionName.
	LatestRevision *bool `json:"latestRevision,omitempty"`
	// Percent of requests; all targets sum to 100.
	Percent *int64 `json:"percent,omitempty"`
	// URL is set in status only: where this target (tag) is reachable.
	URL string `json:"url,omitempty"`
}

// FunctionStatus is the observed state of a Function.
type FunctionStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, ConfigurationsReady, RoutesReady.
	Conditions apis.Conditions `json:"conditions,omitempty"`

	URL                       string          `json:"url,omitempty"`
	Address                   string          `json:"address,omitempty"`
	LatestCreatedRevisionName string          `json:"latestCreatedRevisionName,omitempty"`
	LatestReadyRevisionName   string          `json:"latestReadyRevisionName,omitempty"`
	Traffic                   []TrafficTarget `json:"traffic,omitempty"`
}

// Revision is an immutable snapshot of a Function's template.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=revisions,singular=revision,scope=Namespaced,categories=wisp
// +kubebuilder:printcolumn:name="Function",type=string,JSONPath=".metadata.labels['wisp\\.dev/function']"
// +kubebuilder:printcolumn:name="Number",type=string,JSONPath=".metadata.labels['wisp\\.dev/revision-number']"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].reason"
// +kubebuilder:printcolumn:name="Actual",type=integer,JSONPath=".status.actualReplicas"
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=".status.desiredReplicas"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type Revision struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec   RevisionSpec   `json:"spec"`
	Status RevisionStatus `json:"status,omitempty"`
}

// RevisionStatus is the observed state of a Revision.
type RevisionStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, SourceReady.
	Conditions apis.Conditions `json:"conditions,omitempty"`
	// ResolvedModule pins a Wasm module to a digest ("sha256:...").
	ResolvedModule string `json:"resolvedModule,omitempty"`
	// ActualReplicas is the number of running instances.
	ActualReplicas int32 `json:"actualReplicas"`
	// DesiredReplicas is the number of instances the scaler wants.
	DesiredReplicas int32 `json:"desiredReplicas"`
	// PanicMode is true while the autoscaler reacts to a burst.
	PanicMode bool `json:"panicMode,omitempty"`
	// ScaleReason says why the autoscaler last changed the desired scale.
	ScaleReason string `json:"scaleReason,omitempty"`
}

// FunctionList is a list of Functions.
//
// +kubebuilder:object:root=true
type FunctionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Function `json:"items"`
}

// RevisionList is a list of Revisions.
//
// +kubebuilder:object:root=true
type RevisionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Revision `json:"items"`
}
