package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wisp-faas/wisp/internal/kubetest"
)

// fullCluster starts the whole single-node cluster of scripts/k8s/cluster.sh
// (containerd, kubelet, scheduler, controller-manager, a registry on
// 127.0.0.1:5310) and returns its admin kubeconfig. A cluster that already
// runs is used as it is and left running; one this test started is stopped.
func fullCluster(t *testing.T) (kubeconfig, kubectl string) {
	t.Helper()
	bin := kubetest.BinDir(t)
	_, required, _ := kubetest.FindBin()
	if _, err := os.Stat(filepath.Join(bin, "kubelet")); err != nil {
		if required { // make test builds every cluster binary (make k8s-bin)
			t.Fatalf("no kubelet in %s: 'make k8s-bin' builds it", bin)
		}
		t.Skipf("no kubelet in %s: 'make k8s-bin' builds it", bin)
	}
	if os.Geteuid() != 0 {
		// make test installs with apt-get and so runs as root, as CI does.
		t.Skip("the kubelet and containerd run as root")
	}
	dir := filepath.Dir(bin)
	script, _ := filepath.Abs("../../scripts/k8s/cluster.sh")
	run := func(arg string) (string, error) {
		cmd := exec.Command(script, arg)
		cmd.Env = append(os.Environ(), "K8S_DIR="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	status, _ := run("status")
	if !strings.Contains(status, "kubelet: running") {
		start := time.Now()
		if out, err := run("start"); err != nil {
			t.Fatalf("cluster.sh start: %v\n%s", err, out)
		}
		t.Logf("cluster started in %.0fs", time.Since(start).Seconds())
		t.Cleanup(func() {
			if out, err := run("stop"); err != nil {
				t.Errorf("cluster.sh stop: %v\n%s", err, out)
			}
		})
	}
	return filepath.Join(dir, "etc", "admin.kubeconfig"), filepath.Join(bin, "kubectl")
}

// podOverlay writes a kustomization that installs config/ with image and
// what this cluster lacks: it has no kube-proxy and its pod network is not
// routed from the host, so the node runs in the host's network (where the
// apiserver and the registry listen on 127.0.0.1) on ports of its own.
func podOverlay(t *testing.T, image string) string {
	t.Helper()
	dir := t.TempDir()
	config, _ := filepath.Abs("../../config")
	rel, err := filepath.Rel(dir, config)
	if err != nil {
		t.Fatal(err)
	}
	name, digest, ok := strings.Cut(image, "@")
	if !ok {
		t.Fatalf("make image printed %q; want REPO@sha256:...", image)
	}
	k := `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ` + rel + `
images:
- {name: 127.0.0.1:5310/wisp, newName: "` + name + `", digest: "` + digest + `"}
configMapGenerator:
- name: config-autoscaler
  namespace: wisp-system
  behavior: merge
  literals: [stable-window=6s, scale-to-zero-grace-period=2s]
  options: {disableNameSuffixHash: true}
patches:
- target: {kind: DaemonSet, name: wisp-node}
  patch: |
    - {op: add, path: /spec/template/spec/hostNetwork, value: true}
    - {op: add, path: /spec/template/spec/dnsPolicy, value: ClusterFirstWithHostNet}
    - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1"}}
    - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: KUBERNETES_SERVICE_PORT, value: "6443"}}
    - {op: replace, path: /spec/template/spec/containers/0/ports, value: [{name: http, containerPort: 38080}, {name: admin, containerPort: 38081}]}
    - {op: replace, path: /spec/template/spec/containers/0/args/3, value: --gateway-addr=0.0.0.0:38080}
    - {op: replace, path: /spec/template/spec/containers/0/args/4, value: --admin-addr=0.0.0.0:38081}
    - {op: add, path: /spec/template/spec/containers/0/args/-, value: --domain=example.test}
`
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestKubernetesNodeAsPod installs wisp with kubectl apply -k and the image
// of make image, runs the node as a real Pod started by the kubelet, and
// drives a Wasm function through the gateway Service: created with kubectl,
// updated with wisp --kubeconfig, scaled to zero and back.
func TestKubernetesNodeAsPod(t *testing.T) {
	b := buildAll(t)
	kc, kubectl := fullCluster(t)
	k := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(kubectl, append([]string{"--kubeconfig", kc}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	start := time.Now()
	var stdout, stderr bytes.Buffer
	mk := exec.Command("make", "-C", "../..", "--no-print-directory", "image", "IMAGE=127.0.0.1:5310/wisp:e2e")
	mk.Stdout, mk.Stderr = &stdout, &stderr
	if err := mk.Run(); err != nil {
		t.Fatalf("make image: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	image := lines[len(lines)-1]
	t.Logf("make image: %s in %.0fs", image, time.Since(start).Seconds())

	overlay := podOverlay(t, image)
	k("apply", "-k", overlay)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command(kubectl, "--kubeconfig", kc, "-n", "wisp-system", "logs", "ds/wisp-node", "--tail", "60").CombinedOutput()
			t.Logf("node Pod log:\n%s", out)
		}
		exec.Command(kubectl, "--kubeconfig", kc, "delete", "namespace", "wisp-e2e-pod", "--wait=true", "--timeout=60s").Run()
		exec.Command(kubectl, "--kubeconfig", kc, "delete", "-k", overlay, "--wait=true", "--timeout=60s").Run()
	})
	k("-n", "wisp-system", "rollout", "status", "ds/wisp-node", "--timeout=180s")
	k("-n", "wisp-system", "wait", "--for=condition=Ready", "pod", "-l", "app.kubernetes.io/name=wisp-node", "--timeout=60s")
	if img := k("-n", "wisp-system", "get", "pods", "-l", "app.kubernetes.io/name=wisp-node", "-o", "jsonpath={.items[0].spec.containers[0].image}"); img != image {
		t.Fatalf("the node Pod runs %q; want %q", img, image)
	}

	pushModule(t, b, "127.0.0.1:5310", "hello-go-reactor.wasm", "e2e/hello:v1")
	k("create", "namespace", "wisp-e2e-pod")
	fn := filepath.Join(t.TempDir(), "hello.yaml")
	os.WriteFile(fn, []byte(`apiVersion: wisp.dev/v1alpha1
kind: Function
metadata: {name: hello, namespace: wisp-e2e-pod}
spec:
  template:
    spec:
      wasm: {module: "oci://127.0.0.1:5310/e2e/hello:v1", plainHTTP: true}
`), 0o600)
	k("apply", "-f", fn)

	// The gateway Service, reached as a user reaches it from outside.
	port := freePort(t)
	pf := exec.Command(kubectl, "--kubeconfig", kc, "-n", "wisp-system", "port-forward", "svc/wisp-gateway", fmt.Sprintf("%d:80", port))
	var pfLog bytes.Buffer
	pf.Stdout, pf.Stderr = &pfLog, &pfLog
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Process.Kill(); pf.Wait() })
	gw := fmt.Sprintf("http://127.0.0.1:%d", port)
	call := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, gw+"/", nil)
		req.Host = "hello.wisp-e2e-pod.example.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.String()
	}
	eventually(t, 90*time.Second, func() string {
		if code, body := call(); code != 200 || !strings.Contains(body, "hello-00001") {
			return fmt.Sprintf("through svc/wisp-gateway: %d %s (port-forward: %s)", code, body, pfLog.String())
		}
		return ""
	})

	// The CLI against the cluster, as kn is used: no node address, no token.
	wisp := func(args ...string) string {
		t.Helper()
		out, errOut, code := runWisp(b.wisp, t.TempDir(), nil, append([]string{"--kubeconfig", kc, "-n", "wisp-e2e-pod"}, args...)...)
		if code != 0 {
			t.Fatalf("wisp %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	out := wisp("service", "update", "hello", "--env", "STAGE=two")
	if !strings.Contains(out, "hello-00002") || !strings.Contains(out, "http://hello.wisp-e2e-pod.example.test") {
		t.Fatalf("wisp service update said:\n%s", out)
	}
	if code, body := call(); code != 200 || !strings.Contains(body, "hello-00002") {
		t.Fatalf("after the update: %d %s", code, body)
	}

	instances := func() (desired, actual int) {
		var r struct {
			Status struct{ DesiredReplicas, ActualReplicas int }
		}
		if err := json.Unmarshal([]byte(wisp("revision", "describe", "hello-00002", "-o", "json")), &r); err != nil {
			t.Fatal(err)
		}
		return r.Status.DesiredReplicas, r.Status.ActualReplicas
	}
	idle := time.Now()
	eventually(t, 60*time.Second, func() string {
		if d, a := instances(); d != 0 || a != 0 {
			return fmt.Sprintf("hello-00002 not at zero after %.0fs: desired %d, actual %d", time.Since(idle).Seconds(), d, a)
		}
		return ""
	})
	t.Logf("hello-00002 reached zero %.1fs after its last request", time.Since(idle).Seconds())
	woke := time.Now()
	if code, body := call(); code != 200 || !strings.Contains(body, "hello-00002") {
		t.Fatalf("the first request at zero: %d %s", code, body)
	}
	t.Logf("the first request at zero was answered in %v (through port-forward)", time.Since(woke).Round(time.Millisecond))
	eventually(t, 30*time.Second, func() string {
		if _, a := instances(); a != 1 {
			return fmt.Sprintf("after waking, %d instances ready; want 1", a)
		}
		return ""
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
