package triggers

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/controller/store/storetest"
)

// env is a real embedded NATS server with a store and a running Manager.
type env struct {
	t        *testing.T
	srv      *store.Server
	js       jetstream.JetStream
	st       store.Store
	m        *Manager
	reg      *prometheus.Registry
	triggers *store.Typed[api.Trigger, *api.Trigger]
	stop     func()
	// orphanMinAge is Options.OrphanMinAge of the next start.
	orphanMinAge time.Duration
}

// newEnv starts a Manager calling functions at gatewayURL.
func newEnv(t *testing.T, gatewayURL string) *env {
	t.Helper()
	srv := storetest.NewServer(t)
	e := &env{t: t, srv: srv, st: storetest.NewKVOn(t, srv)}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if e.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	e.triggers = store.NewTyped[api.Trigger](e.st, store.Triggers)
	e.start(gatewayURL)
	return e
}

// start runs a new Manager; stop stops it.
func (e *env) start(gatewayURL string) {
	e.t.Helper()
	e.reg = prometheus.NewRegistry()
	m, err := New(Options{
		JetStream: e.js, Store: e.st, GatewayURL: gatewayURL, Domain: "wisp.test", Registry: e.reg,
		StatusInterval: 50 * time.Millisecond, ShutdownGrace: time.Second, OrphanMinAge: e.orphanMinAge,
		AsyncDelivery: api.DeliverySpec{BackoffDelay: "10ms", BackoffPolicy: api.BackoffLinear},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("Run: %v", err)
			}
		})
	}
	e.t.Cleanup(e.stop)
}

// create stores a trigger (defaulted) and waits until its consumer runs.
func (e *env) create(t *api.Trigger) *api.Trigger {
	e.t.Helper()
	if t.Namespace == "" {
		t.Namespace = api.DefaultNamespace
	}
	t.Generation = 1
	t.SetDefaults()
	if fe := t.Validate(); fe != nil {
		e.t.Fatal(fe)
	}
	if _, err := e.triggers.Create(e.t.Context(), t); err != nil {
		e.t.Fatal(err)
	}
	return e.waitStatus(t.Name, func(st *api.TriggerStatus) bool { return st.IsReady() })
}

// waitStatus polls a trigger's status until ok.
func (e *env) waitStatus(name string, ok func(*api.TriggerStatus) bool) *api.Trigger {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		t, err := e.triggers.Get(e.t.Context(), api.DefaultNamespace, name)
		if err == nil && ok(&t.Status) {
			return t
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("trigger %s: status not reached in time; last %+v (err %v)", name, t, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// publish sends ev to subject through JetStream.
func (e *env) publish(subject string, ev event.Event) {
	e.t.Helper()
	msg, err := natsMessage(e.t.Context(), subject, &ev)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.js.PublishMsg(e.t.Context(), msg); err != nil {
		e.t.Fatal(err)
	}
}

// drained waits until the trigger's consumer has been handed the last
// message of its subjects in stream ORDERS and has nothing pending.
func (e *env) drained(name string) {
	e.t.Helper()
	cons, err := e.js.Consumer(e.t.Context(), "ORDERS", ConsumerName(api.DefaultNamespace, name))
	if err != nil {
		e.t.Fatal(err)
	}
	stream, err := e.js.Stream(e.t.Context(), "ORDERS")
	if err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		// The consumer learns of new messages asynchronously: its pending
		// count can read 0 just after a publish. Wait until it has also
		// been handed the stream's last message.
		info, err := cons.Info(e.t.Context())
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			last, lerr := stream.GetLastMsgForSubject(e.t.Context(), info.Config.FilterSubject)
			if lerr == nil && info.Delivered.Stream >= last.Sequence {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("consumer not drained: %+v %v", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deadLetters reads every message on subject in stream ORDERS.
func (e *env) deadLetters(subject string) []*event.Event {
	e.t.Helper()
	ctx := e.t.Context()
	cons, err := e.js.OrderedConsumer(ctx, "ORDERS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*event.Event
	for range info.NumPending {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		meta, _ := msg.Metadata()
		ev, _ := eventFromMessage(ctx, msg, meta)
		out = append(out, ev)
	}
	return out
}

func newEvent(id, typ, source string) event.Event {
	ev := event.New()
	ev.SetID(id)
	ev.SetType(typ)
	ev.SetSource(source)
	_ = ev.SetData("application/json", []byte(`{"id":"`+id+`"}`))
	return ev
}

// sinkTrigger is a trigger on orders.> to a URL.
func sinkTrigger(name, url string) *api.Trigger {
	t := &api.Trigger{Spec: api.TriggerSpec{
		Source: api.EventSource{Subject: "orders.>"},
		Sink:   api.Destination{URI: url},
	}}
	t.Name = name
	return t
}

func drain(r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }
