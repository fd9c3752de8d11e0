package triggers

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wisp-faas/wisp/api"
)

// TestAtLeastOnceWithRandomFailures publishes 10,000 events to a sink
// that fails 30% of calls at random: every event is delivered or
// dead-lettered, and only events whose every attempt failed are
// dead-lettered.
func TestAtLeastOnceWithRandomFailures(t *testing.T) {
	const n, retries = 10000, 5
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(1, 2))
	attempts := map[string]int{}
	succeeded := map[string]int{}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		id := r.Header.Get("Ce-Id")
		mu.Lock()
		attempts[id]++
		fail := rnd.Float64() < 0.3
		if !fail {
			succeeded[id]++
		}
		mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer sink.Close()
	e := newEnv(t, "http://127.0.0.1:1")
	tr := sinkTrigger("random", sink.URL)
	tr.Spec.Delivery = api.DeliverySpec{Retry: new(int32(retries)), BackoffPolicy: api.BackoffLinear,
		BackoffDelay: "1ms", BackoffMax: "5ms", DeadLetterSubject: "orders.dlq"}
	e.create(tr)

	begin := time.Now()
	var acks []jetstream.PubAckFuture
	for i := range n {
		ev := newEvent(strconv.Itoa(i), "order.created", "/shop")
		msg, err := natsMessage(t.Context(), "orders.eu", &ev)
		if err != nil {
			t.Fatal(err)
		}
		f, err := e.js.PublishMsgAsync(msg)
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, f)
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatal(err)
		}
	}
	e.drained("random")
	elapsed := time.Since(begin)

	dead := map[string]bool{}
	for _, ev := range e.deadLetters("orders.dlq") {
		dead[ev.ID()] = true
		if code, _ := ev.Extensions()[ExtErrorCode].(string); code != "500" {
			t.Errorf("dead letter %s: %s = %v, want 500", ev.ID(), ExtErrorCode, ev.Extensions()[ExtErrorCode])
		}
		if a := ev.Extensions()[ExtAttempts]; a != strconv.Itoa(retries+1) {
			t.Errorf("dead letter %s: %s = %v, want %d", ev.ID(), ExtAttempts, a, retries+1)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	duplicates := 0
	for i := range n {
		id := strconv.Itoa(i)
		switch {
		case succeeded[id] > 0 && dead[id]:
			t.Errorf("event %s succeeded and was dead-lettered", id)
		case succeeded[id] == 0 && !dead[id]:
			t.Errorf("event %s lost: %d attempts, none succeeded, not dead-lettered", id, attempts[id])
		case dead[id] && attempts[id] != retries+1:
			t.Errorf("event %s dead-lettered after %d attempts, want %d", id, attempts[id], retries+1)
		}
		duplicates += max(succeeded[id]-1, 0)
	}
	calls := 0
	for _, a := range attempts {
		calls += a
	}
	t.Logf("%d events in %s (%.0f/s): %d calls, %d dead-lettered, %d duplicates",
		n, elapsed.Round(time.Millisecond), n/elapsed.Seconds(), calls, len(dead), duplicates)
	st := e.waitStatus("random", func(st *api.TriggerStatus) bool { return st.Delivered+st.DeadLettered >= n })
	if st.Status.DeadLettered != uint64(len(dead)) || st.Status.Pending != 0 {
		t.Errorf("status: %d dead-lettered, %d pending; want %d, 0", st.Status.DeadLettered, st.Status.Pending, len(dead))
	}
}

// TestBackoffFollowsThePolicy checks the wait between attempts for both
// policies.
func TestBackoffFollowsThePolicy(t *testing.T) {
	for _, tc := range []struct {
		policy string
		delay  time.Duration
		want   []time.Duration
	}{
		{api.BackoffLinear, 100 * time.Millisecond, []time.Duration{100, 200, 300}},
		{api.BackoffExponential, 100 * time.Millisecond, []time.Duration{100, 200, 400}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			var mu sync.Mutex
			var at []time.Time
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				drain(r)
				mu.Lock()
				at = append(at, time.Now())
				mu.Unlock()
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			defer sink.Close()
			e := newEnv(t, "http://127.0.0.1:1")
			tr := sinkTrigger("backoff", sink.URL)
			tr.Spec.Delivery = api.DeliverySpec{Retry: new(int32(3)), BackoffPolicy: tc.policy,
				BackoffDelay: tc.delay.String(), BackoffMax: "10s", DeadLetterSubject: "orders.dlq"}
			e.create(tr)
			e.publish("orders.x", newEvent("1", "t", "/s"))
			e.drained("backoff")
			mu.Lock()
			defer mu.Unlock()
			if len(at) != 4 {
				t.Fatalf("%d attempts, want 4", len(at))
			}
			for i, w := range tc.want {
				want := w * time.Millisecond
				if gap := at[i+1].Sub(at[i]); gap < want || gap > want+250*time.Millisecond {
					t.Errorf("wait before retry %d = %s, want %s (+ up to 250ms)", i+1, gap, want)
				}
			}
		})
	}
}

// TestFiltersSelectEvents delivers only the events that pass every filter.
func TestFiltersSelectEvents(t *testing.T) {
	var mu sync.Mutex
	var got []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		mu.Lock()
		got = append(got, r.Header.Get("Ce-Id"))
		mu.Unlock()
	}))
	defer sink.Close()
	e := newEnv(t, "http://127.0.0.1:1")
	tr := sinkTrigger("filtered", sink.URL)
	tr.Spec.Filters = []api.EventFilter{
		{Exact: map[string]string{"type": "order.created"}},
		{Prefix: map[string]string{"source": "/shop/"}},
		{Suffix: map[string]string{"region": "-eu"}},
	}
	e.create(tr)
	for _, c := range []struct {
		id, typ, source, region string
	}{
		{"match", "order.created", "/shop/1", "west-eu"},
		{"wrong-type", "order.paid", "/shop/1", "west-eu"},
		{"wrong-source", "order.created", "/crm/1", "west-eu"},
		{"wrong-region", "order.created", "/shop/1", "east-us"},
		{"no-region", "order.created", "/shop/1", ""},
		{"match-too", "order.created", "/shop/2", "north-eu"},
	} {
		ev := newEvent(c.id, c.typ, c.source)
		if c.region != "" {
			ev.SetExtension("region", c.region)
		}
		e.publish("orders.x", ev)
	}
	e.drained("filtered")
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(got)
	if want := []string{"match", "match-too"}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

// TestNonCloudEventsAreWrapped delivers a plain NATS message as a
// wisp.nats.message event with its subject and headers.
func TestNonCloudEventsAreWrapped(t *testing.T) {
	got := make(chan *http.Request, 1)
	bodies := make(chan string, 1)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 100)
		n, _ := r.Body.Read(b)
		bodies <- string(b[:n])
		got <- r
	}))
	defer sink.Close()
	e := newEnv(t, "http://127.0.0.1:1")
	e.create(sinkTrigger("plain", sink.URL))
	msg := nats.NewMsg("orders.raw")
	msg.Header.Set("X-Tenant", "acme")
	msg.Data = []byte(`{"plain":true}`)
	ack, err := e.js.PublishMsg(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	for h, want := range map[string]string{
		"Ce-Type": TypeNATSMessage, "Ce-Subject": "orders.raw", "Ce-Id": fmt.Sprintf("ORDERS-%d", ack.Sequence),
		"Ce-Source": "/wisp/streams/ORDERS", "X-Tenant": "acme", "Content-Type": "application/json",
	} {
		if v := r.Header.Get(h); v != want {
			t.Errorf("%s = %q, want %q", h, v, want)
		}
	}
	if b := <-bodies; b != `{"plain":true}` {
		t.Errorf("body %q", b)
	}
}

// TestPermanentFailureDeadLettersAtOnce sends a 4xx answer to the dead
// letters without retrying, with the error as extensions and in status.
func TestPermanentFailureDeadLettersAtOnce(t *testing.T) {
	calls := 0
	var mu sync.Mutex
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		mu.Lock()
		calls++
		mu.Unlock()
		http.Error(w, "order 7 has no customer", http.StatusUnprocessableEntity)
	}))
	defer sink.Close()
	e := newEnv(t, "http://127.0.0.1:1")
	tr := sinkTrigger("permanent", sink.URL)
	tr.Spec.Delivery.DeadLetterSubject = "orders.dlq"
	e.create(tr)
	e.publish("orders.x", newEvent("7", "order.created", "/shop"))
	st := e.waitStatus("permanent", func(st *api.TriggerStatus) bool { return st.DeadLettered == 1 })
	if want := "attempt 1 of 4: status 422: order 7 has no customer"; st.Status.LastError != want {
		t.Errorf("lastError %q, want %q", st.Status.LastError, want)
	}
	dl := e.deadLetters("orders.dlq")
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	x := dl[0].Extensions()
	if dl[0].ID() != "7" || x[ExtErrorCode] != "422" || x[ExtErrorData] != "order 7 has no customer" ||
		x[ExtAttempts] != "1" || x[ExtTrigger] != "default/permanent" || x[ExtErrorDest] != sink.URL {
		t.Errorf("dead letter %s with extensions %v", dl[0].ID(), x)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("%d calls, want 1", calls)
	}
}

// TestReplyIsPublished publishes the event a sink answers with to the
// reply subject.
func TestReplyIsPublished(t *testing.T) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		w.Header().Set("Ce-Specversion", "1.0")
		w.Header().Set("Ce-Id", "reply-"+r.Header.Get("Ce-Id"))
		w.Header().Set("Ce-Type", "order.fulfilled")
		w.Header().Set("Ce-Source", "/fulfil")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer sink.Close()
	e := newEnv(t, "http://127.0.0.1:1")
	tr := sinkTrigger("replying", sink.URL)
	tr.Spec.Source.Subject = "orders.in"
	tr.Spec.ReplySubject = "orders.out"
	e.create(tr)
	e.publish("orders.in", newEvent("9", "order.created", "/shop"))
	e.drained("replying")
	replies := e.deadLetters("orders.out")
	if len(replies) != 1 || replies[0].ID() != "reply-9" || replies[0].Type() != "order.fulfilled" || string(replies[0].Data()) != `{"ok":true}` {
		t.Fatalf("replies %v", replies)
	}
}

// TestRestartResumes stops the manager in the middle of a stream and
// starts a new one: every event is delivered, duplicates allowed.
func TestRestartResumes(t *testing.T) {
	const n = 2000
	var mu sync.Mutex
	seen := map[string]int{}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		time.Sleep(time.Millisecond)
		mu.Lock()
		seen[r.Header.Get("Ce-Id")]++
		mu.Unlock()
	}))
	defer sink.Close()
	e := newEnv(t, "http://127.0.0.1:1")
	tr := sinkTrigger("restart", sink.URL)
	tr.Spec.MaxInFlight = 20
	// Events the stopped consumer had pulled come again after the AckWait.
	tr.Spec.Delivery.Timeout = "1s"
	e.create(tr)
	for i := range n {
		ev := newEvent(strconv.Itoa(i), "t", "/s")
		msg, _ := natsMessage(t.Context(), "orders.x", &ev)
		if _, err := e.js.PublishMsgAsync(msg); err != nil {
			t.Fatal(err)
		}
	}
	for {
		mu.Lock()
		k := len(seen)
		mu.Unlock()
		if k > n/4 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.stop()
	mu.Lock()
	atStop := len(seen)
	mu.Unlock()
	if atStop == n {
		t.Fatal("the stream was done before the stop")
	}
	e.start("http://127.0.0.1:1")
	e.drained("restart")
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for i := range n {
		c := seen[strconv.Itoa(i)]
		if c == 0 {
			t.Fatalf("event %d lost", i)
		}
		dups += c - 1
	}
	t.Logf("stopped after %d of %d events; %d duplicates", atStop, n, dups)
}

// TestTriggerChangesFollowTheStore restarts a consumer when its trigger
// changes and deletes it with the trigger.
func TestTriggerChangesFollowTheStore(t *testing.T) {
	got := make(chan string, 10)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		got <- r.Header.Get("Ce-Type")
	}))
	defer sink.Close()
	e := newEnv(t, "http://127.0.0.1:1")
	tr := e.create(sinkTrigger("changing", sink.URL))
	tr.Spec.Filters = []api.EventFilter{{Exact: map[string]string{"type": "b"}}}
	tr.Generation = 2
	if _, err := e.triggers.Update(t.Context(), tr); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("changing", func(st *api.TriggerStatus) bool { return st.ObservedGeneration == 2 && st.IsReady() })
	e.publish("orders.x", newEvent("1", "a", "/s"))
	e.publish("orders.x", newEvent("2", "b", "/s"))
	if typ := <-got; typ != "b" {
		t.Fatalf("delivered type %q after the filter changed to b", typ)
	}
	if err := e.triggers.Delete(t.Context(), api.DefaultNamespace, "changing", ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := e.js.Consumer(t.Context(), "ORDERS", ConsumerName(api.DefaultNamespace, "changing"))
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the consumer outlived its trigger")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMissingStreamIsNotReady reports a stream that does not exist in
// the trigger's status.
func TestMissingStreamIsNotReady(t *testing.T) {
	e := newEnv(t, "http://127.0.0.1:1")
	tr := sinkTrigger("nostream", "http://127.0.0.1:1")
	tr.Spec.Source = api.EventSource{Stream: "ABSENT", Subject: "absent.>"}
	tr.Namespace = api.DefaultNamespace
	tr.SetDefaults()
	if _, err := e.triggers.Create(t.Context(), tr); err != nil {
		t.Fatal(err)
	}
	st := e.waitStatus("nostream", func(st *api.TriggerStatus) bool {
		c := st.GetCondition(api.ConditionReady)
		return c != nil && c.IsFalse()
	})
	if msg := st.Status.GetCondition(api.ConditionReady).Message; msg != "stream ABSENT does not exist: create it, or set spec.source.createStream" {
		t.Fatalf("Ready message %q", msg)
	}
}

func TestPolicyBackoff(t *testing.T) {
	exp := policy{exponential: true, delay: time.Second, max: 10 * time.Second}
	lin := policy{delay: time.Second, max: 2500 * time.Millisecond}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		if got := exp.backoff(n); got != want {
			t.Errorf("exponential backoff(%d) = %s, want %s", n, got, want)
		}
	}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 2500 * time.Millisecond} {
		if got := lin.backoff(n); got != want {
			t.Errorf("linear backoff(%d) = %s, want %s", n, got, want)
		}
	}
	if got := (policy{timeout: 5 * time.Second}).ackWait(); got != 6*time.Second {
		t.Errorf("ackWait = %s", got)
	}
	if got := (policy{timeout: 5 * time.Minute}).ackWait(); got != maxAckWait {
		t.Errorf("ackWait = %s", got)
	}
}

func TestFilterMatch(t *testing.T) {
	ev := event.New()
	ev.SetID("1")
	ev.SetType("order.created")
	ev.SetSource("/shop")
	ev.SetExtension("count", 3)
	for _, tc := range []struct {
		f    []api.EventFilter
		want bool
	}{
		{nil, true},
		{[]api.EventFilter{{Exact: map[string]string{"type": "order.created", "source": "/shop"}}}, true},
		{[]api.EventFilter{{Exact: map[string]string{"type": "order"}}}, false},
		{[]api.EventFilter{{Prefix: map[string]string{"type": "order."}}, {Suffix: map[string]string{"type": ".created"}}}, true},
		{[]api.EventFilter{{Exact: map[string]string{"count": "3"}}}, true},
		{[]api.EventFilter{{Exact: map[string]string{"subject": ""}}}, false},
		{[]api.EventFilter{{Prefix: map[string]string{"missing": ""}}}, false},
	} {
		if got := newFilter(tc.f).match(&ev); got != tc.want {
			t.Errorf("filters %+v: match = %v, want %v", tc.f, got, tc.want)
		}
	}
}

// TestLeftOverConsumersAreDeleted: the consumer of a trigger deleted
// while no node ran is removed at start; a live trigger's is kept.
func TestLeftOverConsumersAreDeleted(t *testing.T) {
	e := newEnv(t, "http://127.0.0.1:1")
	ctx := t.Context()
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "LEFTOVER", Subjects: []string{"leftover.>"}}); err != nil {
		t.Fatal(err)
	}
	live := sinkTrigger("live", "http://127.0.0.1:1")
	live.Spec.Source = api.EventSource{Stream: "LEFTOVER", Subject: "leftover.>"}
	e.create(live)
	e.stop()
	gone := ConsumerName("default", "gone")
	if _, err := e.js.CreateOrUpdateConsumer(ctx, "LEFTOVER", jetstream.ConsumerConfig{Durable: gone, FilterSubject: "leftover.>"}); err != nil {
		t.Fatal(err)
	}
	e.orphanMinAge = time.Nanosecond
	e.start("http://127.0.0.1:1")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, errGone := e.js.Consumer(ctx, "LEFTOVER", gone)
		_, errLive := e.js.Consumer(ctx, "LEFTOVER", ConsumerName("default", "live"))
		if errLive != nil {
			t.Fatalf("the live trigger's consumer was deleted: %v", errLive)
		}
		if errors.Is(errGone, jetstream.ErrConsumerNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the left-over consumer is still there: %v", errGone)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRecentConsumerIsNotAnOrphan: a consumer with no trigger in this
// node's list, made moments ago (by another node, for a trigger created
// since), is kept: deleting it would redeliver from the stream's start.
func TestRecentConsumerIsNotAnOrphan(t *testing.T) {
	e := newEnv(t, "http://127.0.0.1:1")
	ctx := t.Context()
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "RECENT", Subjects: []string{"recent.>"}}); err != nil {
		t.Fatal(err)
	}
	live := sinkTrigger("live", "http://127.0.0.1:1")
	live.Spec.Source = api.EventSource{Stream: "RECENT", Subject: "recent.>"}
	e.create(live)
	e.stop()
	old, fresh := ConsumerName("default", "old"), ConsumerName("default", "fresh")
	for i, name := range []string{old, fresh} {
		if i == 1 {
			time.Sleep(time.Second)
		}
		if _, err := e.js.CreateOrUpdateConsumer(ctx, "RECENT", jetstream.ConsumerConfig{Durable: name, FilterSubject: "recent.>"}); err != nil {
			t.Fatal(err)
		}
	}
	e.orphanMinAge = 500 * time.Millisecond
	e.start("http://127.0.0.1:1")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.js.Consumer(ctx, "RECENT", old); errors.Is(err, jetstream.ErrConsumerNotFound) {
			break // the sweep ran
		}
		if time.Now().After(deadline) {
			t.Fatal("the old left-over consumer is still there")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := e.js.Consumer(ctx, "RECENT", fresh); err != nil {
		t.Fatalf("a consumer made a moment before the node listed its triggers was deleted as an orphan: %v", err)
	}
}

// TestDeadLetterThatCannotBePublishedIsKept: while no stream takes the
// dead-letter subject, a failed event is not dropped; once one does, the
// event lands there.
func TestDeadLetterThatCannotBePublishedIsKept(t *testing.T) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		http.Error(w, "never", http.StatusBadRequest)
	}))
	defer sink.Close()
	e := newEnv(t, "http://127.0.0.1:1")
	tr := sinkTrigger("nowhere", sink.URL)
	tr.Spec.Delivery.DeadLetterSubject = "graveyard.orders"
	tr.Spec.Delivery.BackoffDelay = "50ms"
	tr.Spec.Delivery.BackoffMax = "100ms"
	e.create(tr)
	e.publish("orders.x", newEvent("lost?", "order.created", "/shop"))
	time.Sleep(500 * time.Millisecond) // several failed dead-letter publishes
	if _, err := e.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "GRAVEYARD", Subjects: []string{"graveyard.>"}}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("nowhere", func(st *api.TriggerStatus) bool { return st.DeadLettered == 1 })
	cons, err := e.js.OrderedConsumer(t.Context(), "GRAVEYARD", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("no dead letter arrived: %v", err)
	}
	meta, _ := msg.Metadata()
	if ev, _ := eventFromMessage(t.Context(), msg, meta); ev.ID() != "lost?" {
		t.Fatalf("dead letter %s", ev.ID())
	}
}
