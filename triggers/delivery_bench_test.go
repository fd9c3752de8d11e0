package triggers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/internal/adminclient"
	"github.com/wisp-faas/wisp/internal/node"
)

// benchNode is an in-process wisp node on its own NATS server (reached
// over TCP, as with --nats-url), with the Go reactor example uploaded.
type benchNode struct {
	js     jetstream.JetStream
	client *adminclient.Client
	module string
}

func startBenchNode(b *testing.B) *benchNode {
	b.Helper()
	srv, err := store.StartServer(store.ServerOptions{DataDir: b.TempDir(), ListenAddr: "127.0.0.1:0", SyncAlways: os.Getenv("BENCH_NATS_SYNC_INTERVAL") == ""})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	dataDir := b.TempDir()
	cfg := filepath.Join(b.TempDir(), "autoscaler.yaml")
	if err := os.WriteFile(cfg, []byte("allow-zero-initial-scale: true\nstable-window: 6s\nscale-to-zero-grace-period: 1s\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- node.Run(ctx, node.Config{
			DataDir: dataDir, GatewayAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Domain: "127.0.0.1.sslip.io",
			NATSURL: srv.ClientURL(), Version: "bench", Log: slog.New(slog.DiscardHandler), AutoscalerConfig: cfg,
		})
	}()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("node: %v", err)
		}
	})
	var client *adminclient.Client
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dataDir, "node.json")); err == nil {
			if client, err = adminclient.Resolve("", "", dataDir); err == nil {
				if _, err = client.Info(b.Context()); err == nil {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("the node did not start")
		}
	}
	wasm := filepath.Join(b.TempDir(), "hello.wasm")
	build := exec.Command("go", "build", "-buildmode=c-shared", "-o", wasm, ".")
	build.Dir = "../functions/examples/hello-go-reactor"
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the Go reactor: %v\n%s", err, out)
	}
	f, err := os.Open(wasm)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	module, err := client.UploadModule(b.Context(), f)
	if err != nil {
		b.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(100000))
	if err != nil {
		b.Fatal(err)
	}
	return &benchNode{js: js, client: client, module: module}
}

// deploy creates a Wasm function and a trigger on subject to it.
func (n *benchNode) deploy(b *testing.B, name, subject string, annotations map[string]string) {
	b.Helper()
	f := &api.Function{}
	f.APIVersion, f.Kind, f.Name, f.Namespace = api.APIVersion, api.KindFunction, name, api.DefaultNamespace
	f.Spec.Template.Metadata.Annotations = annotations
	f.Spec.Template.Spec.Wasm = &api.WasmSource{Module: n.module}
	if _, err := n.client.CreateFunction(b.Context(), f); err != nil {
		b.Fatal(err)
	}
	t := &api.Trigger{Spec: api.TriggerSpec{Source: api.EventSource{Subject: subject}, Sink: api.Destination{Ref: &api.FunctionRef{Name: name}}}}
	t.APIVersion, t.Kind, t.Name, t.Namespace = api.APIVersion, api.KindTrigger, name, api.DefaultNamespace
	if _, err := n.client.CreateTrigger(b.Context(), t); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		cur, _, err := n.client.GetTrigger(b.Context(), t.Namespace, t.Name)
		if err == nil && cur.Status.IsReady() {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("trigger %s not ready: %+v %v", name, cur.Status, err)
		}
	}
}

// publish sends n events on subject and returns the last sequence.
func publish(b *testing.B, js jetstream.JetStream, subject string, n int) uint64 {
	b.Helper()
	var last jetstream.PubAckFuture
	for i := range n {
		msg := nats.NewMsg(subject)
		msg.Header.Set("Ce-Specversion", "1.0")
		msg.Header.Set("Ce-Id", fmt.Sprint(i))
		msg.Header.Set("Ce-Type", "bench")
		msg.Header.Set("Ce-Source", "/bench")
		msg.Header.Set("Content-Type", "application/json")
		msg.Data = []byte(`{"n":1}`)
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			b.Fatal(err)
		}
		last = f
	}
	select {
	case ack := <-last.Ok():
		return ack.Sequence
	case err := <-last.Err():
		b.Fatal(err)
	}
	return 0
}

// waitAcked waits until the consumer has acknowledged every message up
// to seq, polling every millisecond.
func waitAcked(b *testing.B, cons jetstream.Consumer, seq uint64) {
	b.Helper()
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Millisecond) {
		info, err := cons.Info(context.Background())
		if err == nil && info.AckFloor.Stream >= seq {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("not all acknowledged: %+v %v", info, err)
		}
	}
}

// BenchmarkDelivery measures, in one run: the raw JetStream consume rate
// (pull, ack; the baseline), sustained at-least-once delivery to a warm Go
// Wasm function through the gateway, and the publish-to-acknowledged time
// of the first event to a function at zero instances.
//
//	go test -run '^$' -bench Delivery -benchtime 20000x ./triggers/
func BenchmarkDelivery(b *testing.B) {
	n := startBenchNode(b)
	runs := 0 // a sub-benchmark runs more than once: each run deploys anew
	b.Run("raw-jetstream-consume", func(b *testing.B) {
		ctx := context.Background()
		if _, err := n.js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}}); err != nil {
			b.Fatal(err)
		}
		cons, err := n.js.CreateOrUpdateConsumer(ctx, "RAW", jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 100})
		if err != nil {
			b.Fatal(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) { _ = m.Ack() }, jetstream.PullMaxMessages(100))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Stop()
		b.ResetTimer()
		waitAcked(b, cons, publish(b, n.js, "raw.x", b.N))
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("warm-wasm", func(b *testing.B) {
		runs++
		name := fmt.Sprintf("warm%d", runs)
		n.deploy(b, name, name+".>", map[string]string{api.AnnotationMinScale: "1"})
		cons, err := n.js.Consumer(context.Background(), fmt.Sprintf("WARM%d", runs), "wisp_default_"+name)
		if err != nil {
			b.Fatal(err)
		}
		waitAcked(b, cons, publish(b, n.js, name+".x", 1000)) // warm up
		b.ResetTimer()
		waitAcked(b, cons, publish(b, n.js, name+".x", b.N))
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("first-event-from-zero", func(b *testing.B) {
		// Functions that served once and went back to zero instances, as
		// after an idle period: their code is prepared, nothing runs.
		const fns = 10
		b.StopTimer()
		var names []string
		var conss []jetstream.Consumer
		for range fns {
			runs++
			name := fmt.Sprintf("zero%d", runs)
			n.deploy(b, name, name+".>", map[string]string{api.AnnotationInitialScale: "0"})
			cons, err := n.js.Consumer(context.Background(), fmt.Sprintf("ZERO%d", runs), "wisp_default_"+name)
			if err != nil {
				b.Fatal(err)
			}
			waitAcked(b, cons, publish(b, n.js, name+".x", 1))
			names, conss = append(names, name), append(conss, cons)
		}
		for _, name := range names {
			n.waitZero(b, api.RevisionName(name, 1))
		}
		b.StartTimer()
		var lat []time.Duration
		for i, name := range names {
			begin := time.Now()
			waitAcked(b, conss[i], publish(b, n.js, name+".x", 1))
			lat = append(lat, time.Since(begin))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50")
		b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "ms-p90")
		out, _ := json.Marshal(lat)
		b.Logf("first-event latencies (ns): %s", out)
	})
}

// waitZero waits until a revision has no instance and wants none.
func (n *benchNode) waitZero(b *testing.B, revision string) {
	b.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		rev, _, err := n.client.GetRevision(b.Context(), api.DefaultNamespace, revision)
		if err == nil && rev.Status.ActualReplicas == 0 && rev.Status.DesiredReplicas == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("revision %s never went back to zero: %+v %v", revision, rev.Status, err)
		}
	}
}
