package e2e

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestExternalNATSKeepsTheState runs nodes against an external NATS
// server: state written through one node is there for the next one, even
// with another data dir.
func TestExternalNATSKeepsTheState(t *testing.T) {
	b := buildAll(t)
	url := startExternalNATS(t)

	n := startNode(t, b, t.TempDir(), "--nats-url", url)
	n.mustWisp("service", "create", "echo", "--exec", b.echo, "-e", "MESSAGE=external")
	n.stop()

	n = startNode(t, b, t.TempDir(), "--nats-url", url)
	if r := n.callEcho("echo.default."+n.Domain, "/"); r.Message != "external" || r.Revision != "echo-00001" {
		t.Fatalf("a node on another data dir does not serve the stored function: %+v", r)
	}
}

// startExternalNATS starts a NATS server with JetStream in its own
// process (testdata/natsserver, nats-server/v2) until the test ends and
// returns its URL.
func startExternalNATS(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "natsserver")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/natsserver").CombinedOutput(); err != nil {
		t.Fatalf("building natsserver: %v\n%s", err, out)
	}
	nats := exec.Command(bin, t.TempDir())
	stdout, err := nats.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := nats.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = nats.Process.Signal(syscall.SIGTERM)
		_ = nats.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the NATS URL: %v", err)
	}
	return strings.TrimSpace(line)
}
