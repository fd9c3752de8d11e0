package activator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/runtime"
)

// Pools holds the Pool of every Revision that has one.
type Pools struct {
	mu    sync.RWMutex
	pools map[RevisionKey]*Pool
}

// NewPools returns an empty set of pools.
func NewPools() *Pools { return &Pools{pools: map[RevisionKey]*Pool{}} }

// Get returns the pool of a Revision, or nil.
func (ps *Pools) Get(namespace, revision string) *Pool {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.pools[RevisionKey{namespace, revision}]
}

// GetOrCreate returns the pool of a Revision, creating it with create
// when there is none.
func (ps *Pools) GetOrCreate(namespace, revision string, create func() *Pool) *Pool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	k := RevisionKey{namespace, revision}
	if p, ok := ps.pools[k]; ok {
		return p
	}
	p := create()
	ps.pools[k] = p
	return p
}

// Remove takes a Revision's pool out of service and returns it (nil if
// there was none); the caller closes it.
func (ps *Pools) Remove(namespace, revision string) *Pool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	k := RevisionKey{namespace, revision}
	p := ps.pools[k]
	delete(ps.pools, k)
	return p
}

// CloseAll closes every pool, letting requests in flight finish until ctx ends.
func (ps *Pools) CloseAll(ctx context.Context) {
	ps.mu.Lock()
	all := ps.pools
	ps.pools = map[RevisionKey]*Pool{}
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Go(func() { p.Close(ctx) })
	}
	wg.Wait()
}

// Gateway is the http.Handler every function request enters by: it looks
// up the route, picks a Revision and hands the request to its Pool.
type Gateway struct {
	routes    *Routes
	pools     *Pools
	log       *slog.Logger
	accessLog *slog.Logger // nil: no access log
	tracer    trace.Tracer // nil: no spans, traceparent only passed on

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
}

// SetAccessLog makes the gateway log one line per request to l (nil
// turns it off). Call it before serving.
func (g *Gateway) SetAccessLog(l *slog.Logger) { g.accessLog = l }

// SetTracer makes the gateway record a server span for every request
// with tp, continuing the client's W3C trace and passing its own span on
// to the function as the parent. Call it before serving.
func (g *Gateway) SetTracer(tp trace.TracerProvider) {
	g.tracer = tp.Tracer("github.com/wisp-faas/wisp/activator")
}

// NewGateway returns the gateway handler. Its metrics are registered
// with reg.
func NewGateway(routes *Routes, pools *Pools, log *slog.Logger, reg prometheus.Registerer) (*Gateway, error) {
	g := &Gateway{
		routes: routes,
		pools:  pools,
		log:    log,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wisp_gateway_requests_total",
			Help: "Requests served by the gateway, by function, revision and response code.",
		}, []string{"namespace", "function", "revision", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wisp_gateway_request_duration_seconds",
			Help:    "Time from a request entering the gateway to its response being complete.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"namespace", "function", "revision"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wisp_gateway_requests_in_flight",
			Help: "Requests in the gateway now, by function.",
		}, []string{"namespace", "function"}),
	}
	for _, c := range []prometheus.Collector{g.requests, g.latency, g.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering gateway metrics: %w", err)
		}
	}
	return g, nil
}

// ServeHTTP routes one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	begin := time.Now()
	var span trace.Span
	var traceID string
	if g.tracer != nil {
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span = g.tracer.Start(ctx, "gateway", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("server.address", r.Host),
				attribute.String("url.path", r.URL.Path)))
		defer span.End()
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(r.Header))
		r = r.WithContext(ctx)
		traceID = span.SpanContext().TraceID().String()
	} else {
		traceID = requestTraceID(r)
	}
	m, ok := g.routes.lookup(r)
	if !ok {
		if span != nil {
			span.SetAttributes(attribute.Int("http.response.status_code", http.StatusNotFound))
		}
		runtime.WriteError(w, http.StatusNotFound, fmt.Sprintf(
			"no function serves host %q or path %q; call /fn/<namespace>/<name>/ or use the host <name>.<namespace>.<domain>", r.Host, r.URL.Path))
		return
	}
	rt := m.route
	inFlight := g.inFlight.WithLabelValues(rt.Namespace, rt.Function)
	inFlight.Inc()
	defer inFlight.Dec()
	var rule *Rule
	rev, ok := "", false
	if m.tag == "" {
		if rule = rt.rule(r); rule != nil {
			rev, ok = rule.Revision, true
		}
	}
	if !ok {
		rev, ok = rt.pick(m.tag, randInt64N)
	}
	if !ok {
		if m.tag != "" {
			runtime.WriteError(w, http.StatusNotFound, fmt.Sprintf("function %s/%s has no tag %q", rt.Namespace, rt.Function, m.tag))
		} else {
			runtime.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("function %s/%s has no ready revision yet; see 'wisp service describe %s -n %s'", rt.Namespace, rt.Function, rt.Function, rt.Namespace))
		}
		return
	}
	pool := g.pools.Get(rt.Namespace, rev)
	if pool == nil {
		runtime.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("revision %s of function %s/%s is not running", rev, rt.Namespace, rt.Function))
		return
	}

	ctx := r.Context()
	timeout := time.Duration(0)
	if ts := pool.Revision().Spec.TimeoutSeconds; ts != nil && *ts > 0 {
		timeout = time.Duration(*ts) * time.Second
	}
	retry := rt.Retry
	if rule != nil {
		if rule.Timeout > 0 && (timeout == 0 || rule.Timeout < timeout) {
			timeout = rule.Timeout
		}
		if rule.Retry != nil {
			retry = rule.Retry
		}
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	out := r.WithContext(ctx)
	if m.path == r.URL.Path {
		// Only the gateway says what prefix it removed.
		r.Header.Del("X-Forwarded-Prefix")
	} else {
		prefix := strings.TrimSuffix(r.URL.Path, strings.TrimPrefix(m.path, "/"))
		u := *r.URL
		u.Path, u.RawPath = m.path, ""
		out.URL = &u
		out.Header = r.Header.Clone()
		out.Header.Set("X-Forwarded-Prefix", strings.TrimSuffix(prefix, "/"))
	}

	sw := &statusWriter{ResponseWriter: w}
	if rt.Chain.Len() == 0 {
		forward(sw, out, pool, retry, rt.budget)
	} else {
		x := &filter.Exchange{Request: out, Namespace: rt.Namespace, Function: rt.Function, Revision: rev, TraceID: traceID}
		rt.Chain.Serve(sw, x, &upstream{pool: pool, retry: retry, budget: rt.budget})
	}
	if sw.code == 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		runtime.WriteFailure(sw, http.StatusGatewayTimeout, runtime.FailureTimeout, fmt.Sprintf("function %s/%s did not answer within its timeout", rt.Namespace, rt.Function))
	}
	code := sw.code
	if code == 0 {
		code = http.StatusOK
	}
	took := time.Since(begin)
	if span != nil {
		span.SetName(rt.Namespace + "/" + rt.Function)
		span.SetAttributes(attribute.String("wisp.namespace", rt.Namespace), attribute.String("wisp.function", rt.Function),
			attribute.String("wisp.revision", rev), attribute.Int("http.response.status_code", code))
		if code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(code))
		}
	}
	g.requests.WithLabelValues(rt.Namespace, rt.Function, rev, strconv.Itoa(code)).Inc()
	g.latency.WithLabelValues(rt.Namespace, rt.Function, rev).Observe(took.Seconds())
	if g.accessLog != nil {
		g.accessLog.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("host", r.Host), slog.String("path", r.URL.Path),
			slog.Int("status", code), slog.Duration("duration", took),
			slog.String("namespace", rt.Namespace), slog.String("function", rt.Function), slog.String("revision", rev),
			slog.String("trace_id", traceID), slog.String("remote", r.RemoteAddr))
	}
}

// upstream is what the filter chain calls once the request phase is
// done: the Revision's pool, with retries.
type upstream struct {
	pool   *Pool
	retry  *RetryPolicy
	budget *retryBudget
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	forward(w, r, u.pool, u.retry, u.budget)
}

// statusWriter records the status code written through it. Unwrap lets
// http.ResponseController reach the underlying writer (Flush, Hijack).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
