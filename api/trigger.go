package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"knative.dev/pkg/apis"
)

// KindTrigger is the kind of Trigger documents.
const KindTrigger = "Trigger"

// Backoff policies of a DeliverySpec, with Knative Eventing's names.
const (
	// BackoffLinear waits n × backoffDelay before retry n (1-based).
	BackoffLinear = "linear"
	// BackoffExponential waits backoffDelay × 2^(n-1) before retry n.
	BackoffExponential = "exponential"
)

// Trigger delivers the events of a NATS JetStream stream that match its
// filters to a sink, at least once, with retries and a dead-letter subject.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=triggers,singular=trigger,scope=Namespaced,categories=wisp
// +kubebuilder:printcolumn:name="Subject",type=string,JSONPath=".spec.source.subject"
// +kubebuilder:printcolumn:name="Sink",type=string,JSONPath=".status.sinkURI"
// +kubebuilder:printcolumn:name="Delivered",type=integer,JSONPath=".status.delivered"
// +kubebuilder:printcolumn:name="DeadLettered",type=integer,JSONPath=".status.deadLettered"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=".status.conditions[?(@.type=='Ready')].reason"
type Trigger struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec   TriggerSpec   `json:"spec"`
	Status TriggerStatus `json:"status,omitempty"`
}

// TriggerSpec is the desired state of a Trigger.
type TriggerSpec struct {
	// Source is where the events come from.
	Source EventSource `json:"source"`
	// Filters select the events to deliver: every filter must match.
	// No filters deliver every event of the source.
	Filters []EventFilter `json:"filters,omitempty"`
	// Sink is where the events go.
	Sink Destination `json:"sink"`
	// Delivery is the retry and dead-letter policy.
	Delivery DeliverySpec `json:"delivery,omitempty"`
	// MaxInFlight bounds the events being delivered at once; 0 means
	// DefaultMaxInFlight.
	MaxInFlight int32 `json:"maxInFlight,omitempty"`
	// ReplySubject, when set, receives the event a sink answers with (a
	// CloudEvent in its response), published to JetStream.
	ReplySubject string `json:"replySubject,omitempty"`
}

// EventSource is a JetStream stream and a subject filter within it.
type EventSource struct {
	// Stream names the JetStream stream. Empty means a stream named after
	// the subject's first token (orders.> → ORDERS), which the node
	// creates.
	Stream string `json:"stream,omitempty"`
	// Subject selects the stream's messages; NATS wildcards (* and >) are
	// allowed.
	Subject string `json:"subject"`
	// CreateStream makes the node create the stream, capturing
	// "<first token>.>", when it does not exist. It never changes an
	// existing stream.
	CreateStream bool `json:"createStream,omitempty"`
}

// EventFilter matches CloudEvents attributes (type, source, subject, id,
// dataschema, datacontenttype) and extensions by name, as Knative
// Eventing's filters do. Exactly one of Exact, Prefix and Suffix is set;
// every entry of it must match. An attribute the event lacks matches
// nothing.
type EventFilter struct {
	Exact  map[string]string `json:"exact,omitempty"`
	Prefix map[string]string `json:"prefix,omitempty"`
	Suffix map[string]string `json:"suffix,omitempty"`
}

// Destination is where a Trigger delivers: a Function of the Trigger's
// namespace (Ref) or a URL (URI); exactly one.
type Destination struct {
	Ref *FunctionRef `json:"ref,omitempty"`
	URI string       `json:"uri,omitempty"`
}

// FunctionRef names a Function, and optionally one of its traffic tags.
type FunctionRef struct {
	Name string `json:"name"`
	Tag  string `json:"tag,omitempty"`
}

// DeliverySpec is how hard a Trigger tries. Durations are ISO 8601
// ("PT1S", as in Knative) or Go durations ("1s").
type DeliverySpec struct {
	// Retry is the number of retries after the first attempt; nil means
	// DefaultRetry.
	Retry *int32 `json:"retry,omitempty"`
	// BackoffPolicy is BackoffLinear or BackoffExponential.
	BackoffPolicy string `json:"backoffPolicy,omitempty"`
	// BackoffDelay is the base delay of the backoff policy.
	BackoffDelay string `json:"backoffDelay,omitempty"`
	// BackoffMax caps every backoff delay.
	BackoffMax string `json:"backoffMax,omitempty"`
	// Timeout bounds one delivery attempt.
	Timeout string `json:"timeout,omitempty"`
	// DeadLetterSubject receives, through JetStream, the events that
	// failed for good, with the error as CloudEvents extensions. Empty
	// means failed events are only counted and logged.
	DeadLetterSubject string `json:"deadLetterSubject,omitempty"`
}

// TriggerStatus is the observed state of a Trigger, refreshed every few
// seconds by the node that runs it.
type TriggerStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, with the reason it is not.
	Conditions apis.Conditions `json:"conditions,omitempty"`
	// Stream and Consumer name the JetStream stream and durable consumer.
	Stream   string `json:"stream,omitempty"`
	Consumer string `json:"consumer,omitempty"`
	// SinkURI is where events are sent.
	SinkURI string `json:"sinkURI,omitempty"`
	// Pending is the number of matching messages not yet delivered to the
	// consumer; AckPending those delivered and not yet acknowledged.
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ackPending"`
	// Redelivered is the number of messages delivered more than once
	// that are still pending acknowledgement.
	Redelivered int `json:"redelivered"`
	// Delivered counts the events the sink accepted, and DeadLettered
	// those that failed for good, since the trigger was created.
	Delivered    uint64 `json:"delivered"`
	DeadLettered uint64 `json:"deadLettered"`
	// LastError is the last failed attempt, and LastErrorTime when it was.
	LastError     string       `json:"lastError,omitempty"`
	LastErrorTime *metav1.Time `json:"lastErrorTime,omitempty"`
}

// TriggerList is a list of Triggers.
//
// +kubebuilder:object:root=true
type TriggerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Trigger `json:"items"`
}

var triggerGVK = schema.GroupVersionKind{Group: Group, Version: Version, Kind: KindTrigger}

var _ Object = (*Trigger)(nil)

// GroupVersionKind returns wisp.dev/v1alpha1 Trigger.
func (*Trigger) GroupVersionKind() schema.GroupVersionKind { return triggerGVK }

func triggerConditions() apis.ConditionSet { return apis.NewLivingConditionSet() }

// GetConditions returns the conditions; it implements apis.ConditionsAccessor.
func (s *TriggerStatus) GetConditions() apis.Conditions { return s.Conditions }

// SetConditions replaces the conditions; it implements apis.ConditionsAccessor.
func (s *TriggerStatus) SetConditions(c apis.Conditions) { s.Conditions = c }

// GetCondition returns the condition of type t, or nil.
func (s *TriggerStatus) GetCondition(t apis.ConditionType) *apis.Condition {
	return triggerConditions().Manage(s).GetCondition(t)
}

// IsReady reports whether the Ready condition is True.
func (s *TriggerStatus) IsReady() bool { return triggerConditions().Manage(s).IsHappy() }

// MarkReady sets Ready to True: the consumer runs.
func (s *TriggerStatus) MarkReady() { triggerConditions().Manage(s).MarkTrue(ConditionReady) }

// MarkNotReady sets Ready to False with a reason and a message saying
// what to do.
func (s *TriggerStatus) MarkNotReady(reason, message string) {
	triggerConditions().Manage(s).MarkFalse(ConditionReady, reason, "%s", message)
}
