package activator

import (
	"net/http/httptest"
	"testing"
)

func TestTraceparentIsKeptOrMade(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("traceparent", valid)
	if id := traceID(r); id != "4bf92f3577b34da6a3ce929d0e0e4736" || r.Header.Get("traceparent") != valid {
		t.Fatalf("a valid traceparent was not kept: id %q header %q", id, r.Header.Get("traceparent"))
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"} {
		r := httptest.NewRequest("GET", "/", nil)
		if bad != "" {
			r.Header.Set("traceparent", bad)
		}
		id := traceID(r)
		tp := r.Header.Get("traceparent")
		if !validTraceparent(tp) || tp[3:35] != id {
			t.Fatalf("for %q: made %q with id %q", bad, tp, id)
		}
	}
	a, b := httptest.NewRequest("GET", "/", nil), httptest.NewRequest("GET", "/", nil)
	if traceID(a) == traceID(b) {
		t.Fatal("two requests got the same trace id")
	}
}
