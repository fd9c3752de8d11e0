package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/controller/store/kube"
	"github.com/wisp-faas/wisp/functions/oci"
	"github.com/wisp-faas/wisp/internal/kubetest"
	"github.com/wisp-faas/wisp/internal/testregistry"
)

// kubeNode starts a node in Kubernetes mode against c.
func kubeNode(t testing.TB, b bins, kubeconfig, name string, extra ...string) *node {
	t.Helper()
	args := append([]string{"--kubeconfig", kubeconfig, "--node-name", name, "--domain", "example.test"}, extra...)
	return startNode(t, b, t.TempDir(), args...)
}

// leaseHolder returns the identity in the leader Lease.
func leaseHolder(t testing.TB, cs kubernetes.Interface) string {
	t.Helper()
	l, err := cs.CoordinationV1().Leases("wisp-system").Get(t.Context(), "wisp-controller", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func pushModule(t testing.TB, b bins, reg, module, ref string) {
	t.Helper()
	wasm, err := os.ReadFile(filepath.Join(b.dir, module))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oci.Push(context.Background(), wasm, reg+"/"+ref, oci.Options{PlainHTTP: true}); err != nil {
		t.Fatal(err)
	}
}

// TestKubernetesTwoNodesAndLeaderFailover runs two nodes on the host
// against a real apiserver: both answer the same function; killing the
// leader with SIGKILL makes the other lead within the Lease duration, a
// change made after the kill is reconciled once, and revision numbers stay
// consecutive.
func TestKubernetesTwoNodesAndLeaderFailover(t *testing.T) {
	b := buildAll(t)
	c := kubetest.Start(t)
	// The install users run, with the real kubectl; the nodes then run as
	// its ServiceAccount, so that its RBAC is shown to be enough.
	kubectl := filepath.Join(kubetest.BinDir(t), "kubectl")
	if out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig(t), "apply", "-k", "../../config/").CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply -k config/: %v\n%s", err, out)
	}
	const sa = "system:serviceaccount:wisp-system:wisp-node"
	kc := c.KubeconfigAs(t, sa)
	cs := c.Clientset(t)
	checkNodeRBAC(t, c, sa)
	reg := testregistry.Start(t)
	pushModule(t, b, reg, "hello-go-reactor.wasm", "functions/hello:v1")

	const lease = 4 * time.Second
	leaseFlag := "--lease-duration=" + lease.String()
	a := kubeNode(t, b, kc, "node-a", leaseFlag)
	eventually(t, 30*time.Second, func() string {
		if h := leaseHolder(t, cs); !strings.HasPrefix(h, "node-a_") {
			return "node-a does not lead; the Lease holder is " + h
		}
		return ""
	})
	bn := kubeNode(t, b, kc, "node-b", leaseFlag)

	// Users write Functions with kubectl; the node may not (RBAC).
	apply := func(env string) {
		t.Helper()
		doc := `apiVersion: wisp.dev/v1alpha1
kind: Function
metadata: {name: hello, namespace: default}
spec:
  template:
    spec:
      wasm: {module: "oci://` + reg + `/functions/hello:v1", plainHTTP: true}
      env: [{name: STAGE, value: "` + env + `"}]
`
		f := filepath.Join(t.TempDir(), "hello.yaml")
		os.WriteFile(f, []byte(doc), 0o600)
		if out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig(t), "apply", "-f", f).CombinedOutput(); err != nil {
			t.Fatalf("kubectl apply -f: %v\n%s", err, out)
		}
	}
	apply("first")
	host := "hello.default.example.test"
	for _, n := range []*node{a, bn} {
		eventually(t, 30*time.Second, func() string {
			if code, body := n.call(host, "/"); code != 200 || !strings.Contains(body, "hello-00001") {
				return "node " + n.Gateway + ": " + body
			}
			return ""
		})
	}

	// The function's status is the leader's work, seen by kubectl users.
	st, err := kube.New(t.Context(), c.Admin(), kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fns := store.NewTyped[api.Function](st, store.Functions)
	eventually(t, 30*time.Second, func() string {
		f, err := fns.Get(t.Context(), "default", "hello")
		if err != nil {
			return err.Error()
		}
		if f.Status.LatestReadyRevisionName != "hello-00001" || !strings.HasPrefix(f.Status.URL, "http://hello.default.example.test") {
			return "function status: " + f.Status.LatestReadyRevisionName + " " + f.Status.URL
		}
		return ""
	})

	a.kill()
	killed := time.Now()
	apply("after-kill")
	var led time.Duration
	eventually(t, lease+15*time.Second, func() string {
		if h := leaseHolder(t, cs); !strings.HasPrefix(h, "node-b_") {
			return "node-b does not lead after the leader was killed; holder " + h
		}
		if led == 0 {
			led = time.Since(killed)
		}
		if code, body := bn.call(host, "/"); code != 200 || !strings.Contains(body, "hello-00002") {
			return "node-b after failover: " + body
		}
		return ""
	})
	reconciled := time.Since(killed)
	t.Logf("failover: node-b led %.1fs after the kill; the change was served %.1fs after it (lease %s)", led.Seconds(), reconciled.Seconds(), lease)
	if reconciled > lease+5*time.Second {
		t.Errorf("the change was reconciled %.1fs after the leader's kill; want within the lease (%s) and a few seconds", reconciled.Seconds(), lease)
	}

	revs, err := store.NewTyped[api.Revision](st, store.Revisions).List(t.Context(), "default")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range revs {
		names = append(names, r.Name+"#"+r.Labels[api.LabelRevisionNumber])
		if len(r.OwnerReferences) != 1 || r.OwnerReferences[0].Name != "hello" {
			t.Errorf("revision %s owner references %+v; want the Function", r.Name, r.OwnerReferences)
		}
	}
	if want := []string{"hello-00001#1", "hello-00002#2"}; !slices.Equal(names, want) {
		t.Fatalf("revisions %v; want %v (one cut per change, numbers consecutive)", names, want)
	}
	// An object another tool wrote that the schema admits but wisp's
	// validation refuses: a condition names the field; nothing crashes.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(`apiVersion: wisp.dev/v1alpha1
kind: Function
metadata: {name: bad, namespace: default}
spec:
  template:
    spec:
      wasm: {module: "oci://`+reg+`/functions/hello:v1"}
  traffic: [{latestRevision: true, percent: 50}]
`), 0o600)
	if out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig(t), "apply", "-f", bad).CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply -f bad.yaml: %v\n%s", err, out)
	}
	eventually(t, 30*time.Second, func() string {
		f, err := fns.Get(t.Context(), "default", "bad")
		if err != nil {
			return err.Error()
		}
		cond := f.Status.GetCondition(api.ConditionReady)
		if cond == nil || cond.Reason != "InvalidSpec" || !strings.Contains(cond.Message, "spec.traffic") {
			return fmt.Sprintf("status of an invalid function: %+v", cond)
		}
		return ""
	})
	if code, _ := bn.call(host, "/"); code != 200 {
		t.Fatalf("the valid function stopped answering after an invalid one came: %d", code)
	}
}

// TestKubernetesAPIServerUnreachableAtStart: the node says what it cannot
// reach and keeps trying.
func TestKubernetesAPIServerUnreachableAtStart(t *testing.T) {
	b := buildAll(t)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600)
	cmd := exec.Command(b.wisp, "serve", "--data-dir", t.TempDir(), "--gateway-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--kubeconfig", kc)
	out, err := runWithTimeout(cmd, 4*time.Second)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the node exited (%v); want it to keep retrying:\n%s", err, out)
	}
	if !strings.Contains(out, "cannot reach the Kubernetes API at https://127.0.0.1:1") || strings.Count(out, "retrying") < 2 {
		t.Fatalf("node log does not say it cannot reach the apiserver and retries:\n%s", out)
	}
}

// checkNodeRBAC: the node's ServiceAccount may do what a node does and
// is refused what users do, with the verb and resource named.
func checkNodeRBAC(t *testing.T, c *kubetest.Cluster, sa string) {
	t.Helper()
	st, err := kube.New(t.Context(), c.As(sa), kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.List(t.Context(), store.Functions, ""); err != nil {
		t.Fatalf("the node cannot list functions: %v", err)
	}
	_, err = st.Create(t.Context(), store.Functions, "default", "x", []byte(`{"spec":{"template":{"spec":{"wasm":{"module":"oci://r/x:1"}}}}}`))
	if !errors.Is(err, store.ErrForbidden) || !strings.Contains(err.Error(), `cannot create resource "functions"`) {
		t.Fatalf("create function as the node: %v; want forbidden naming create and functions", err)
	}
	_, err = c.Clientset(t).CoreV1().Secrets("default").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(c.As(sa))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets("wisp-system").List(t.Context(), metav1.ListOptions{}); err == nil || !strings.Contains(err.Error(), `cannot list resource "secrets"`) {
		t.Fatalf("list secrets as the node: %v; want forbidden", err)
	}
}
