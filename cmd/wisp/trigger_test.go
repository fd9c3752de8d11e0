package main

import (
	"reflect"
	"testing"

	"github.com/wisp-faas/wisp/api"
)

func TestParseFilters(t *testing.T) {
	got, err := parseFilters([]string{"type=order.created", "source^=/shop", "region$=-eu", "subject=a=b"})
	if err != nil {
		t.Fatal(err)
	}
	want := []api.EventFilter{
		{Exact: map[string]string{"type": "order.created", "subject": "a=b"}},
		{Prefix: map[string]string{"source": "/shop"}},
		{Suffix: map[string]string{"region": "-eu"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseFilters = %+v, want %+v", got, want)
	}
	if _, err := parseFilters([]string{"type"}); err == nil {
		t.Fatal("a filter without = was accepted")
	}
}

func TestParseSink(t *testing.T) {
	for in, want := range map[string]api.Destination{
		"fn:fulfil":            {Ref: &api.FunctionRef{Name: "fulfil"}},
		"fn:fulfil@canary":     {Ref: &api.FunctionRef{Name: "fulfil", Tag: "canary"}},
		"ksvc:fulfil":          {Ref: &api.FunctionRef{Name: "fulfil"}},
		"https://x.example/in": {URI: "https://x.example/in"},
	} {
		got, err := parseSink(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseSink(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"fulfil", "fn:", "ftp://x"} {
		if _, err := parseSink(in); err == nil {
			t.Errorf("parseSink(%q) accepted", in)
		}
	}
}
