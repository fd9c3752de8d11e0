package api

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"knative.dev/pkg/apis"
)

// Phases are the filter phases a GatewayFilter or Filter may name.
var phases = []string{PhaseAuthN, PhaseAuthZ, PhaseStats, PhaseUnspecified}

// RetryOn is every value RetryPolicy.RetryOn accepts.
var retryOn = []string{"5xx", "gateway-error", "connect-failure", "reset", "overloaded", "retriable-4xx"}

// validatePolicy checks a Function's filters and resilience settings.
func (s *FunctionSpec) validatePolicy() *apis.FieldError {
	var errs *apis.FieldError
	for i := range s.Filters {
		errs = errs.Also(s.Filters[i].Validate(s.Traffic).ViaFieldIndex("filters", i))
	}
	errs = errs.Also(s.Retries.validate().ViaField("retries"))
	if cb := s.CircuitBreaker; cb != nil {
		if cb.MaxRequests < 0 {
			errs = errs.Also(apis.ErrInvalidValue(cb.MaxRequests, "circuitBreaker.maxRequests", "want 0 (no bound) or more"))
		}
		if cb.MaxPendingRequests < 0 {
			errs = errs.Also(apis.ErrInvalidValue(cb.MaxPendingRequests, "circuitBreaker.maxPendingRequests", "want 0 (the default) or more"))
		}
	}
	if od := s.OutlierDetection; od != nil {
		if od.Consecutive5xx < 0 {
			errs = errs.Also(apis.ErrInvalidValue(od.Consecutive5xx, "outlierDetection.consecutive5xx", "want 1 or more, or 0 for the default 5"))
		}
		errs = errs.Also(validateDuration(od.BaseEjectionTime, "outlierDetection.baseEjectionTime", false))
		if od.MaxEjectionPercent < 0 || od.MaxEjectionPercent > 100 {
			errs = errs.Also(apis.ErrOutOfBoundsValue(od.MaxEjectionPercent, 0, 100, "outlierDetection.maxEjectionPercent"))
		}
	}
	for i := range s.Routes {
		r := &s.Routes[i]
		errs = errs.Also(validateDuration(r.Timeout, "timeout", false).ViaFieldIndex("routes", i))
		errs = errs.Also(r.Retries.validate().ViaField("retries").ViaFieldIndex("routes", i))
	}
	return errs
}

// Validate checks a built-in filter. traffic is the Function's
// spec.traffic, which a mirror's tag must name; nil for the node's
// global filters, which may not mirror.
func (f *GatewayFilter) Validate(traffic []TrafficTarget) *apis.FieldError {
	var errs *apis.FieldError
	if f.Phase != "" && !slices.Contains(phases, strings.ToUpper(f.Phase)) {
		errs = errs.Also(apis.ErrInvalidValue(f.Phase, "phase", "want one of "+strings.Join(phases, ", ")+" or empty"))
	}
	kinds := 0
	if f.Headers != nil {
		kinds++
		errs = errs.Also(f.Headers.Request.validate().ViaField("headers.request"))
		errs = errs.Also(f.Headers.Response.validate().ViaField("headers.response"))
	}
	if rl := f.RateLimit; rl != nil {
		kinds++
		if rl.RequestsPerSecond <= 0 {
			errs = errs.Also(apis.ErrInvalidValue(rl.RequestsPerSecond, "rateLimit.requestsPerSecond", "want more than 0"))
		}
		if rl.Burst < 0 {
			errs = errs.Also(apis.ErrInvalidValue(rl.Burst, "rateLimit.burst", "want 1 or more, or 0 for the rate rounded up"))
		}
		switch name, isHeader := strings.CutPrefix(rl.Key, "header:"); {
		case rl.Key == "" || rl.Key == "client-ip":
		case isHeader && len(validation.IsHTTPHeaderName(name)) == 0:
		default:
			errs = errs.Also(apis.ErrInvalidValue(rl.Key, "rateLimit.key", `want "", "client-ip" or "header:<Name>"`))
		}
	}
	if fl := f.Fault; fl != nil {
		kinds++
		if fl.Delay == nil && fl.Abort == nil {
			errs = errs.Also(apis.ErrMissingOneOf("fault.delay", "fault.abort"))
		}
		if d := fl.Delay; d != nil {
			errs = errs.Also(validatePercentage(d.Percentage, "fault.delay.percentage"))
			errs = errs.Also(validateDuration(d.FixedDelay, "fault.delay.fixedDelay", true))
		}
		if a := fl.Abort; a != nil {
			errs = errs.Also(validatePercentage(a.Percentage, "fault.abort.percentage"))
			if a.HTTPStatus < 400 || a.HTTPStatus > 599 {
				errs = errs.Also(apis.ErrOutOfBoundsValue(a.HTTPStatus, 400, 599, "fault.abort.httpStatus"))
			}
		}
	}
	if m := f.Mirror; m != nil {
		kinds++
		switch {
		case traffic == nil:
			errs = errs.Also(apis.ErrGeneric("a global filter cannot mirror: mirror to a revision from the Function's own spec.filters", "mirror"))
		case (m.RevisionName == "") == (m.Tag == ""):
			errs = errs.Also(apis.ErrMissingOneOf("mirror.revisionName", "mirror.tag"))
		case m.Tag != "" && !hasTag(traffic, m.Tag):
			errs = errs.Also(apis.ErrInvalidValue(m.Tag, "mirror.tag", "no spec.traffic target has this tag"))
		}
		if m.Percentage != nil {
			errs = errs.Also(validatePercentage(*m.Percentage, "mirror.percentage"))
		}
	}
	if c := f.CORS; c != nil {
		kinds++
		if len(c.AllowOrigins) == 0 {
			errs = errs.Also(apis.ErrMissingField("cors.allowOrigins"))
		}
		for i, o := range c.AllowOrigins {
			if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
				errs = errs.Also(apis.ErrInvalidArrayValue(o, "cors.allowOrigins", i))
			}
		}
		if c.AllowCredentials && slices.Contains(c.AllowOrigins, "*") {
			errs = errs.Also(apis.ErrGeneric(`browsers refuse credentials with origin "*": list the origins`, "cors.allowCredentials"))
		}
		if c.MaxAgeSeconds < 0 {
			errs = errs.Also(apis.ErrInvalidValue(c.MaxAgeSeconds, "cors.maxAgeSeconds", "want 0 or more"))
		}
	}
	switch {
	case kinds == 0:
		errs = errs.Also(apis.ErrMissingOneOf("headers", "rateLimit", "fault", "mirror", "cors"))
	case kinds > 1:
		errs = errs.Also(apis.ErrMultipleOneOf("headers", "rateLimit", "fault", "mirror", "cors"))
	}
	return errs
}

func (e *HeaderEdits) validate() *apis.FieldError {
	var errs *apis.FieldError
	check := func(name, field string) {
		if len(validation.IsHTTPHeaderName(name)) > 0 {
			errs = errs.Also(apis.ErrInvalidKeyName(name, field, "want an HTTP header name"))
		}
	}
	for k := range e.Set {
		check(k, "set")
	}
	for k := range e.Add {
		check(k, "add")
	}
	for i, k := range e.Remove {
		if len(validation.IsHTTPHeaderName(k)) > 0 {
			errs = errs.Also(apis.ErrInvalidArrayValue(k, "remove", i))
		}
	}
	return errs
}

func (p *RetryPolicy) validate() *apis.FieldError {
	if p == nil {
		return nil
	}
	var errs *apis.FieldError
	if p.Attempts < 0 || p.Attempts > 10 {
		errs = errs.Also(apis.ErrOutOfBoundsValue(p.Attempts, 0, 10, "attempts"))
	}
	errs = errs.Also(validateDuration(p.PerTryTimeout, "perTryTimeout", false))
	for i, on := range p.RetryOn {
		if !slices.Contains(retryOn, on) {
			errs = errs.Also(apis.ErrInvalidArrayValue(on, "retryOn", i).Also(
				&apis.FieldError{Message: "want one of " + strings.Join(retryOn, ", "), Paths: []string{fmt.Sprintf("retryOn[%d]", i)}}))
		}
	}
	if b := p.BudgetPercent; b != nil && (*b < 1 || *b > 100) {
		errs = errs.Also(apis.ErrOutOfBoundsValue(*b, 1, 100, "budgetPercent"))
	}
	return errs
}

// validateDuration checks a Go duration string; empty is an error only
// when required.
func validateDuration(s, field string, required bool) *apis.FieldError {
	if s == "" {
		if required {
			return apis.ErrMissingField(field)
		}
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return apis.ErrInvalidValue(s, field, `want a positive duration such as "250ms" or "2s"`)
	}
	return nil
}

func validatePercentage(p float64, field string) *apis.FieldError {
	if p < 0 || p > 100 {
		return apis.ErrOutOfBoundsValue(p, 0, 100, field)
	}
	return nil
}

func hasTag(traffic []TrafficTarget, tag string) bool {
	for _, t := range traffic {
		if t.Tag == tag {
			return true
		}
	}
	return false
}
