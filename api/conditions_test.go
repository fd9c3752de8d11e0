package api

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"knative.dev/pkg/apis"
)

type wantCondition struct {
	typ     apis.ConditionType
	status  corev1.ConditionStatus
	reason  string
	message string
}

func checkConditions(t *testing.T, get func(apis.ConditionType) *apis.Condition, want ...wantCondition) {
	t.Helper()
	for _, w := range want {
		c := get(w.typ)
		switch {
		case c == nil:
			t.Errorf("condition %s missing", w.typ)
		case c.Status != w.status || c.Reason != w.reason || c.Message != w.message:
			t.Errorf("condition %s = %s %q %q, want %s %q %q", w.typ, c.Status, c.Reason, c.Message, w.status, w.reason, w.message)
		case c.LastTransitionTime.Inner.IsZero():
			t.Errorf("condition %s has no lastTransitionTime", w.typ)
		}
	}
}

func TestFunctionConditions(t *testing.T) {
	var s FunctionStatus
	if s.IsReady() || s.GetCondition(ConditionReady) != nil {
		t.Fatal("an empty status is ready or has a Ready condition")
	}
	s.InitializeConditions()
	checkConditions(t, s.GetCondition,
		wantCondition{ConditionReady, corev1.ConditionUnknown, "", ""},
		wantCondition{ConditionConfigurationsReady, corev1.ConditionUnknown, "", ""},
		wantCondition{ConditionRoutesReady, corev1.ConditionUnknown, "", ""})

	s.MarkConfigurationsReady()
	if s.IsReady() {
		t.Fatal("ready with routes not ready")
	}
	s.MarkRoutesReady()
	if !s.IsReady() {
		t.Fatal("not ready with configurations and routes ready")
	}

	s.MarkRoutesFailed("PortBusy", "port 80 is 100% busy")
	if s.IsReady() {
		t.Fatal("ready with routes failed")
	}
	checkConditions(t, s.GetCondition,
		wantCondition{ConditionReady, corev1.ConditionFalse, "PortBusy", "port 80 is 100% busy"},
		wantCondition{ConditionRoutesReady, corev1.ConditionFalse, "PortBusy", "port 80 is 100% busy"},
		wantCondition{ConditionConfigurationsReady, corev1.ConditionTrue, "", ""})

	s.MarkRoutesReady()
	s.MarkConfigurationsUnknown("Deploying", "hello-00002 is starting")
	checkConditions(t, s.GetCondition,
		wantCondition{ConditionReady, corev1.ConditionUnknown, "Deploying", "hello-00002 is starting"})
	s.MarkConfigurationsFailed("RevisionFailed", "hello-00002 failed")
	checkConditions(t, s.GetCondition,
		wantCondition{ConditionReady, corev1.ConditionFalse, "RevisionFailed", "hello-00002 failed"})
	s.MarkConfigurationsReady()
	s.MarkRoutesUnknown("Programming", "")
	checkConditions(t, s.GetCondition,
		wantCondition{ConditionReady, corev1.ConditionUnknown, "Programming", ""},
		wantCondition{ConditionRoutesReady, corev1.ConditionUnknown, "Programming", ""})
}

func TestRevisionConditions(t *testing.T) {
	var s RevisionStatus
	s.InitializeConditions()
	checkConditions(t, s.GetCondition,
		wantCondition{ConditionReady, corev1.ConditionUnknown, "", ""},
		wantCondition{ConditionSourceReady, corev1.ConditionUnknown, "", ""})
	if s.GetCondition(ConditionRoutesReady) != nil {
		t.Error("a Revision has a RoutesReady condition")
	}
	s.MarkSourceUnknown("Pulling", "oci://r.example/m:v1")
	checkConditions(t, s.GetCondition, wantCondition{ConditionReady, corev1.ConditionUnknown, "Pulling", "oci://r.example/m:v1"})
	s.MarkSourceReady()
	if !s.IsReady() {
		t.Fatal("not ready with the source ready")
	}
	s.MarkSourceFailed("CompileFailed", "invalid magic number")
	if s.IsReady() {
		t.Fatal("ready with the source failed")
	}
	checkConditions(t, s.GetCondition,
		wantCondition{ConditionReady, corev1.ConditionFalse, "CompileFailed", "invalid magic number"},
		wantCondition{ConditionSourceReady, corev1.ConditionFalse, "CompileFailed", "invalid magic number"})
}
