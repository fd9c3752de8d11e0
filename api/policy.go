package api

// The gateway's per-Function policy: built-in filters and resilience.
// None of it is part of the template, so changing it never cuts a
// Revision; it takes effect on the next request.

// GatewayFilter is one built-in filter of a Function's chain (or of the
// node's global chain). Exactly one of Headers, RateLimit, Fault, Mirror
// and CORS is set.
type GatewayFilter struct {
	// Name identifies the filter in logs and errors; default: its kind.
	Name string `json:"name,omitempty"`
	// Phase places the filter in the chain: AUTHN, AUTHZ, STATS or empty
	// (last), as Istio's WasmPlugin phases.
	Phase string `json:"phase,omitempty"`
	// Priority orders filters within a phase, higher first.
	Priority int32 `json:"priority,omitempty"`

	Headers   *HeadersFilter   `json:"headers,omitempty"`
	RateLimit *RateLimitFilter `json:"rateLimit,omitempty"`
	Fault     *FaultFilter     `json:"fault,omitempty"`
	Mirror    *MirrorFilter    `json:"mirror,omitempty"`
	CORS      *CORSFilter      `json:"cors,omitempty"`
}

// HeadersFilter edits headers on the way in and on the way out.
type HeadersFilter struct {
	Request  HeaderEdits `json:"request,omitempty"`
	Response HeaderEdits `json:"response,omitempty"`
}

// HeaderEdits are applied in the order Remove, Set, Add.
type HeaderEdits struct {
	// Set replaces a header's values.
	Set map[string]string `json:"set,omitempty"`
	// Add appends a value to a header.
	Add map[string]string `json:"add,omitempty"`
	// Remove deletes headers.
	Remove []string `json:"remove,omitempty"`
}

// RateLimitFilter admits requests at a rate, from a token bucket, and
// answers the rest 429 with Retry-After.
type RateLimitFilter struct {
	// RequestsPerSecond is the rate tokens come back at.
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	// Burst is the bucket's size; default: RequestsPerSecond rounded up.
	Burst int32 `json:"burst,omitempty"`
	// Key chooses the bucket: empty for one bucket for the whole
	// Function, "client-ip" for one per client address, or
	// "header:<Name>" for one per value of a request header.
	Key string `json:"key,omitempty"`
}

// FaultFilter injects faults into a share of requests, to test how
// callers cope. Delay applies before Abort.
type FaultFilter struct {
	Delay *FaultDelay `json:"delay,omitempty"`
	Abort *FaultAbort `json:"abort,omitempty"`
}

// FaultDelay holds a share of requests for a fixed time.
type FaultDelay struct {
	// Percentage of requests delayed, 0 to 100.
	Percentage float64 `json:"percentage"`
	// FixedDelay is how long, e.g. "250ms".
	FixedDelay string `json:"fixedDelay"`
}

// FaultAbort answers a share of requests with a status, without calling
// the Function.
type FaultAbort struct {
	// Percentage of requests aborted, 0 to 100.
	Percentage float64 `json:"percentage"`
	// HTTPStatus is the status to answer with (400–599).
	HTTPStatus int32 `json:"httpStatus"`
}

// MirrorFilter sends a copy of a share of requests to another Revision
// of the Function, fire and forget: the copy's response is ignored, and
// its Host gets the suffix "-shadow" as Envoy's mirrors do.
type MirrorFilter struct {
	// Exactly one of RevisionName and Tag (of spec.traffic) names where
	// copies go.
	RevisionName string `json:"revisionName,omitempty"`
	Tag          string `json:"tag,omitempty"`
	// Percentage of requests copied, 0 to 100; default 100.
	Percentage *float64 `json:"percentage,omitempty"`
}

// CORSFilter answers CORS preflight requests and adds the CORS headers
// to responses for allowed origins.
type CORSFilter struct {
	// AllowOrigins are the origins allowed, exactly ("https://a.example")
	// or "*" for any.
	AllowOrigins     []string `json:"allowOrigins"`
	AllowMethods     []string `json:"allowMethods,omitempty"`
	AllowHeaders     []string `json:"allowHeaders,omitempty"`
	ExposeHeaders    []string `json:"exposeHeaders,omitempty"`
	MaxAgeSeconds    int32    `json:"maxAgeSeconds,omitempty"`
	AllowCredentials bool     `json:"allowCredentials,omitempty"`
}

// RetryPolicy retries failed attempts of a request.
type RetryPolicy struct {
	// Attempts is how many times a request is retried after its first
	// try; 0 turns retries off.
	Attempts int32 `json:"attempts"`
	// PerTryTimeout bounds each try, e.g. "500ms"; default: none (the
	// request's timeout bounds all tries together).
	PerTryTimeout string `json:"perTryTimeout,omitempty"`
	// RetryOn lists the failures that are retried: "5xx" (any 5xx),
	// "gateway-error" (502, 503, 504), "connect-failure", "reset",
	// "overloaded" (a 503 from the gateway's own throttler, circuit
	// breaker or queue), "retriable-4xx" (409). Default: connect-failure,
	// reset, overloaded, gateway-error.
	RetryOn []string `json:"retryOn,omitempty"`
	// RetryNonIdempotent also retries POST and PATCH requests.
	RetryNonIdempotent bool `json:"retryNonIdempotent,omitempty"`
	// BudgetPercent caps the retries in flight at this share of the
	// requests in flight to the Function (at least 3 at once), so that
	// a failing Revision cannot multiply its load; default 20.
	BudgetPercent *int32 `json:"budgetPercent,omitempty"`
}

// CircuitBreaker answers 503 at once, instead of adding load, when a
// Revision already has this many requests.
type CircuitBreaker struct {
	// MaxRequests bounds the requests being served by a Revision's
	// instances at once; 0 means no bound.
	MaxRequests int64 `json:"maxRequests,omitempty"`
	// MaxPendingRequests bounds the requests waiting for an instance
	// with room; 0 means the gateway's queue depth.
	MaxPendingRequests int64 `json:"maxPendingRequests,omitempty"`
}

// OutlierDetection takes an instance that keeps failing out of load
// balancing for a while (process and container instances).
type OutlierDetection struct {
	// Consecutive5xx ejects an instance after this many 5xx responses
	// in a row; default 5.
	Consecutive5xx int32 `json:"consecutive5xx,omitempty"`
	// BaseEjectionTime is how long the first ejection lasts, e.g. "30s";
	// each further ejection of the same instance lasts one more time
	// as long. Default 30s.
	BaseEjectionTime string `json:"baseEjectionTime,omitempty"`
	// MaxEjectionPercent caps the share of instances ejected at once;
	// default 50. One instance is never ejected while it is the only
	// one ready.
	MaxEjectionPercent int32 `json:"maxEjectionPercent,omitempty"`
}
