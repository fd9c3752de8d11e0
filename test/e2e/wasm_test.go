package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wisp-faas/wisp/functions/oci"
	"github.com/wisp-faas/wisp/internal/testregistry"
)

// TestWasmFunctionsOfEachABI deploys every example module from a local
// file and calls it through the gateway.
func TestWasmFunctionsOfEachABI(t *testing.T) {
	b := buildAll(t)
	n := startNode(t, b, t.TempDir())
	cases := []struct{ name, module, want string }{
		{"reactor", "hello-go-reactor.wasm", "Hi, wasm! (revision reactor-00001, path /greet)"},
		{"gowagi", "hello-go-wagi.wasm", "Hello, wasm! (revision gowagi-00001, path /greet)"},
		{"cwagi", "hello-c-wagi.wasm", "Hello, wasm! (revision cwagi-00001)"},
		{"wat", "hello-wat.wasm", "Hello from WAT!"},
	}
	for _, c := range cases {
		n.mustWisp("service", "create", c.name, "--wasm", filepath.Join(b.dir, c.module), "-e", "GREETING=Hi")
		code, body := n.call(c.name+".default."+n.Domain, "/greet?name=wasm")
		if code != 200 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q, want %q", c.name, code, body, c.want)
		}
	}
	// The ABI was detected from the exports, and the source is the
	// uploaded module's digest.
	var f struct {
		Spec struct {
			Template struct {
				Spec struct{ Wasm struct{ Module string } }
			}
		}
	}
	if err := json.Unmarshal([]byte(n.mustWisp("service", "describe", "reactor", "-o", "json")), &f); err != nil {
		t.Fatal(err)
	}
	if m := f.Spec.Template.Spec.Wasm.Module; !strings.HasPrefix(m, "sha256:") {
		t.Fatalf("uploaded module is named %q, want its digest", m)
	}

	_, errOut, code := n.wisp("service", "create", "notwasm", "--wasm", b.echo)
	oneLine(t, "not a module", errOut, code, "not a WebAssembly")

	// A module that does not compile fails its revision with wazero's words.
	bad := filepath.Join(t.TempDir(), "bad.wasm")
	if err := os.WriteFile(bad, []byte("\x00asm\x01\x00\x00\x00\xff\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = n.wisp("service", "create", "bad", "--wasm", bad, "--wait-timeout", "20s")
	oneLine(t, "module that does not compile", errOut, code, "SourceFailed", "section")
}

// TestWasmFromOCIRegistryIsPinned pulls a module from a real registry and
// checks that the revision keeps running the digest it was cut with after
// the tag moves, while a new revision takes the new module.
func TestWasmFromOCIRegistryIsPinned(t *testing.T) {
	b := buildAll(t)
	reg := testregistry.Start(t)
	push := func(module string) string {
		t.Helper()
		wasm, err := os.ReadFile(filepath.Join(b.dir, module))
		if err != nil {
			t.Fatal(err)
		}
		d, err := oci.Push(context.Background(), wasm, reg+"/functions/hello:v1", oci.Options{PlainHTTP: true})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := push("hello-go-reactor.wasm")

	n := startNode(t, b, t.TempDir())
	n.mustWisp("service", "create", "hello", "--wasm", "oci://"+reg+"/functions/hello:v1", "--plain-http")
	host := "hello.default." + n.Domain
	if code, body := n.call(host, "/"); code != 200 || !strings.Contains(body, "hello-00001") {
		t.Fatalf("OCI module: %d %q", code, body)
	}
	var rev struct {
		Spec   struct{ Wasm struct{ Module string } }
		Status struct{ ResolvedModule string }
	}
	if err := json.Unmarshal([]byte(n.mustWisp("revision", "describe", "hello-00001", "-o", "json")), &rev); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(rev.Spec.Wasm.Module, "@"+first) || !strings.HasPrefix(rev.Status.ResolvedModule, "sha256:") {
		t.Fatalf("revision not pinned to %s: %+v", first, rev)
	}

	// Move the tag. hello-00001 still runs what it was cut with; a new
	// revision pulls the tag again and gets the new module.
	push("hello-wat.wasm")
	n.mustWisp("service", "update", "hello", "--tag", "hello-00001=first", "-e", "X=2")
	if code, body := n.call(host, "/"); code != 200 || !strings.Contains(body, "Hello from WAT!") {
		t.Fatalf("new revision after the tag moved: %d %q", code, body)
	}
	if code, body := n.call("first-hello.default."+n.Domain, "/"); code != 200 || !strings.Contains(body, "hello-00001") {
		t.Fatalf("pinned revision after the tag moved: %d %q", code, body)
	}
}
