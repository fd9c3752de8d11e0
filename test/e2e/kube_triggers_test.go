package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/controller/store/kube"
	"github.com/wisp-faas/wisp/internal/kubetest"
	"github.com/wisp-faas/wisp/triggers"
)

// TestKubernetesTriggerOncePerTrigger runs two nodes against a real
// apiserver and one external NATS JetStream (--nats-url): a Trigger that
// users create with kubectl has one durable consumer, shared by both
// nodes, so every event reaches its sink exactly once however many nodes
// run it, and a second Trigger on the same subject gets its own copy of
// every event. Events enter half through each node's /events/ ingress;
// both nodes deliver some of them (their wisp_trigger_events_delivered_total
// series say so), their counts add up to the number of events, and so
// does the Trigger's status.delivered that kubectl shows.
func TestKubernetesTriggerOncePerTrigger(t *testing.T) {
	b := buildAll(t)
	sinkBin := buildEventsink(t)
	c := kubetest.Start(t)
	kubectl := filepath.Join(kubetest.BinDir(t), "kubectl")
	if out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig(t), "apply", "-k", "../../config/").CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply -k config/: %v\n%s", err, out)
	}
	apply := func(doc string) {
		t.Helper()
		f := filepath.Join(t.TempDir(), "objects.yaml")
		if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig(t), "apply", "-f", f).CombinedOutput(); err != nil {
			t.Fatalf("kubectl apply -f: %v\n%s\n%s", err, out, doc)
		}
	}
	kc := c.KubeconfigAs(t, "system:serviceaccount:wisp-system:wisp-node")
	natsURL := startExternalNATS(t)
	nodes := []*node{
		kubeNode(t, b, kc, "node-a", "--nats-url", natsURL),
		kubeNode(t, b, kc, "node-b", "--nats-url", natsURL),
	}

	// Two process functions, each reporting to its own collector, and a
	// trigger for each on the same subject. Both nodes run on this host,
	// so the eventsink binary is where each expects it.
	cols := map[string]*collector{"orders": newCollector(t), "audit": newCollector(t)}
	sinks := map[string]string{"orders": "sink-orders", "audit": "sink-audit"}
	var doc strings.Builder
	for _, trig := range []string{"orders", "audit"} {
		fmt.Fprintf(&doc, `---
apiVersion: wisp.dev/v1alpha1
kind: Function
metadata: {name: %s, namespace: default}
spec:
  template:
    spec:
      process: {command: %q}
      env: [{name: COLLECT_URL, value: %q}]
---
apiVersion: wisp.dev/v1alpha1
kind: Trigger
metadata: {name: %s, namespace: default}
spec:
  source: {subject: "orders.>"}
  sink: {ref: {name: %s}}
`, sinks[trig], sinkBin, cols[trig].URL, trig, sinks[trig])
	}
	apply(doc.String())

	// Each node runs both triggers (its delivered series exists once it
	// does), and the leader reports them ready.
	st, err := kube.New(t.Context(), c.Admin(), kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	trs := store.NewTyped[api.Trigger](st, store.Triggers)
	eventually(t, 60*time.Second, func() string {
		for i, n := range nodes {
			m := n.metrics()
			for trig := range cols {
				if _, ok := triggerCounter(m, "wisp_trigger_events_delivered_total", trig); !ok {
					return fmt.Sprintf("node %d does not run trigger %s yet", i, trig)
				}
			}
		}
		for trig := range cols {
			tr, err := trs.Get(t.Context(), "default", trig)
			if err != nil {
				return err.Error()
			}
			if !tr.Status.IsReady() {
				return fmt.Sprintf("trigger %s is not ready: %+v", trig, tr.Status.GetCondition(api.ConditionReady))
			}
		}
		return ""
	})

	// Events alternate between the nodes' ingress, each with its own id.
	const total = 200
	begin := time.Now()
	ids := make([]string, total)
	for i := range total {
		ids[i] = fmt.Sprintf("k%03d", i)
		n := nodes[i%len(nodes)]
		eventually(t, 10*time.Second, func() string {
			code, err := sendEvent(n.Gateway, "orders.eu", ids[i], "order.created")
			if err != nil || code != http.StatusAccepted {
				return fmt.Sprintf("send %s to %s: %d %v", ids[i], n.Gateway, code, err)
			}
			return ""
		})
	}
	sent := time.Since(begin)
	eventually(t, 60*time.Second, func() string {
		for trig, col := range cols {
			for _, id := range ids {
				if col.count(id) == 0 {
					return fmt.Sprintf("trigger %s: event %s never delivered (%.0fs after the first was sent)", trig, id, time.Since(begin).Seconds())
				}
			}
		}
		return ""
	})
	all := time.Since(begin)
	// A copy per node would come at once; a redelivery within the
	// AckWait. Give both a moment to show.
	time.Sleep(3 * time.Second)

	for _, trig := range []string{"orders", "audit"} {
		col := cols[trig]
		col.mu.Lock()
		dups, lost := 0, 0
		var twice, unknown []string
		for _, id := range ids {
			switch k := col.seen[id]; {
			case k == 0:
				lost++
			case k > 1:
				dups += k - 1
				if len(twice) < 10 { // the first few name the pattern
					twice = append(twice, fmt.Sprintf("%s×%d", id, k))
				}
			}
		}
		for id := range col.seen {
			if id != "" && !slices.Contains(ids, id) { // "" is the readiness probe
				unknown = append(unknown, id)
			}
		}
		col.mu.Unlock()
		var perNode []string
		var sum float64
		for i, n := range nodes {
			v, _ := triggerCounter(n.metrics(), "wisp_trigger_events_delivered_total", trig)
			r, _ := triggerCounter(n.metrics(), "wisp_trigger_events_retried_total", trig)
			perNode = append(perNode, fmt.Sprintf("node-%c delivered %.0f (retried %.0f)", 'a'+i, v, r))
			sum += v
			if v == 0 {
				t.Errorf("trigger %s: node %c delivered no event; want both nodes to share the consumer", trig, 'a'+i)
			}
		}
		t.Logf("trigger %s: %d events sent in %s, all delivered %s after the first was sent; %d duplicates %v, %d lost; %s",
			trig, total, sent.Round(time.Millisecond), all.Round(time.Millisecond), dups, twice, lost, strings.Join(perNode, ", "))
		if dups != 0 || lost != 0 || len(unknown) != 0 {
			t.Errorf("trigger %s: %d duplicates %v, %d lost, unknown ids %v; want each of %d events exactly once", trig, dups, twice, lost, unknown, total)
		}
		if sum != total {
			t.Errorf("trigger %s: the nodes delivered %.0f events between them; want %d", trig, sum, total)
		}
		// What kubectl shows: every node adds its share to the count.
		var last api.TriggerStatus
		eventually(t, 15*time.Second, func() string {
			tr, err := trs.Get(t.Context(), "default", trig)
			if err != nil {
				return err.Error()
			}
			last = tr.Status
			if last.Delivered != total || last.Pending != 0 || last.AckPending != 0 {
				return fmt.Sprintf("trigger %s status: delivered %d, pending %d, ack pending %d; want %d delivered, none pending", trig, last.Delivered, last.Pending, last.AckPending, total)
			}
			return ""
		})
		t.Logf("trigger %s status: delivered %d, dead-lettered %d, pending %d, ack pending %d", trig, last.Delivered, last.DeadLettered, last.Pending, last.AckPending)
	}

	// One durable consumer per trigger on the stream, not one per node,
	// with every event acknowledged at its first delivery.
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), api.DefaultStreamName("orders.>"))
	if err != nil {
		t.Fatal(err)
	}
	var consumers []string
	names := stream.ConsumerNames(t.Context())
	for name := range names.Name() {
		consumers = append(consumers, name)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(consumers)
	if want := []string{triggers.ConsumerName("default", "audit"), triggers.ConsumerName("default", "orders")}; !slices.Equal(consumers, want) {
		t.Fatalf("consumers on stream %s: %v; want %v (one per trigger)", api.DefaultStreamName("orders.>"), consumers, want)
	}
	for _, name := range consumers {
		cons, err := stream.Consumer(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("consumer %s: delivered %d, ack floor %d, pending %d, ack pending %d, redelivered %d",
			name, info.Delivered.Consumer, info.AckFloor.Consumer, info.NumPending, info.NumAckPending, info.NumRedelivered)
		if info.Delivered.Consumer != total || info.AckFloor.Consumer != total || info.NumPending != 0 || info.NumAckPending != 0 || info.NumRedelivered != 0 {
			t.Errorf("consumer %s: delivered %d, acknowledged up to %d, pending %d/%d, redelivered %d; want %d delivered once and acknowledged",
				name, info.Delivered.Consumer, info.AckFloor.Consumer, info.NumPending, info.NumAckPending, info.NumRedelivered, total)
		}
	}
}

// triggerCounter returns the value of a trigger's series of metric name
// in a Prometheus exposition, and whether the series is there.
func triggerCounter(exposition, name, trigger string) (float64, bool) {
	prefix := name + `{namespace="default",trigger="` + trigger + `"} `
	for line := range strings.SplitSeq(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}
