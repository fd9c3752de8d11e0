package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/controller/store/kube"
	"github.com/wisp-faas/wisp/internal/kubetest"
	"github.com/wisp-faas/wisp/internal/testregistry"
)

// installWisp starts an apiserver and applies config/ with kubectl.
func installWisp(b testing.TB) *kubetest.Cluster {
	b.Helper()
	c := kubetest.Start(b)
	kubectl := filepath.Join(kubetest.BinDir(b), "kubectl")
	if out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig(b), "apply", "-k", "../../config/").CombinedOutput(); err != nil {
		b.Fatalf("kubectl apply -k config/: %v\n%s", err, out)
	}
	return c
}

// metric returns the value of an unlabelled series in a node's metrics.
func (n *node) metric(name string) float64 {
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(n.metrics())
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// BenchmarkColdStartNodeModes measures the first request to a Wasm
// function scaled to zero, through a node's gateway, on a single node and
// on a node in Kubernetes mode, in the same run. Each iteration waits
// (outside the timer) until the revision is at zero instances and the
// status writes of scaling down have settled; the module stays compiled
// and snapshotted, as it does for a function that went idle.
//
//	go test -run '^$' -bench ColdStartNodeModes -benchtime 10x ./test/e2e/
func BenchmarkColdStartNodeModes(b *testing.B) {
	bn := buildAll(b)
	reg := testregistry.Start(b)
	pushModule(b, bn, reg, "hello-go-reactor.wasm", "functions/hello:v1")
	module := "oci://" + reg + "/functions/hello:v1"
	asCfg := filepath.Join(b.TempDir(), "autoscaler.yaml")
	if err := os.WriteFile(asCfg, []byte("stable-window: 6s\nscale-to-zero-grace-period: 1s\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	modes := []struct {
		name  string
		start func(b *testing.B) *node
	}{
		{"single", func(b *testing.B) *node {
			return startNode(b, bn, b.TempDir(), "--autoscaler-config", asCfg, "--domain", "example.test")
		}},
		{"kubernetes", func(b *testing.B) *node {
			c := installWisp(b)
			return kubeNode(b, bn, c.Kubeconfig(b), "bench", "--autoscaler-config", asCfg)
		}},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			n := m.start(b)
			n.mustWisp("service", "create", "hello", "--wasm", module, "--plain-http")
			host := "hello.default.example.test"
			if code, body := n.call(host, "/"); code != 200 {
				b.Fatalf("first call: %d %s", code, body)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				eventually(b, 60*time.Second, func() string {
					if d, a := n.revisionInstances("hello-00001"); d != 0 || a != 0 {
						return fmt.Sprintf("iteration %d: not at zero (desired %d, ready %d)", i, d, a)
					}
					return ""
				})
				time.Sleep(500 * time.Millisecond)
				b.StartTimer()
				t0 := time.Now()
				code, body := n.call(host, "/")
				lat = append(lat, time.Since(t0))
				if code != 200 || !strings.Contains(body, "hello-00001") {
					b.Fatalf("iteration %d: %d %s", i, code, body)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50")
			b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "ms-p90")
		})
	}
}

// BenchmarkKubernetesRoutes1000 measures a node that starts from nothing
// in a cluster holding 1,000 Functions (already reconciled, at zero
// instances): the time from starting the process until its gateway has a
// route for every one, and its resident memory then, against a node in an
// empty cluster in the same run.
//
//	go test -run '^$' -bench KubernetesRoutes1000 -benchtime 3x ./test/e2e/
func BenchmarkKubernetesRoutes1000(b *testing.B) {
	const count = 1000
	bn := buildAll(b)
	c := installWisp(b)
	kc := c.Kubeconfig(b)
	cfg := zeroInitialScale(b)
	reg := testregistry.Start(b)
	pushModule(b, bn, reg, "hello-go-reactor.wasm", "functions/hello:v1")

	empty := kubeNode(b, bn, kc, "empty", "--autoscaler-config", cfg)
	time.Sleep(2 * time.Second) // let the Go runtime settle as the loaded node will
	baseRSS := empty.metric("process_resident_memory_bytes")
	empty.stop()

	rc := c.Admin()
	rc.QPS, rc.Burst = 500, 1000
	st, err := kube.New(b.Context(), rc, kube.Options{})
	if err != nil {
		b.Fatal(err)
	}
	fns := store.NewTyped[api.Function](st, store.Functions)
	created := time.Now()
	for i := range count {
		f := &api.Function{
			TypeMeta:   metav1.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindFunction},
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fn-%04d", i), Namespace: "default"},
		}
		f.Spec.Template.Spec.Wasm = &api.WasmSource{Module: "oci://" + reg + "/functions/hello:v1", PlainHTTP: true}
		if _, err := fns.Create(b.Context(), f); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("created %d Functions in %.1fs", count, time.Since(created).Seconds())
	// One node cuts their revisions and writes their status, fast.
	seed := kubeNode(b, bn, kc, "seed", "--autoscaler-config", cfg, "--kube-api-qps", "1000", "--kube-api-burst", "2000")
	eventually(b, 5*time.Minute, func() string {
		if v := seed.metric("wisp_gateway_routes"); v != count {
			return fmt.Sprintf("the seed node routes %v of %d functions", v, count)
		}
		return ""
	})
	seed.stop()

	var took []time.Duration
	var rss float64
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		n := kubeNode(b, bn, kc, fmt.Sprintf("fresh-%d", i), "--autoscaler-config", cfg)
		for n.metric("wisp_gateway_routes") != count {
			if time.Since(t0) > 2*time.Minute {
				b.Fatalf("after 2m the node routes %v of %d functions", n.metric("wisp_gateway_routes"), count)
			}
			time.Sleep(10 * time.Millisecond)
		}
		took = append(took, time.Since(t0))
		b.StopTimer()
		if code, body := n.call(fmt.Sprintf("fn-%04d.default.example.test", count-1), "/"); code == 404 {
			b.Fatalf("the last function is not routed: %s", body)
		}
		time.Sleep(2 * time.Second)
		rss = n.metric("process_resident_memory_bytes")
		n.stop()
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(took[len(took)/2].Seconds(), "s-to-all-routes")
	b.ReportMetric(rss/(1<<20), "MiB-rss")
	b.ReportMetric(baseRSS/(1<<20), "MiB-rss-empty")
}
