package api

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KindWispNode is the kind of WispNode documents.
const KindWispNode = "WispNode"

// WispNode is one wisp node's report of the work it runs: per Revision
// the instances it has and whether it can serve them, per Filter whether
// it loaded it, per Trigger what it delivered. Every node writes its own
// report and no other; the leader-elected controller reads them all to
// write the status of Revisions, Filters and Triggers, and ignores a
// report whose heartbeat is older than its expiry (the node is gone).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=wispnodes,singular=wispnode,scope=Namespaced,categories=wisp
// +kubebuilder:printcolumn:name="Gateway",type=string,JSONPath=".spec.gatewayURL"
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=".spec.version"
// +kubebuilder:printcolumn:name="Heartbeat",type=date,JSONPath=".status.heartbeatTime"
// +kubebuilder:printcolumn:name="Started",type=date,JSONPath=".spec.startTime"
type WispNode struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec WispNodeSpec `json:"spec,omitempty"`
	// +optional
	Status WispNodeStatus `json:"status,omitempty"`
}

// WispNodeSpec says which node process the report is from.
type WispNodeSpec struct {
	// GatewayURL is where the node's gateway listens, as the node sees it.
	GatewayURL string `json:"gatewayURL,omitempty"`
	// Version is the node's wisp version.
	Version string `json:"version,omitempty"`
	// StartTime is when the node process started; the counters of its
	// report count from then.
	StartTime metav1.Time `json:"startTime,omitempty"`
}

// WispNodeStatus is the report itself.
type WispNodeStatus struct {
	// HeartbeatTime is when the node last wrote its report.
	HeartbeatTime metav1.Time `json:"heartbeatTime,omitempty"`
	// Revisions the node has an instance pool for.
	Revisions []RevisionReport `json:"revisions,omitempty"`
	// Filters the node has tried to load.
	Filters []FilterReport `json:"filters,omitempty"`
	// Triggers the node consumes for.
	Triggers []TriggerReport `json:"triggers,omitempty"`
}

// RevisionReport is one Revision as one node sees it.
type RevisionReport struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Ready says whether the node can serve the Revision, with Reason
	// and Message when it is not True; the Revision is Ready when some
	// node says True.
	Ready   corev1.ConditionStatus `json:"ready"`
	Reason  string                 `json:"reason,omitempty"`
	Message string                 `json:"message,omitempty"`
	// Desired and Actual are the node's own instances.
	Desired int32 `json:"desired"`
	Actual  int32 `json:"actual"`
	// PanicMode and ScaleReason are the node's autoscaler's last decision.
	PanicMode   bool   `json:"panicMode,omitempty"`
	ScaleReason string `json:"scaleReason,omitempty"`
}

// FilterReport is one Filter as one node loaded it.
type FilterReport struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Generation is the Filter's metadata.generation the node acted on.
	Generation int64 `json:"generation"`
	// Ready is True once the node runs the filter in its chains, with the
	// reason (Pending, PullFailed, LoadFailed, CrashLoop) when it is not.
	Ready   corev1.ConditionStatus `json:"ready"`
	Reason  string                 `json:"reason,omitempty"`
	Message string                 `json:"message,omitempty"`
	// ResolvedModule is the digest of the module the node runs.
	ResolvedModule string `json:"resolvedModule,omitempty"`
}

// TriggerReport is one Trigger as one node consumes it.
type TriggerReport struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Generation is the Trigger's metadata.generation the node runs.
	Generation int64 `json:"generation"`
	// Ready is True while the node's consumer is set up.
	Ready   corev1.ConditionStatus `json:"ready"`
	Reason  string                 `json:"reason,omitempty"`
	Message string                 `json:"message,omitempty"`
	SinkURI string                 `json:"sinkURI,omitempty"`
	// Delivered and DeadLettered count the node's own deliveries since
	// the node's spec.startTime.
	Delivered    uint64 `json:"delivered"`
	DeadLettered uint64 `json:"deadLettered"`
	// Pending, AckPending and Redelivered are the shared consumer's
	// state when the node last read it.
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ackPending"`
	Redelivered int    `json:"redelivered"`
	// LastError is the node's last failed attempt, at LastErrorTime.
	LastError     string       `json:"lastError,omitempty"`
	LastErrorTime *metav1.Time `json:"lastErrorTime,omitempty"`
}

// WispNodeList is a list of WispNodes.
//
// +kubebuilder:object:root=true
type WispNodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WispNode `json:"items"`
}
