// Package testregistry starts a real OCI registry (distribution's
// `registry`, installed by `make tools`) on 127.0.0.1 for tests, with its
// storage in a temporary directory.
package testregistry

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Binary finds the registry executable: $WISP_REGISTRY_BIN, then PATH,
// then $(go env GOPATH)/bin.
func Binary() (string, error) {
	if p := os.Getenv("WISP_REGISTRY_BIN"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("registry"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	p := filepath.Join(gopath, "bin", "registry")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the OCI registry binary is missing: run 'make tools' (go install github.com/distribution/distribution/v3/cmd/registry@v3.1.2)")
	}
	return p, nil
}

// Options change the registry Start runs.
type Options struct {
	// Htpasswd, when set, is an htpasswd line ("user:bcrypt-hash"): the
	// registry then asks for basic auth.
	Htpasswd string
}

// Registry is a running registry.
type Registry struct {
	// Addr is its host:port.
	Addr string
	// Dir is its storage root.
	Dir string
	cmd *exec.Cmd
}

// Stop ends the registry (also done when the test ends).
func (r *Registry) Stop() {
	if r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}

// Start runs a registry for the test and returns its host:port. It is
// stopped when the test ends.
func Start(t testing.TB) string { return StartWith(t, Options{}).Addr }

// StartWith runs a registry for the test as opts say.
func StartWith(t testing.TB, opts Options) *Registry {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	authCfg := ""
	if opts.Htpasswd != "" {
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(opts.Htpasswd+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		authCfg = fmt.Sprintf("auth:\n  htpasswd:\n    realm: wisp-test\n    path: %s\n", htpasswd)
	}
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "data"), addr, authCfg)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfg)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting registry: %v", err)
	}
	reg := &Registry{Addr: addr, Dir: dir, cmd: cmd}
	t.Cleanup(reg.Stop)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return reg
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	reg.Stop()
	t.Fatalf("registry did not answer on %s within 20s:\n%s", addr, logs.String())
	return nil
}
