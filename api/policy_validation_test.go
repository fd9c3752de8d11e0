package api

import (
	"strings"
	"testing"
)

func TestPolicyValidation(t *testing.T) {
	f := validFunction()
	f.Spec.Traffic = []TrafficTarget{{LatestRevision: new(true), Percent: new(int64(100)), Tag: "current"}}
	f.Spec.Filters = []GatewayFilter{
		{Phase: "LOGGING", Headers: &HeadersFilter{Request: HeaderEdits{Set: map[string]string{"bad header": "x"}}, Response: HeaderEdits{Remove: []string{"ok", "no good"}}}},
		{RateLimit: &RateLimitFilter{RequestsPerSecond: 0, Key: "cookie:session"}},
		{Fault: &FaultFilter{Delay: &FaultDelay{Percentage: 120}, Abort: &FaultAbort{Percentage: 5, HTTPStatus: 302}}},
		{Mirror: &MirrorFilter{Tag: "nope", Percentage: new(-1.0)}},
		{CORS: &CORSFilter{AllowOrigins: []string{"*", "example.com"}, AllowCredentials: true}},
		{},
		{Headers: &HeadersFilter{}, CORS: &CORSFilter{AllowOrigins: []string{"*"}}},
	}
	f.Spec.Retries = &RetryPolicy{Attempts: 11, PerTryTimeout: "soon", RetryOn: []string{"5xx", "always"}, BudgetPercent: new(int32(0))}
	f.Spec.CircuitBreaker = &CircuitBreaker{MaxRequests: -1}
	f.Spec.OutlierDetection = &OutlierDetection{BaseEjectionTime: "-1s", MaxEjectionPercent: 101}
	f.Spec.Routes = []RouteRule{{Headers: []StringMatch{{Name: "x-env", Exact: "a"}}, LatestRevision: new(true), Timeout: "1 second", Retries: &RetryPolicy{Attempts: -1}}}
	err := f.Validate()
	if err == nil {
		t.Fatal("invalid policy accepted")
	}
	for _, want := range []string{
		"spec.filters[0].phase", "spec.filters[0].headers.request.set", "spec.filters[0].headers.response.remove[1]",
		"spec.filters[1].rateLimit.requestsPerSecond", "spec.filters[1].rateLimit.key",
		"spec.filters[2].fault.delay.percentage", "spec.filters[2].fault.delay.fixedDelay", "spec.filters[2].fault.abort.httpStatus",
		"spec.filters[3].mirror.tag", "spec.filters[3].mirror.percentage",
		"spec.filters[4].cors.allowOrigins[1]", "spec.filters[4].cors.allowCredentials",
		"expected exactly one, got neither: spec.filters[5].cors",
		"expected exactly one, got both: spec.filters[6].cors",
		"spec.retries.attempts", "spec.retries.perTryTimeout", "spec.retries.retryOn[1]", "spec.retries.budgetPercent",
		"spec.circuitBreaker.maxRequests",
		"spec.outlierDetection.baseEjectionTime", "spec.outlierDetection.maxEjectionPercent",
		"spec.routes[0].timeout", "spec.routes[0].retries.attempts",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}

	f.Spec.Filters = []GatewayFilter{
		{Phase: "authn", Headers: &HeadersFilter{Request: HeaderEdits{Set: map[string]string{"X-A": "1"}, Remove: []string{"Cookie"}}}},
		{RateLimit: &RateLimitFilter{RequestsPerSecond: 0.5, Key: "header:X-Api-Key"}},
		{Fault: &FaultFilter{Abort: &FaultAbort{Percentage: 12.5, HTTPStatus: 503}}},
		{Mirror: &MirrorFilter{Tag: "current"}},
		{CORS: &CORSFilter{AllowOrigins: []string{"https://app.example"}, AllowCredentials: true}},
	}
	f.Spec.Retries = &RetryPolicy{Attempts: 3, PerTryTimeout: "250ms", RetryOn: []string{"5xx", "reset"}}
	f.Spec.CircuitBreaker = &CircuitBreaker{MaxRequests: 10, MaxPendingRequests: 5}
	f.Spec.OutlierDetection = &OutlierDetection{Consecutive5xx: 3, BaseEjectionTime: "10s"}
	f.Spec.Routes[0].Timeout, f.Spec.Routes[0].Retries = "2s", &RetryPolicy{Attempts: 1}
	if err := f.Validate(); err != nil {
		t.Fatalf("valid policy refused: %v", err)
	}
	if err := (&GatewayFilter{Mirror: &MirrorFilter{RevisionName: "hello-00001"}}).Validate(nil); err == nil || !strings.Contains(err.Error(), "global") {
		t.Errorf("a global mirror was accepted: %v", err)
	}
}
