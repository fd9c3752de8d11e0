package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// oneLine fails unless a CLI error is a single line that names want.
func oneLine(t *testing.T, what, stderr string, code int, want ...string) {
	t.Helper()
	if code == 0 {
		t.Fatalf("%s: exit 0, want an error", what)
	}
	if strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
		t.Errorf("%s: error is not one line: %q", what, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: error %q does not mention %q", what, stderr, w)
		}
	}
}

// TestBadInputIsRefusedClearly sends the node every kind of bad input a
// user might, and checks each gets a one-line error naming the problem
// while the function already deployed keeps working.
func TestBadInputIsRefusedClearly(t *testing.T) {
	b := buildAll(t)
	n := startNode(t, b, t.TempDir())
	n.mustWisp("service", "create", "good", "--exec", b.echo, "-e", "MESSAGE=kept")

	_, errOut, code := n.wisp("service", "create", "Bad_Name", "--exec", b.echo)
	oneLine(t, "bad name", errOut, code, "metadata.name")

	_, errOut, code = n.wisp("service", "create", "nosource")
	oneLine(t, "no source", errOut, code, "--wasm", "--exec")

	_, errOut, code = n.wisp("service", "create", "good", "--exec", b.echo)
	oneLine(t, "duplicate", errOut, code, "already exists")

	_, errOut, code = n.wisp("service", "update", "missing", "-e", "A=b")
	oneLine(t, "update missing", errOut, code, "not found")

	_, errOut, code = n.wisp("service", "update", "good", "--timeout", "9999")
	oneLine(t, "timeout too large", errOut, code, "timeoutSeconds")

	manifests := map[string]struct{ yaml, want string }{
		"traffic sum": {`apiVersion: wisp.dev/v1alpha1
kind: Function
metadata: {name: split}
spec:
  template: {spec: {process: {command: /bin/true}}}
  traffic:
  - {latestRevision: true, percent: 60}
  - {latestRevision: true, percent: 30, tag: b}
`, "spec.traffic"},
		"unknown field": {`apiVersion: wisp.dev/v1alpha1
kind: Function
metadata: {name: typo}
spec: {template: {spec: {process: {command: /bin/true, argz: [x]}}}}
`, "argz"},
		"malformed":  {"apiVersion: wisp.dev/v1alpha1\nkind: Function\nmetadata: {name: [\n", "document 1"},
		"wrong kind": {"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", "Function"},
	}
	for name, m := range manifests {
		path := filepath.Join(t.TempDir(), "m.yaml")
		if err := os.WriteFile(path, []byte(m.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := n.wisp("apply", "-f", path)
		oneLine(t, name, errOut, code, m.want)
	}

	// The API itself: 401 without the token, 422 naming the field.
	resp, err := http.Get(n.Admin + "/apis/wisp.dev/v1alpha1/namespaces/default/functions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: status %d, want 401", resp.StatusCode)
	}
	tok, _ := os.ReadFile(filepath.Join(n.dataDir, "token"))
	req, _ := http.NewRequest(http.MethodPost, n.Admin+"/apis/wisp.dev/v1alpha1/namespaces/default/functions",
		strings.NewReader(`{"apiVersion":"wisp.dev/v1alpha1","kind":"Function","metadata":{"name":"x"},"spec":{"template":{"spec":{}}}}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Code    int
		Message string
		Details struct{ Causes []struct{ Field string } }
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || len(st.Details.Causes) == 0 || !strings.HasPrefix(st.Details.Causes[0].Field, "spec.template.spec") {
		t.Fatalf("no source via API: status %d, body %+v", resp.StatusCode, st)
	}

	// A process that exits at start: the create fails with its stderr,
	// and the revision's status says why.
	_, errOut, code = n.wisp("service", "create", "crash", "--exec", b.echo, "-e", "EXIT_AT_START=boom: no config file", "--wait-timeout", "20s")
	oneLine(t, "exits at start", errOut, code, "boom: no config file")
	out := n.mustWisp("revision", "describe", "crash-00001")
	if !strings.Contains(out, "False") || !strings.Contains(out, "boom: no config file") {
		t.Fatalf("revision status does not say why: %s", out)
	}

	if r := n.callEcho("good.default."+n.Domain, "/"); r.Message != "kept" {
		t.Fatalf("good function after bad input: %+v", r)
	}
}

// TestKnativeServiceManifestDeploys applies a Knative Service unchanged.
func TestKnativeServiceManifestDeploys(t *testing.T) {
	b := buildAll(t)
	n := startNode(t, b, t.TempDir())
	out := n.mustWisp("apply", "--no-wait", "-f", "testdata/knative-service.yaml")
	if !strings.Contains(out, "helloworld-go") {
		t.Fatalf("apply output: %q", out)
	}
	var f struct {
		Spec struct {
			Template struct {
				Metadata struct{ Annotations map[string]string }
				Spec     struct {
					Container struct{ Image string }
					Env       []struct{ Name, Value string }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(n.mustWisp("service", "describe", "helloworld-go", "-o", "json")), &f); err != nil {
		t.Fatal(err)
	}
	tpl := f.Spec.Template
	if tpl.Spec.Container.Image != "ghcr.io/knative/helloworld-go:latest" || len(tpl.Spec.Env) != 1 || tpl.Spec.Env[0].Value != "Go Sample v1" ||
		tpl.Metadata.Annotations["autoscaling.knative.dev/min-scale"] != "1" {
		t.Fatalf("converted function: %+v", tpl)
	}
	// Applying the same manifest again changes nothing.
	if out := n.mustWisp("apply", "--no-wait", "-f", "testdata/knative-service.yaml"); !strings.Contains(out, "unchanged") {
		t.Fatalf("second apply: %q", out)
	}
}

// TestNodeStartFailures: a second node on the same data dir, and a port
// in use, are refused with an error that says what to do.
func TestNodeStartFailures(t *testing.T) {
	b := buildAll(t)
	dataDir := t.TempDir()
	startNode(t, b, dataDir)

	cmd := exec.Command(b.wisp, "serve", "--data-dir", dataDir, "--gateway-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
	out, err := runWithTimeout(cmd, 30*time.Second)
	if err == nil || !strings.Contains(out, "another wisp node") || !strings.Contains(out, "--data-dir") {
		t.Fatalf("second node on the same data dir: err %v, output %q", err, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd = exec.Command(b.wisp, "serve", "--data-dir", t.TempDir(), "--gateway-addr", ln.Addr().String(), "--admin-addr", "127.0.0.1:0")
	out, err = runWithTimeout(cmd, 30*time.Second)
	if err == nil || !strings.Contains(out, "already in use") || !strings.Contains(out, "--gateway-addr") {
		t.Fatalf("port in use: err %v, output %q", err, out)
	}
}

func runWithTimeout(cmd *exec.Cmd, d time.Duration) (string, error) {
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.String(), err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return buf.String(), os.ErrDeadlineExceeded
	}
}
