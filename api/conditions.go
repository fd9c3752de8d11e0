package api

import "knative.dev/pkg/apis"

// Condition types. Ready is the top-level condition of both Functions and
// Revisions; it is True when all the other conditions of the object are.
const (
	// ConditionReady says whether the object serves requests.
	ConditionReady = apis.ConditionReady
	// ConditionConfigurationsReady says whether a Function's latest
	// Revision is ready.
	ConditionConfigurationsReady apis.ConditionType = "ConfigurationsReady"
	// ConditionRoutesReady says whether a Function's traffic is programmed.
	ConditionRoutesReady apis.ConditionType = "RoutesReady"
	// ConditionSourceReady says whether a Revision's source (module,
	// executable or image) is resolved and loaded.
	ConditionSourceReady apis.ConditionType = "SourceReady"
)

func functionConditions() apis.ConditionSet {
	return apis.NewLivingConditionSet(ConditionConfigurationsReady, ConditionRoutesReady)
}

func revisionConditions() apis.ConditionSet {
	return apis.NewLivingConditionSet(ConditionSourceReady)
}

// GetConditions returns the conditions; it implements apis.ConditionsAccessor.
func (s *FunctionStatus) GetConditions() apis.Conditions { return s.Conditions }

// SetConditions replaces the conditions; it implements apis.ConditionsAccessor.
func (s *FunctionStatus) SetConditions(c apis.Conditions) { s.Conditions = c }

// InitializeConditions sets every condition that is not set yet to Unknown.
func (s *FunctionStatus) InitializeConditions() {
	functionConditions().Manage(s).InitializeConditions()
}

// GetCondition returns the condition of type t, or nil.
func (s *FunctionStatus) GetCondition(t apis.ConditionType) *apis.Condition {
	return functionConditions().Manage(s).GetCondition(t)
}

// IsReady reports whether the Ready condition is True.
func (s *FunctionStatus) IsReady() bool { return functionConditions().Manage(s).IsHappy() }

// MarkConfigurationsReady sets ConfigurationsReady to True (and Ready to
// True if RoutesReady is True).
func (s *FunctionStatus) MarkConfigurationsReady() {
	functionConditions().Manage(s).MarkTrue(ConditionConfigurationsReady)
}

// MarkConfigurationsUnknown sets ConfigurationsReady, and Ready, to Unknown:
// the latest Revision is on its way.
func (s *FunctionStatus) MarkConfigurationsUnknown(reason, message string) {
	functionConditions().Manage(s).MarkUnknown(ConditionConfigurationsReady, reason, "%s", message)
}

// MarkConfigurationsFailed sets ConfigurationsReady, and Ready, to False.
func (s *FunctionStatus) MarkConfigurationsFailed(reason, message string) {
	functionConditions().Manage(s).MarkFalse(ConditionConfigurationsReady, reason, "%s", message)
}

// MarkRoutesReady sets RoutesReady to True (and Ready to True if
// ConfigurationsReady is True).
func (s *FunctionStatus) MarkRoutesReady() {
	functionConditions().Manage(s).MarkTrue(ConditionRoutesReady)
}

// MarkRoutesUnknown sets RoutesReady, and Ready, to Unknown.
func (s *FunctionStatus) MarkRoutesUnknown(reason, message string) {
	functionConditions().Manage(s).MarkUnknown(ConditionRoutesReady, reason, "%s", message)
}

// MarkRoutesFailed sets RoutesReady, and Ready, to False.
func (s *FunctionStatus) MarkRoutesFailed(reason, message string) {
	functionConditions().Manage(s).MarkFalse(ConditionRoutesReady, reason, "%s", message)
}

// GetConditions returns the conditions; it implements apis.ConditionsAccessor.
func (s *RevisionStatus) GetConditions() apis.Conditions { return s.Conditions }

// SetConditions replaces the conditions; it implements apis.ConditionsAccessor.
func (s *RevisionStatus) SetConditions(c apis.Conditions) { s.Conditions = c }

// InitializeConditions sets every condition that is not set yet to Unknown.
func (s *RevisionStatus) InitializeConditions() {
	revisionConditions().Manage(s).InitializeConditions()
}

// GetCondition returns the condition of type t, or nil.
func (s *RevisionStatus) GetCondition(t apis.ConditionType) *apis.Condition {
	return revisionConditions().Manage(s).GetCondition(t)
}

// IsReady reports whether the Ready condition is True.
func (s *RevisionStatus) IsReady() bool { return revisionConditions().Manage(s).IsHappy() }

// MarkSourceReady sets SourceReady, and Ready, to True.
func (s *RevisionStatus) MarkSourceReady() {
	revisionConditions().Manage(s).MarkTrue(ConditionSourceReady)
}

// MarkSourceUnknown sets SourceReady, and Ready, to Unknown: the source is
// being fetched or compiled.
func (s *RevisionStatus) MarkSourceUnknown(reason, message string) {
	revisionConditions().Manage(s).MarkUnknown(ConditionSourceReady, reason, "%s", message)
}

// MarkSourceFailed sets SourceReady, and Ready, to False.
func (s *RevisionStatus) MarkSourceFailed(reason, message string) {
	revisionConditions().Manage(s).MarkFalse(ConditionSourceReady, reason, "%s", message)
}
