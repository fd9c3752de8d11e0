package activator

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestTraceparentIsKeptOrMade(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("traceparent", valid)
	if id := requestTraceID(r); id != "4bf92f3577b34da6a3ce929d0e0e4736" || r.Header.Get("traceparent") != valid {
		t.Fatalf("a valid traceparent was not kept: id %q header %q", id, r.Header.Get("traceparent"))
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"} {
		r := httptest.NewRequest("GET", "/", nil)
		if bad != "" {
			r.Header.Set("traceparent", bad)
		}
		id := requestTraceID(r)
		tp := r.Header.Get("traceparent")
		if !validTraceparent(tp) || tp[3:35] != id {
			t.Fatalf("for %q: made %q with id %q", bad, tp, id)
		}
	}
	a, b := httptest.NewRequest("GET", "/", nil), httptest.NewRequest("GET", "/", nil)
	if requestTraceID(a) == requestTraceID(b) {
		t.Fatal("two requests got the same trace id")
	}
}

func TestGatewaySpansContinueTheClientsTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	seen := make(chan string, 1)
	e := startMesh(t, 1, 0, func(_ int, w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Traceparent")
		http.Error(w, "boom", 502)
	}, func(g *Gateway) { g.SetTracer(tp) })
	const client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, _ := http.NewRequest("GET", e.url+"/x", nil)
	req.Header.Set("Traceparent", client)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := <-seen
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans ended, want 1", len(spans))
	}
	s := spans[0]
	if s.SpanContext().TraceID().String() != client[3:35] || s.Parent().SpanID().String() != client[36:52] {
		t.Errorf("span %s parent %s: not in the client's trace", s.SpanContext().TraceID(), s.Parent().SpanID())
	}
	if want := "00-" + client[3:35] + "-" + s.SpanContext().SpanID().String() + "-01"; got != want {
		t.Errorf("function got traceparent %q, want %q (the gateway's span as parent)", got, want)
	}
	if s.Name() != "ns/fn" || s.Status().Code != codes.Error {
		t.Errorf("span %q status %v", s.Name(), s.Status())
	}
	attrs := map[string]string{}
	for _, a := range s.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["wisp.revision"] != "fn-00001" || attrs["http.response.status_code"] != "502" {
		t.Errorf("attributes %v", attrs)
	}
}
