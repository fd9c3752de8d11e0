package api

import (
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validTrigger() *Trigger {
	return &Trigger{
		TypeMeta: metav1.TypeMeta{APIVersion: APIVersion, Kind: KindTrigger},
		Spec: TriggerSpec{
			Source: EventSource{Subject: "orders.>"},
			Filters: []EventFilter{
				{Exact: map[string]string{"type": "order.created"}},
				{Prefix: map[string]string{"source": "/shop"}},
			},
			Sink: Destination{Ref: &FunctionRef{Name: "fulfil", Tag: "canary"}},
			Delivery: DeliverySpec{
				Retry: new(int32(5)), BackoffPolicy: BackoffLinear, BackoffDelay: "PT0.5S",
				BackoffMax: "10s", Timeout: "5s", DeadLetterSubject: "orders.dlq",
			},
		},
	}
}

func TestTriggerDefaults(t *testing.T) {
	tr := &Trigger{Spec: TriggerSpec{Source: EventSource{Subject: "orders.created"}}}
	tr.Name = "t"
	tr.SetDefaults()
	want := TriggerSpec{
		Source: EventSource{Stream: "ORDERS", Subject: "orders.created", CreateStream: true},
		Delivery: DeliverySpec{
			Retry: new(DefaultRetry), BackoffPolicy: BackoffExponential, BackoffDelay: "1s",
			BackoffMax: "1m", Timeout: "30s",
		},
		MaxInFlight: DefaultMaxInFlight,
	}
	if !reflect.DeepEqual(tr.Spec, want) {
		t.Fatalf("defaults:\n%s\nwant\n%s", mustMarshal(tr.Spec), mustMarshal(want))
	}
	if tr.Namespace != DefaultNamespace || tr.Kind != KindTrigger || tr.APIVersion != APIVersion {
		t.Fatalf("meta defaults: %+v %+v", tr.TypeMeta, tr.ObjectMeta)
	}
	again := tr.DeepCopy()
	again.SetDefaults()
	if !reflect.DeepEqual(again, tr) {
		t.Fatal("SetDefaults is not idempotent")
	}
	// An explicit stream is not created unless asked.
	ex := &Trigger{Spec: TriggerSpec{Source: EventSource{Stream: "EVENTS", Subject: "orders.>"}}}
	ex.SetDefaults()
	if ex.Spec.Source.CreateStream {
		t.Fatal("an explicit stream got createStream")
	}
}

func TestTriggerValidate(t *testing.T) {
	ok := validTrigger()
	ok.Name = "orders"
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid trigger: %v", err)
	}
	tests := []struct {
		name  string
		edit  func(*Trigger)
		paths []string
	}{
		{"no name", func(t *Trigger) { t.Name = "" }, []string{"metadata.name"}},
		{"bad name", func(t *Trigger) { t.Name = "Orders" }, []string{"metadata.name"}},
		{"no subject", func(t *Trigger) { t.Spec.Source.Subject = "" }, []string{"spec.source.subject"}},
		{"space in subject", func(t *Trigger) { t.Spec.Source.Subject = "orders. x" }, []string{"spec.source.subject"}},
		{"> not last", func(t *Trigger) { t.Spec.Source.Subject = "orders.>.x" }, []string{"spec.source.subject"}},
		{"empty token", func(t *Trigger) { t.Spec.Source.Subject = "orders..x" }, []string{"spec.source.subject"}},
		{"wildcard first, no stream", func(t *Trigger) { t.Spec.Source.Subject = "*.created" }, []string{"spec.source.stream"}},
		{"bad stream", func(t *Trigger) { t.Spec.Source.Stream = "a.b" }, []string{"spec.source.stream"}},
		{"empty filter", func(t *Trigger) { t.Spec.Filters = []EventFilter{{}} }, []string{"spec.filters[0].exact", "spec.filters[0].prefix", "spec.filters[0].suffix"}},
		{"two dialects", func(t *Trigger) {
			t.Spec.Filters[1].Suffix = map[string]string{"type": "x"}
		}, []string{"spec.filters[1].prefix", "spec.filters[1].suffix"}},
		{"bad attribute", func(t *Trigger) { t.Spec.Filters[0].Exact = map[string]string{"Type": "x"} }, []string{"spec.filters[0].exact"}},
		{"no sink", func(t *Trigger) { t.Spec.Sink = Destination{} }, []string{"spec.sink.ref", "spec.sink.uri"}},
		{"two sinks", func(t *Trigger) { t.Spec.Sink.URI = "http://x" }, []string{"spec.sink.ref", "spec.sink.uri"}},
		{"bad function", func(t *Trigger) { t.Spec.Sink.Ref.Name = "A" }, []string{"spec.sink.ref.name"}},
		{"bad tag", func(t *Trigger) { t.Spec.Sink.Ref.Tag = "x.y" }, []string{"spec.sink.ref.tag"}},
		{"relative uri", func(t *Trigger) { t.Spec.Sink = Destination{URI: "/x"} }, []string{"spec.sink.uri"}},
		{"negative retry", func(t *Trigger) { t.Spec.Delivery.Retry = new(int32(-1)) }, []string{"spec.delivery.retry"}},
		{"bad policy", func(t *Trigger) { t.Spec.Delivery.BackoffPolicy = "random" }, []string{"spec.delivery.backoffPolicy"}},
		{"bad delay", func(t *Trigger) { t.Spec.Delivery.BackoffDelay = "soon" }, []string{"spec.delivery.backoffDelay"}},
		{"max below delay", func(t *Trigger) { t.Spec.Delivery.BackoffMax = "100ms" }, []string{"spec.delivery.backoffMax"}},
		{"zero timeout", func(t *Trigger) { t.Spec.Delivery.Timeout = "0s" }, []string{"spec.delivery.timeout"}},
		{"long timeout", func(t *Trigger) { t.Spec.Delivery.Timeout = "1h" }, []string{"spec.delivery.timeout"}},
		{"wildcard dead letter", func(t *Trigger) { t.Spec.Delivery.DeadLetterSubject = "dlq.*" }, []string{"spec.delivery.deadLetterSubject"}},
		{"wildcard reply", func(t *Trigger) { t.Spec.ReplySubject = "replies.>" }, []string{"spec.replySubject"}},
		{"in-flight", func(t *Trigger) { t.Spec.MaxInFlight = -1 }, []string{"spec.maxInFlight"}},
		{"kind", func(t *Trigger) { t.Kind = "Function" }, []string{"kind"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := validTrigger()
			tr.Name = "orders"
			tt.edit(tr)
			fe := tr.Validate()
			if fe == nil {
				t.Fatal("no error")
			}
			var got []string
			for _, e := range fe.WrappedErrors() {
				got = append(got, e.Paths...)
			}
			if len(got) == 0 {
				got = fe.Paths
			}
			for _, p := range tt.paths {
				found := false
				for _, g := range got {
					found = found || g == p
				}
				if !found {
					t.Errorf("error %q names %v, not %s", fe.Error(), got, p)
				}
			}
		})
	}
}

func TestTriggerValidateUpdate(t *testing.T) {
	old := validTrigger()
	old.Name, old.Namespace = "orders", "shop"
	next := old.DeepCopy()
	next.Namespace = "other"
	if fe := next.ValidateUpdate(old); fe == nil || !strings.Contains(fe.Error(), "metadata.namespace") {
		t.Fatalf("namespace change: %v", fe)
	}
	next = old.DeepCopy()
	next.Spec.Delivery.Retry = new(int32(1))
	if fe := next.ValidateUpdate(old); fe != nil {
		t.Fatalf("spec change: %v", fe)
	}
}

func TestParseEventDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT1S": time.Second, "PT0.25S": 250 * time.Millisecond, "PT2M": 2 * time.Minute,
		"P1DT2H": 26 * time.Hour, "PT1H30M": 90 * time.Minute, "1.5s": 1500 * time.Millisecond, "2m": 2 * time.Minute,
	} {
		got, err := ParseEventDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseEventDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "P", "PT", "P1S", "PT1", "1", "PTS", "soon"} {
		if d, err := ParseEventDuration(in); err == nil {
			t.Errorf("ParseEventDuration(%q) = %v, want an error", in, d)
		}
	}
}

func TestDefaultStreamName(t *testing.T) {
	for in, want := range map[string]string{"orders.>": "ORDERS", "orders": "ORDERS", "my-app.x": "MY-APP", "*.x": "", ">": "", "": ""} {
		if got := DefaultStreamName(in); got != want {
			t.Errorf("DefaultStreamName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTriggerDeepCopy(t *testing.T) {
	orig := new(Trigger)
	fill(reflect.ValueOf(orig).Elem(), 0)
	got := orig.DeepCopy()
	if !reflect.DeepEqual(got, orig) {
		t.Fatalf("DeepCopy() =\n%s\nwant\n%s", mustMarshal(got), mustMarshal(orig))
	}
	assertNoSharing(t, reflect.ValueOf(orig), reflect.ValueOf(got), "Trigger")
	if (*Trigger)(nil).DeepCopy() != nil {
		t.Error("DeepCopy of nil is not nil")
	}
}

func TestDecodeTrigger(t *testing.T) {
	objs, err := Decode([]byte(`apiVersion: wisp.dev/v1alpha1
kind: Trigger
metadata:
  name: orders
spec:
  source:
    subject: orders.>
  filters:
  - exact:
      type: order.created
  sink:
    ref:
      name: fulfil
  delivery:
    retry: 5
    deadLetterSubject: orders.dlq
`))
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := objs[0].(*Trigger)
	if !ok || tr.Name != "orders" || tr.Spec.Sink.Ref.Name != "fulfil" || *tr.Spec.Delivery.Retry != 5 || tr.Spec.Filters[0].Exact["type"] != "order.created" {
		t.Fatalf("decoded %#v", objs[0])
	}
	_, err = Decode([]byte("apiVersion: wisp.dev/v1alpha1\nkind: Trigger\nmetadata: {name: x}\nspec: {sink: {function: x}}\n"))
	if err == nil || !strings.Contains(err.Error(), "spec.sink.function") {
		t.Fatalf("unknown field: %v", err)
	}
}
