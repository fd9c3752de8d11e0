package main

import (
	"bufio"
	"io"
	"net/http"
	"testing"
	"time"
)

// The in-process transport answers with the handler's status and headers
// and streams what it writes before the handler returns.
func TestHandlerTransportStreams(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.Error(w, "no such thing", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		<-release
		io.WriteString(w, "second\n")
	})
	c := &http.Client{Transport: handlerTransport{h}}
	resp, err := c.Get("http://in-process/missing")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNotFound || string(b) != "no such thing\n" {
		t.Fatalf("got %d %q; want 404 and the handler's body", resp.StatusCode, b)
	}
	resp, err = c.Get("http://in-process/watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
		t.Fatalf("got %d %q", resp.StatusCode, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	got := make(chan string, 2)
	go func() {
		for sc.Scan() {
			got <- sc.Text()
		}
		close(got)
	}()
	select {
	case l := <-got:
		if l != "first" {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first line did not arrive while the handler was still running")
	}
	close(release)
	if l := <-got; l != "second" {
		t.Fatalf("second line %q", l)
	}
	if _, ok := <-got; ok {
		t.Fatal("the body did not end with the handler")
	}
}
