package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/wisp-faas/wisp/controller/admin"
	"github.com/wisp-faas/wisp/controller/store/kube"
	"github.com/wisp-faas/wisp/internal/adminclient"
)

// The CLI talks to one of two places: a node's admin API (--server, the
// node in --data-dir) or a Kubernetes cluster's API server (--kubeconfig,
// --context, $KUBECONFIG), as kn does. Against a cluster the same admin
// API handlers run inside the CLI on wisp's CRDs, so every command applies
// the same defaults and validation and answers with the same errors as a
// node would.

// useCluster decides where the CLI goes, in this order: the flags given
// (--server, or --kubeconfig/--context; both is an error), then
// $WISP_SERVER (a node), then $KUBECONFIG (a cluster), then the node of
// --data-dir.
func (g *globals) useCluster() (bool, error) {
	kubeFlags := g.kubeconfig != "" || g.kubeContext != ""
	switch {
	case kubeFlags && g.server != "":
		return false, errors.New("--server names a node and --kubeconfig/--context a cluster: give one of them")
	case kubeFlags:
		return true, nil
	case g.server != "", os.Getenv("WISP_SERVER") != "":
		return false, nil
	}
	return os.Getenv("KUBECONFIG") != "", nil
}

// clusterClient returns an admin API client whose calls are served in this
// process by admin handlers on the cluster's wisp CRDs. Without -n, the
// namespace is the kubeconfig context's, as with kubectl and kn.
func (g *globals) clusterClient() (*adminclient.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = g.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: g.kubeContext})
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("Kubernetes client configuration: %w (pass --kubeconfig FILE and --context NAME, or set KUBECONFIG)", err)
	}
	if !g.namespaceSet() {
		ns, _, err := cc.Namespace()
		if err != nil {
			return nil, fmt.Errorf("namespace of the kubeconfig context: %w (pass -n NAMESPACE)", err)
		}
		g.namespace = ns
	}
	// WaitReady polls; client-go's default of 5 requests/s would throttle it.
	rc.QPS, rc.Burst = 50, 100
	rc.UserAgent = "wisp-cli/" + version
	ctx, cancel := context.WithTimeout(context.Background(), g.requestTimeout)
	defer cancel()
	st, err := kube.New(ctx, rc, kube.Options{})
	if err != nil {
		return nil, err
	}
	token, err := admin.NewToken()
	if err != nil {
		return nil, err
	}
	srv := admin.New(admin.Options{
		Store: st,
		Token: token,
		Info:  admin.Info{Version: version, GatewayURL: g.gateway, AdminURL: rc.Host},
	})
	return &adminclient.Client{BaseURL: "http://in-process", Token: token, HTTP: &http.Client{Transport: handlerTransport{srv}}}, nil
}

// handlerTransport serves each request with an http.Handler in this
// process. The answer streams through a pipe, so watches and logs -f work
// as they do over a socket; closing the body ends the handler's writes.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, pw: pw, started: make(chan struct{})}
	go func() {
		defer func() {
			w.start(http.StatusOK)
			pw.Close()
		}()
		t.h.ServeHTTP(w, req)
	}()
	select {
	case <-w.started:
	case <-req.Context().Done():
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", w.code, http.StatusText(w.code)), StatusCode: w.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.sent, Body: pr, ContentLength: -1, Request: req,
	}, nil
}

// pipeWriter is the http.ResponseWriter of handlerTransport.
type pipeWriter struct {
	header  http.Header
	sent    http.Header
	code    int
	pw      *io.PipeWriter
	once    sync.Once
	started chan struct{}
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) start(code int) {
	w.once.Do(func() {
		w.code, w.sent = code, w.header.Clone()
		close(w.started)
	})
}

func (w *pipeWriter) WriteHeader(code int) { w.start(code) }

func (w *pipeWriter) Write(b []byte) (int, error) {
	w.start(http.StatusOK)
	return w.pw.Write(b)
}

// Flush is a no-op: every Write already reaches the reader.
func (w *pipeWriter) Flush() {}
