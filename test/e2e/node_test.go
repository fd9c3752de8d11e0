// Package e2e drives the wisp binary as a user would: it builds it, starts
// `wisp serve` on free ports with a temporary data dir, and uses the CLI
// and plain HTTP against it.
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bins holds the binaries built once for every test.
type bins struct {
	wisp string
	echo string
	// dir holds the example Wasm modules too: hello-go-reactor.wasm,
	// hello-go-wagi.wasm, hello-c-wagi.wasm, hello-wat.wasm.
	dir string
}

var built struct {
	once sync.Once
	bins bins
	err  error
}

// buildAll builds the wisp binary and the test function once per run.
func buildAll(t testing.TB) bins {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "wisp-e2e-bin")
		if err != nil {
			built.err = err
			return
		}
		b := bins{wisp: filepath.Join(dir, "wisp"), echo: filepath.Join(dir, "echo"), dir: dir}
		for _, job := range [][2]string{{b.wisp, "../../cmd/wisp"}, {b.echo, "./testdata/echo"}} {
			cmd := exec.Command("go", "build", "-o", job[0], job[1])
			if out, err := cmd.CombinedOutput(); err != nil {
				built.err = fmt.Errorf("go build %s: %v\n%s", job[1], err, out)
				return
			}
		}
		cmd := exec.Command("../../functions/examples/build.sh", dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("building the example Wasm functions: %v\n%s", err, out)
			return
		}
		built.bins = b
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bins
}

// node is a running `wisp serve`.
type node struct {
	t       testing.TB
	bin     string
	dataDir string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	done    chan error

	Gateway string
	Admin   string
	Domain  string
}

// startNode starts wisp serve on free ports and waits until it answers.
func startNode(t testing.TB, b bins, dataDir string, extra ...string) *node {
	t.Helper()
	_ = os.Remove(filepath.Join(dataDir, "node.json"))
	args := append([]string{"serve", "--data-dir", dataDir, "--gateway-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-level", "debug"}, extra...)
	n := &node{t: t, bin: b.wisp, dataDir: dataDir, log: &bytes.Buffer{}, done: make(chan error, 1)}
	n.cmd = exec.Command(b.wisp, args...)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting wisp serve: %v", err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("node log:\n%s", n.log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-n.done:
			t.Fatalf("wisp serve exited at start: %v\n%s", err, n.log.String())
		default:
		}
		var nf struct{ GatewayURL, AdminURL, Domain string }
		if b, err := os.ReadFile(filepath.Join(dataDir, "node.json")); err == nil && json.Unmarshal(b, &nf) == nil {
			n.Gateway, n.Admin, n.Domain = nf.GatewayURL, nf.AdminURL, nf.Domain
			if resp, err := http.Get(n.Admin + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return n
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("wisp serve did not become ready in 60s:\n%s", n.log.String())
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (n *node) stop() {
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		n.done <- err
		if err != nil {
			n.t.Errorf("wisp serve did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(45 * time.Second):
		_ = n.cmd.Process.Kill()
		n.t.Errorf("wisp serve did not stop within 45s of SIGTERM")
	}
}

// kill ends the node with SIGKILL, as a crash would.
func (n *node) kill() {
	_ = n.cmd.Process.Kill()
	<-n.done
	n.done <- nil
}

// wisp runs a CLI command against the node and returns stdout, stderr
// and the exit code.
func (n *node) wisp(args ...string) (string, string, int) {
	n.t.Helper()
	return runWisp(n.bin, n.dataDir, nil, args...)
}

func runWisp(bin, dataDir string, stdin io.Reader, args ...string) (string, string, int) {
	cmd := exec.Command(bin, append([]string{"--data-dir", dataDir}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errOut, stdin
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return out.String(), errOut.String(), code
}

// mustWisp runs a CLI command that must succeed.
func (n *node) mustWisp(args ...string) string {
	n.t.Helper()
	out, errOut, code := n.wisp(args...)
	if code != 0 {
		n.t.Fatalf("wisp %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// echoReply is what the test function answers.
type echoReply struct {
	Revision, Service, Message, Path, Host, Prefix, Proto, Trace, Test string
}

// call sends GET to the gateway, with a Host header when host is set,
// and returns the status and body.
func (n *node) call(host, path string) (int, string) {
	n.t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.Gateway+path, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("GET %s (Host %s): %v", path, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// callEcho calls the echo function and decodes its answer.
func (n *node) callEcho(host, path string) echoReply {
	n.t.Helper()
	code, body := n.call(host, path)
	if code != http.StatusOK {
		n.t.Fatalf("GET %s (Host %s): status %d: %s", path, host, code, body)
	}
	var r echoReply
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		n.t.Fatalf("decoding %q: %v", body, err)
	}
	return r
}

// eventually retries check until it returns "" or timeout passes, then
// fails with the last message.
func eventually(t testing.TB, timeout time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
