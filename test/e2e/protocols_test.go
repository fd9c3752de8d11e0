package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGatewayProtocols: HTTP/2 without TLS (h2c), an Upgrade passed
// through to a process function, and HTTPS with HTTP/2.
func TestGatewayProtocols(t *testing.T) {
	b := buildAll(t)
	n := startNode(t, b, t.TempDir())
	n.mustWisp("service", "create", "echo", "--exec", b.echo)

	h2c := &http.Client{Transport: &http.Transport{Protocols: new(http.Protocols)}}
	h2c.Transport.(*http.Transport).Protocols.SetUnencryptedHTTP2(true)
	resp, err := h2c.Get(n.Gateway + "/fn/default/echo/x")
	if err != nil {
		t.Fatal(err)
	}
	var r echoReply
	_ = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || r.Path != "/x" {
		t.Fatalf("h2c: %s, function saw %+v", resp.Proto, r)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(n.Gateway, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("GET /fn/default/echo/upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, "101") {
		t.Fatalf("upgrade answered %q, %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	for _, msg := range []string{"ping\n", "pong\n"} {
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got, err := br.ReadString('\n')
		if err != nil || got != "echo: "+msg {
			t.Fatalf("upgraded stream echoed %q, %v", got, err)
		}
	}

	// HTTPS with HTTP/2, from a certificate made here.
	cert, key := selfSigned(t)
	tn := startNode(t, b, t.TempDir(), "--tls-cert", cert, "--tls-key", key)
	tn.mustWisp("service", "create", "echo", "--exec", b.echo)
	if !strings.HasPrefix(tn.Gateway, "https://") {
		t.Fatalf("gateway URL %q is not https", tn.Gateway)
	}
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	resp, err = tlsClient.Get(tn.Gateway + "/fn/default/echo/secure")
	if err != nil {
		t.Fatal(err)
	}
	r = echoReply{}
	_ = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || r.Path != "/secure" {
		t.Fatalf("https: %s, function saw %+v", resp.Proto, r)
	}

	// Triggers deliver through the HTTPS gateway too.
	tn.mustWisp("trigger", "create", "secure", "--subject", "secure.>", "--sink", "fn:echo", "--create-stream")
	tn.mustWisp("event", "send", "secure.one", "--type", "t", "--source", "/s", "--data", "{}", "-k")
	eventually(t, 20*time.Second, func() string {
		var tr struct {
			Status struct {
				Delivered int64
				LastError string
			}
		}
		_ = json.Unmarshal([]byte(tn.mustWisp("trigger", "describe", "secure", "-o", "json")), &tr)
		if tr.Status.Delivered != 1 {
			return fmt.Sprintf("the event was not delivered over HTTPS: %+v", tr.Status)
		}
		return ""
	})
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (string, string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "wisp test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestTraceparentAndAccessLog: the function sees the caller's W3C
// traceparent, or one the gateway made, and the access log line carries
// the same trace id.
func TestTraceparentAndAccessLog(t *testing.T) {
	b := buildAll(t)
	n := startNode(t, b, t.TempDir(), "--access-log")
	n.mustWisp("service", "create", "echo", "--exec", b.echo)

	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, _ := http.NewRequest("GET", n.Gateway+"/fn/default/echo/traced", nil)
	req.Header.Set("traceparent", tp)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var r echoReply
	_ = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if r.Trace != tp {
		t.Fatalf("function saw traceparent %q, want the caller's", r.Trace)
	}
	made := n.callEcho("", "/fn/default/echo/untraced").Trace
	if len(made) != 55 || !strings.HasPrefix(made, "00-") {
		t.Fatalf("function saw %q, want a traceparent made by the gateway", made)
	}
	eventually(t, 5*time.Second, func() string {
		log := n.log.String()
		if !strings.Contains(log, "trace_id=4bf92f3577b34da6a3ce929d0e0e4736") || !strings.Contains(log, "trace_id="+made[3:35]) ||
			!strings.Contains(log, "path=/fn/default/echo/traced") {
			return "access log lines missing or without trace ids"
		}
		return ""
	})
}
