package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/wisp-faas/wisp/internal/testregistry"
)

// TestPluginPushPullInspect distributes a module with the wisp CLI through
// a real registry: push, pull it back byte for byte, inspect it as Istio
// would read it, and refuse a wrong sha256 and wrong credentials.
func TestPluginPushPullInspect(t *testing.T) {
	b := buildAll(t)
	reg := testregistry.Start(t)
	dataDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	wisp := func(args ...string) (string, string, int) {
		return runWisp(b.wisp, dataDir, nil, append(args, "--registry-config", cfg)...)
	}
	module := filepath.Join(b.dir, "hello-wat.wasm")
	wasm, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	moduleHex := hex.EncodeToString(sum[:])
	ref := reg + "/filters/hello:v1"

	out, errOut, code := wisp("plugin", "push", module, ref, "--plain-http")
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, errOut)
	}
	var manifest string
	for _, l := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(l, "Digest: "); ok {
			manifest = d
		}
	}
	if !strings.HasPrefix(manifest, "sha256:") || !strings.Contains(out, "Module sha256: "+moduleHex) {
		t.Fatalf("push printed %q; want the manifest digest and the module's sha256", out)
	}

	pulled := filepath.Join(t.TempDir(), "pulled.wasm")
	out, errOut, code = wisp("plugin", "pull", ref, "--plain-http", "-o", pulled, "--sha256", moduleHex)
	if code != 0 {
		t.Fatalf("pull: exit %d: %s", code, errOut)
	}
	if got, err := os.ReadFile(pulled); err != nil || !bytes.Equal(got, wasm) {
		t.Fatalf("pulled %d bytes (%v), want the %d pushed", len(got), err, len(wasm))
	}
	if !strings.Contains(out, "module layout") || !strings.Contains(out, "@"+manifest) {
		t.Errorf("pull printed %q; want the layout and the pinned reference", out)
	}
	// Pinned by digest, to standard output.
	out, errOut, code = wisp("plugin", "pull", reg+"/filters/hello@"+manifest, "--plain-http", "-o", "-")
	if code != 0 || out != string(wasm) {
		t.Errorf("pull by digest to stdout: exit %d, %d bytes: %s", code, len(out), errOut)
	}

	out, errOut, code = wisp("plugin", "inspect", ref, "--plain-http", "-o", "json")
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, errOut)
	}
	var info struct {
		ManifestDigest string
		Config         struct{ MediaType string }
		Layers         []struct{ MediaType, Digest string }
		Format         string
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("inspect -o json: %v\n%s", err, out)
	}
	if info.ManifestDigest != manifest || info.Config.MediaType != "application/vnd.module.wasm.config.v1+json" || info.Format != "module" ||
		len(info.Layers) != 2 || info.Layers[1].MediaType != "application/vnd.module.wasm.content.layer.v1+wasm" || info.Layers[1].Digest != "sha256:"+moduleHex {
		t.Errorf("inspect: %+v; want Istio's two-layer layout with the module last", info)
	}
	out, _, _ = wisp("plugin", "inspect", ref, "--plain-http")
	if !strings.Contains(out, "Istio reads it:") || !strings.Contains(out, "yes") {
		t.Errorf("inspect table does not say Istio reads it:\n%s", out)
	}

	_, errOut, code = wisp("plugin", "pull", ref, "--plain-http", "-o", filepath.Join(t.TempDir(), "x.wasm"), "--sha256", strings.Repeat("0", 64))
	oneLine(t, "wrong sha256", errOut, code, "not the expected sha256:"+strings.Repeat("0", 64))
	_, errOut, code = wisp("plugin", "pull", ref, "-o", filepath.Join(t.TempDir(), "x.wasm"))
	oneLine(t, "https to a plain-HTTP registry", errOut, code, "--plain-http")

	hash, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	private := testregistry.StartWith(t, testregistry.Options{Htpasswd: "wisp:" + string(hash)})
	_, errOut, code = wisp("plugin", "push", module, private.Addr+"/filters/hello:v1", "--plain-http", "-u", "wisp", "-p", "wrong")
	oneLine(t, "wrong credentials", errOut, code, "401 Unauthorized", "--username/--password")
	if _, errOut, code := wisp("plugin", "push", module, private.Addr+"/filters/hello:v1", "--plain-http", "-u", "wisp", "-p", "right"); code != 0 {
		t.Errorf("push with the right credentials: exit %d: %s", code, errOut)
	}
}

// filterView is the part of a Filter the test reads from -o json.
type filterView struct {
	Metadata struct {
		Name, ResourceVersion string
		Generation            int64
	}
	Spec struct {
		Source, SHA256, Phase, FailStrategy, ImagePullPolicy string
		Priority                                             int32
		PlainHTTP                                            bool
		PluginConfig                                         json.RawMessage
		Selector                                             *struct {
			Functions   []string
			MatchLabels map[string]string
		}
	}
	Status struct {
		Conditions     []struct{ Type, Status, Reason, Message string }
		ResolvedModule string
	}
}

// TestFilterLifecycle manages Filters on a running node with the CLI:
// from a registry and from a local file, listed, described, updated,
// applied from YAML and deleted, with the status the node reports as it
// loads each one.
func TestFilterLifecycle(t *testing.T) {
	b := buildAll(t)
	reg := testregistry.Start(t)
	n := startNode(t, b, t.TempDir())
	module := filepath.Join(b.dir, "header-filter.wasm")
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	n.mustWisp("plugin", "push", module, reg+"/filters/auth:v1", "--plain-http", "--registry-config", cfg)

	out := n.mustWisp("filter", "create", "auth", "--source", "oci://"+reg+"/filters/auth:v1", "--plain-http",
		"--phase", "authn", "--priority", "10", "--config", `{"header": "x-api-key"}`, "--function", "shop", "--function", "cart")
	if !strings.Contains(out, "Filter 'auth' created in namespace 'default'.") {
		t.Errorf("create printed %q", out)
	}
	get := func(name string) filterView {
		t.Helper()
		var f filterView
		if err := json.Unmarshal([]byte(n.mustWisp("filter", "describe", name, "-o", "json")), &f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	f := get("auth")
	var cfgJSON bytes.Buffer
	_ = json.Compact(&cfgJSON, f.Spec.PluginConfig)
	if f.Spec.Source != "oci://"+reg+"/filters/auth:v1" || f.Spec.Phase != "AUTHN" || f.Spec.Priority != 10 || !f.Spec.PlainHTTP ||
		f.Spec.FailStrategy != "FAIL_CLOSE" || f.Spec.ImagePullPolicy != "IfNotPresent" || cfgJSON.String() != `{"header":"x-api-key"}` ||
		f.Spec.Selector == nil || strings.Join(f.Spec.Selector.Functions, ",") != "shop,cart" {
		t.Errorf("stored filter: %+v", f.Spec)
	}
	eventually(t, 30*time.Second, func() string {
		f := get("auth")
		if len(f.Status.Conditions) != 1 || f.Status.Conditions[0].Type != "Ready" || f.Status.Conditions[0].Status != "True" ||
			!strings.HasPrefix(f.Status.ResolvedModule, "sha256:") {
			return fmt.Sprintf("the filter never loaded: %+v", f.Status)
		}
		return ""
	})

	// A local file is uploaded and named by its digest; one that is not a
	// proxy-wasm module is refused when it loads, and the status says why.
	n.mustWisp("filter", "create", "local", "--source", filepath.Join(b.dir, "hello-wat.wasm"), "--phase", "stats", "--selector", "tier=web")
	if src := get("local").Spec.Source; !strings.HasPrefix(src, "sha256:") {
		t.Errorf("local module stored as %q, want its digest", src)
	}
	eventually(t, 30*time.Second, func() string {
		f := get("local")
		if len(f.Status.Conditions) != 1 || f.Status.Conditions[0].Status != "False" || f.Status.Conditions[0].Reason != "LoadFailed" ||
			!strings.Contains(f.Status.Conditions[0].Message, "proxy_abi_version") {
			return fmt.Sprintf("a module that is not proxy-wasm: %+v", f.Status)
		}
		return ""
	})

	out = n.mustWisp("filter", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "auth") || !strings.Contains(lines[1], "AUTHN") || !strings.Contains(lines[1], "shop,cart") ||
		!strings.Contains(lines[2], "local") || !strings.Contains(lines[2], "tier=web") {
		t.Errorf("list, in chain order:\n%s", out)
	}
	out = n.mustWisp("filter", "describe", "auth")
	for _, want := range []string{"Phase:", "AUTHN", "Priority:", "10", "Functions:", "shop,cart", "Fail strategy:", "FAIL_CLOSE", "Ready", "True"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	if y := n.mustWisp("filter", "describe", "auth", "-o", "yaml"); !strings.Contains(y, "kind: Filter") || !strings.Contains(y, "phase: AUTHN") {
		t.Errorf("describe -o yaml:\n%s", y)
	}

	n.mustWisp("filter", "update", "auth", "--phase", "authz", "--fail-strategy", "open", "--function", "cart-", "--pull-policy", "always")
	if u := get("auth"); u.Spec.Phase != "AUTHZ" || u.Spec.FailStrategy != "FAIL_OPEN" || u.Spec.ImagePullPolicy != "Always" ||
		strings.Join(u.Spec.Selector.Functions, ",") != "shop" || u.Metadata.Generation != 2 || u.Spec.Priority != 10 {
		t.Errorf("after update: generation %d %+v", u.Metadata.Generation, u.Spec)
	}

	// Refusals: one line each, naming what to fix.
	_, errOut, code := n.wisp("filter", "create", "x", "--source", "oci://"+reg+"/filters/auth:v1", "--phase", "auth")
	oneLine(t, "bad phase flag", errOut, code, "--phase", "authn")
	_, errOut, code = n.wisp("filter", "create", "x", "--source", "/no/such.wasm")
	oneLine(t, "missing file", errOut, code, "--source /no/such.wasm")
	_, errOut, code = n.wisp("filter", "create", "x", "--source", "oci://"+reg+"/f:v1", "--sha256", "abc")
	oneLine(t, "bad sha256", errOut, code, "spec.sha256")
	_, errOut, code = n.wisp("filter", "create", "auth", "--source", "oci://"+reg+"/f:v1")
	oneLine(t, "name taken", errOut, code, "already exists")
	_, errOut, code = n.wisp("filter", "create", "x")
	oneLine(t, "no source", errOut, code, "--source")

	// wisp apply takes Filters; a bad phase names the field.
	manifest := filepath.Join(t.TempDir(), "filter.yaml")
	doc := "apiVersion: wisp.dev/v1alpha1\nkind: Filter\nmetadata:\n  name: applied\nspec:\n  source: oci://" + reg + "/filters/auth:v1\n  plainHTTP: true\n  phase: STATS\n  pluginConfig:\n    rules: [a, b]\n"
	if err := os.WriteFile(manifest, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := n.mustWisp("apply", "-f", manifest); !strings.Contains(out, "Filter 'applied' created") {
		t.Errorf("apply printed %q", out)
	}
	if out := n.mustWisp("apply", "-f", manifest); !strings.Contains(out, "Filter 'applied' unchanged") {
		t.Errorf("second apply printed %q", out)
	}
	if err := os.WriteFile(manifest, []byte(strings.Replace(doc, "STATS", "LOGGING", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = n.wisp("apply", "-f", manifest)
	oneLine(t, "apply with a bad phase", errOut, code, "spec.phase")

	n.mustWisp("filter", "delete", "auth", "local", "applied")
	if out := n.mustWisp("filter", "list", "-o", "json"); strings.Contains(out, `"name"`) {
		t.Errorf("filters left after delete:\n%s", out)
	}
	_, errOut, code = n.wisp("filter", "describe", "auth")
	oneLine(t, "deleted filter", errOut, code, `filter "auth" not found`)
}

// TestFilterRunsInTheGateway attaches the example proxy-wasm filter
// (functions/examples/header-filter, Go SDK), pushed to a real registry,
// to one function; updates its configuration under load with no failed
// request; and removes it.
func TestFilterRunsInTheGateway(t *testing.T) {
	b := buildAll(t)
	reg := testregistry.Start(t)
	n := startNode(t, b, t.TempDir())
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	n.mustWisp("plugin", "push", filepath.Join(b.dir, "header-filter.wasm"), reg+"/filters/greeting:v1", "--plain-http", "--registry-config", cfg)
	n.mustWisp("service", "create", "shop", "--exec", b.echo)
	n.mustWisp("service", "create", "cart", "--exec", b.echo)
	n.mustWisp("filter", "create", "greeting", "--source", "oci://"+reg+"/filters/greeting:v1", "--plain-http",
		"--function", "shop", "--config", `{"header": "x-greeting", "value": "v1", "deny": "x-block"}`)

	greeting := func(fn string, header http.Header) (int, string, string) {
		resp, body := n.request("GET", fn+".default."+n.Domain, "/", header)
		return resp.StatusCode, resp.Header.Get("X-Greeting"), body
	}
	eventually(t, 30*time.Second, func() string {
		if code, g, _ := greeting("shop", nil); code != 200 || g != "v1" {
			return fmt.Sprintf("the filter never ran: %d x-greeting %q", code, g)
		}
		return ""
	})
	if code, g, _ := greeting("cart", nil); code != 200 || g != "" {
		t.Fatalf("a function the filter does not select: %d x-greeting %q", code, g)
	}
	if code, _, body := greeting("shop", http.Header{"X-Block": {"1"}}); code != 403 || body != "blocked by header-filter\n" {
		t.Fatalf("the filter's local response: %d %q", code, body)
	}

	// A new configuration under load: every request answered 200, and the
	// new version in force within a second.
	var stop atomic.Bool
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				code, _, _ := greeting("shop", nil)
				sent.Add(1)
				if code != 200 {
					failed.Add(1)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	begin := time.Now()
	n.mustWisp("filter", "update", "greeting", "--config", `{"header": "x-greeting", "value": "v2"}`)
	eventually(t, 10*time.Second, func() string {
		if _, g, _ := greeting("shop", nil); g != "v2" {
			return "the new configuration never took effect: x-greeting " + g
		}
		return ""
	})
	took := time.Since(begin)
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed while the filter was reloaded", failed.Load(), sent.Load())
	}
	t.Logf("new filter version in force %v after the update (CLI call included); %d requests during the reload", took, sent.Load())
	if took > 2*time.Second {
		t.Errorf("the new version took %v to take effect", took)
	}

	n.mustWisp("filter", "delete", "greeting")
	eventually(t, 10*time.Second, func() string {
		if _, g, _ := greeting("shop", nil); g != "" {
			return "the deleted filter still runs"
		}
		return ""
	})
}
