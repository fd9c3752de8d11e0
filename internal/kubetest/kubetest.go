// Package kubetest starts a real Kubernetes control plane (etcd and
// kube-apiserver, v1.35) for tests, with wisp's CRDs installed, and hands
// out clients to it as an administrator or as any user, so that RBAC is
// the real thing.
//
// The binaries come from $WISP_K8S_BIN, else from the cache that `make
// k8s-bin` fills ($HOME/.cache/wisp/k8s/bin). When WISP_K8S_BIN is set and
// a binary is missing the test fails; when it is not set the test is
// skipped with the command that builds them. `make test` sets it.
//
// It must not be imported by non-test code.
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// AdminToken is the bearer token of the administrator (group
// system:masters).
const AdminToken = "wisp-test-admin"

// Cluster is a running etcd and kube-apiserver.
type Cluster struct {
	// Dir holds the data, certificates and logs.
	Dir string
	// Host is the apiserver's URL.
	Host string

	bin      string
	caPEM    []byte
	etcdURL  string
	apiPort  int
	peerPort int

	mu   sync.Mutex
	etcd *exec.Cmd
	api  *apiserver
}

// FindBin returns the directory with the Kubernetes binaries, and
// whether a missing one must fail the test (WISP_K8S_BIN is set) rather
// than skip it.
func FindBin() (dir string, required bool, err error) {
	dir, required = os.LookupEnv("WISP_K8S_BIN")
	if !required {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "wisp", "k8s", "bin")
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return dir, required, fmt.Errorf("kubetest: no %s in %s: build the cluster binaries with 'make k8s-bin' (or set WISP_K8S_BIN)", b, dir)
		}
	}
	return dir, required, nil
}

// BinDir returns FindBin's directory, or skips the test (fails it, when
// WISP_K8S_BIN is set) when the binaries are missing.
func BinDir(t testing.TB) string {
	t.Helper()
	dir, required, err := FindBin()
	if err != nil && required {
		t.Fatal(err)
	}
	if err != nil {
		t.Skip(err)
	}
	return dir
}

// Main runs a test package's tests with one cluster for them all, started
// in TestMain: Shared returns it to each test. setup runs once the
// cluster is up. Without the binaries the tests run and Shared skips or
// fails each, as BinDir says.
func Main(m *testing.M, setup func(*Cluster) error) int {
	bin, _, err := FindBin()
	if err != nil {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	c, err := StartIn(bin, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Stop()
	if setup != nil {
		if err := setup(c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	shared.Store(c)
	return m.Run()
}

// shared is the cluster of Main. It is set once, before any test runs.
var shared atomic.Pointer[Cluster]

// Shared returns the cluster Main started, or skips or fails the test
// as BinDir does.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	BinDir(t)
	c := shared.Load()
	if c == nil {
		t.Fatal("kubetest: the package's cluster is not running: call kubetest.Main from TestMain")
	}
	return c
}

// Start starts a cluster for one test and stops it when the test ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := StartIn(BinDir(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// StartIn starts etcd and kube-apiserver from the binaries in bin, with
// their state in dir, installs the CRDs of config/crd and waits until
// they are served. Stop it with Stop. It is for TestMain, where one
// cluster serves a whole package.
func StartIn(bin, dir string) (*Cluster, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, bin: bin, etcdURL: "http://127.0.0.1:" + strconv.Itoa(ports[0]), peerPort: ports[1], apiPort: ports[2]}
	c.Host = "https://127.0.0.1:" + strconv.Itoa(c.apiPort)
	if err := c.writePKI(); err != nil {
		return nil, err
	}
	if err := c.startEtcd(); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.StartAPIServer(); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.InstallCRDs(context.Background(), CRDDir()); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// CRDDir returns config/crd of this module.
func CRDDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "config", "crd")
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubetest: free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writePKI writes the apiserver's serving certificate, the service
// account key and the static token file.
func (c *Cluster) writePKI() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("kubetest: serving key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost", "kubernetes.default.svc"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("kubetest: serving certificate: %w", err)
	}
	c.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("kubetest: serving key: %w", err)
	}
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("kubetest: service account key: %w", err)
	}
	saPub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return fmt.Errorf("kubetest: service account key: %w", err)
	}
	files := map[string][]byte{
		"serving.crt": c.caPEM,
		"serving.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"sa.key":      pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(sa)}),
		"sa.pub":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}),
		"tokens.csv":  []byte(AdminToken + ",admin,admin,system:masters\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(c.Dir, name), b, 0o600); err != nil {
			return fmt.Errorf("kubetest: %w", err)
		}
	}
	return nil
}

func (c *Cluster) logFile(name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(c.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	return f, nil
}

func (c *Cluster) startEtcd() error {
	logf, err := c.logFile("etcd")
	if err != nil {
		return err
	}
	defer logf.Close()
	peer := "http://127.0.0.1:" + strconv.Itoa(c.peerPort)
	cmd := exec.Command(filepath.Join(c.bin, "etcd"), "--name", "kubetest",
		"--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", c.etcdURL, "--advertise-client-urls", c.etcdURL,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "kubetest="+peer,
		"--unsafe-no-fsync", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kubetest: start etcd: %w", err)
	}
	c.etcd = cmd
	return c.waitHTTP("etcd", c.etcdURL+"/health", http.DefaultClient, 60*time.Second, nil)
}

// apiserver is one kube-apiserver process.
type apiserver struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// StartAPIServer starts the apiserver (again, after StopAPIServer) on the
// same port and waits until it is ready.
func (c *Cluster) StartAPIServer() error {
	a, err := c.startAPIServer(c.apiPort, "kube-apiserver")
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.api = a
	c.mu.Unlock()
	return nil
}

// StartSecondAPIServer starts another apiserver on the same etcd, as in
// a highly available control plane, and returns its client configuration
// of the administrator and how to stop it.
func (c *Cluster) StartSecondAPIServer() (*rest.Config, func(), error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, nil, err
	}
	a, err := c.startAPIServer(ports[0], "kube-apiserver-"+strconv.Itoa(ports[0]))
	if err != nil {
		return nil, nil, err
	}
	cfg := c.Admin()
	cfg.Host = "https://127.0.0.1:" + strconv.Itoa(ports[0])
	return cfg, func() { a.stop() }, nil
}

func (c *Cluster) startAPIServer(port int, name string) (*apiserver, error) {
	logf, err := c.logFile(name)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d := func(f string) string { return filepath.Join(c.Dir, f) }
	cmd := exec.Command(filepath.Join(c.bin, "kube-apiserver"),
		"--etcd-servers="+c.etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--tls-cert-file="+d("serving.crt"), "--tls-private-key-file="+d("serving.key"),
		"--token-auth-file="+d("tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+d("sa.pub"), "--service-account-signing-key-file="+d("sa.key"),
		"--cert-dir="+d("certs-"+name),
		"--v=0")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("kubetest: start kube-apiserver: %w", err)
	}
	a := &apiserver{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(a.done) }()
	client, err := rest.HTTPClientFor(c.Admin())
	if err != nil {
		a.stop()
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	url := "https://127.0.0.1:" + strconv.Itoa(port) + "/readyz"
	if err := c.waitHTTP(name, url, client, 120*time.Second, a.done); err != nil {
		a.stop()
		return nil, err
	}
	return a, nil
}

func (a *apiserver) stop() {
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		// It drains watches for up to a minute; a crash is as good a test.
		a.cmd.Process.Kill()
		<-a.done
	}
}

// StopAPIServer stops the apiserver with SIGTERM (SIGKILL after 5 s) and
// waits for it to exit;
// etcd keeps running, so StartAPIServer brings back the same state.
func (c *Cluster) StopAPIServer() {
	c.mu.Lock()
	a := c.api
	c.api = nil
	c.mu.Unlock()
	if a != nil {
		a.stop()
	}
}

// Stop stops the apiserver and etcd.
func (c *Cluster) Stop() {
	c.StopAPIServer()
	if c.etcd != nil {
		c.etcd.Process.Kill()
		c.etcd.Wait()
		c.etcd = nil
	}
}

func (c *Cluster) waitHTTP(what, url string, client *http.Client, limit time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-exited:
			return fmt.Errorf("kubetest: %s exited; its log: %s", what, c.tail(what))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kubetest: %s not ready after %s (%v); its log: %s", what, limit, err, c.tail(what))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) tail(what string) string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, what+".log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Admin returns a client configuration of the administrator.
func (c *Cluster) Admin() *rest.Config {
	return &rest.Config{
		Host:            c.Host,
		BearerToken:     AdminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM},
		QPS:             200,
		Burst:           400,
	}
}

// As returns a client configuration that acts as user (for a service
// account, "system:serviceaccount:NS:NAME") with the groups a user of
// that kind has, through impersonation by the administrator.
func (c *Cluster) As(user string, groups ...string) *rest.Config {
	cfg := c.Admin()
	if ns, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		ns, _, _ = strings.Cut(ns, ":")
		groups = append(groups, "system:serviceaccounts", "system:serviceaccounts:"+ns)
	}
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	return cfg
}

// Kubeconfig writes a kubeconfig file of the administrator and returns
// its path.
func (c *Cluster) Kubeconfig(t testing.TB) string {
	t.Helper()
	return c.KubeconfigAs(t, "")
}

// KubeconfigAs writes a kubeconfig file that acts as user ("" = the
// administrator) through impersonation, as As does, and returns its path.
func (c *Cluster) KubeconfigAs(t testing.TB, user string) string {
	t.Helper()
	as := ""
	if user != "" {
		as = "\n    as: " + user + "\n    as-groups: [" + strings.Join(c.As(user).Impersonate.Groups, ", ") + "]"
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	var b bytes.Buffer
	fmt.Fprintf(&b, `apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s%s
contexts:
- name: kubetest
  context: {cluster: kubetest, user: admin, namespace: default}
current-context: kubetest
`, c.Host, base64.StdEncoding.EncodeToString(c.caPEM), AdminToken, as)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Clientset returns a typed client of the administrator.
func (c *Cluster) Clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Admin())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// Namespace creates namespace name unless it exists.
func (c *Cluster) Namespace(t testing.TB, names ...string) {
	t.Helper()
	if err := c.CreateNamespaces(t.Context(), names...); err != nil {
		t.Fatal(err)
	}
}

// CreateNamespaces creates the namespaces that do not exist.
func (c *Cluster) CreateNamespaces(ctx context.Context, names ...string) error {
	cs, err := kubernetes.NewForConfig(c.Admin())
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	for _, n := range names {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}
		_, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("kubetest: create namespace %s: %w", n, err)
		}
	}
	return nil
}

// Apply creates (or replaces) every object of the YAML documents in
// files, as the administrator.
func (c *Cluster) Apply(ctx context.Context, files ...string) error {
	dc, err := dynamic.NewForConfig(c.Admin())
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	cs, err := kubernetes.NewForConfig(c.Admin())
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	for _, f := range files {
		objs, err := readObjects(f)
		if err != nil {
			return err
		}
		for _, u := range objs {
			gvk := u.GroupVersionKind()
			res, err := cs.Discovery().ServerResourcesForGroupVersion(gvk.GroupVersion().String())
			if err != nil {
				return fmt.Errorf("kubetest: %s: %s: %w", f, gvk, err)
			}
			var gvr schema.GroupVersionResource
			namespaced := false
			for _, r := range res.APIResources {
				if r.Kind == gvk.Kind && !strings.Contains(r.Name, "/") {
					gvr = gvk.GroupVersion().WithResource(r.Name)
					namespaced = r.Namespaced
				}
			}
			if gvr.Resource == "" {
				return fmt.Errorf("kubetest: %s: the apiserver does not serve %s", f, gvk)
			}
			ri := dynamic.ResourceInterface(dc.Resource(gvr))
			if namespaced {
				ri = dc.Resource(gvr).Namespace(u.GetNamespace())
			}
			_, err = ri.Create(ctx, u, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				var cur *unstructured.Unstructured
				if cur, err = ri.Get(ctx, u.GetName(), metav1.GetOptions{}); err == nil {
					u.SetResourceVersion(cur.GetResourceVersion())
					_, err = ri.Update(ctx, u, metav1.UpdateOptions{})
				}
			}
			if err != nil {
				return fmt.Errorf("kubetest: apply %s %s/%s from %s: %w", gvk.Kind, u.GetNamespace(), u.GetName(), f, err)
			}
		}
	}
	return nil
}

// InstallCRDs applies every CRD in dir and waits until each is
// Established.
func (c *Cluster) InstallCRDs(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "wisp.dev_*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("kubetest: no CRDs in %s", dir)
	}
	var names []string
	for _, f := range files {
		objs, err := readObjects(f)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o.GetKind() == "CustomResourceDefinition" {
				names = append(names, o.GetName())
			}
		}
	}
	if err := c.Apply(ctx, files...); err != nil {
		return err
	}
	dc, err := dynamic.NewForConfig(c.Admin())
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	crds := dc.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range names {
		for {
			u, err := crds.Get(ctx, name, metav1.GetOptions{})
			if err == nil && established(u) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("kubetest: CRD %s not established after 30s (%v)", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Discovery lags Established by a moment.
	cs, err := kubernetes.NewForConfig(c.Admin())
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	for _, name := range names {
		plural, group, _ := strings.Cut(name, ".")
		for {
			if served(cs, group, plural) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("kubetest: %s not in discovery after 30s", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func served(cs kubernetes.Interface, group, plural string) bool {
	groups, err := cs.Discovery().ServerGroups()
	if err != nil {
		return false
	}
	for _, g := range groups.Groups {
		if g.Name != group {
			continue
		}
		res, err := cs.Discovery().ServerResourcesForGroupVersion(g.PreferredVersion.GroupVersion)
		if err != nil {
			return false
		}
		for _, r := range res.APIResources {
			if r.Name == plural {
				return true
			}
		}
	}
	return false
}

func established(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// readObjects decodes the YAML documents of a file.
func readObjects(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	defer f.Close()
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("kubetest: %s: %w", path, err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}
