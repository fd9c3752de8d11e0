// Command reactor is the http-ABI guest of the runtime/wasm tests: each
// path exercises one behaviour the host must handle.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wisp-faas/wisp/functions/sdk/go/wisp"
)

var (
	requests int      // counts the requests this instance served
	hoard    [][]byte // grows on /oom
)

type echo struct {
	Method  string      `json:"method"`
	URI     string      `json:"uri"`
	Path    string      `json:"path"`
	Query   string      `json:"query"`
	Host    string      `json:"host"`
	Remote  string      `json:"remote"`
	Proto   string      `json:"proto"`
	Header  http.Header `json:"header"`
	Body    string      `json:"body"`
	Length  int64       `json:"length"`
	Count   int         `json:"count"`
	Environ []string    `json:"environ"`
}

func init() {
	wisp.Handle(http.HandlerFunc(serve))
}

func serve(w http.ResponseWriter, r *http.Request) {
	requests++
	switch r.URL.Path {
	case "/panic":
		panic("boom")
	case "/loop":
		for {
		}
	case "/sleep":
		time.Sleep(time.Hour)
	case "/oom":
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	case "/exit":
		os.Exit(3)
	case "/log":
		fmt.Println("to stdout")
		fmt.Fprintln(os.Stderr, "to stderr")
		w.WriteHeader(http.StatusNoContent)
	case "/status":
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		io.WriteString(w, "status body")
	case "/sniff":
		io.WriteString(w, "<html><body>hi</body></html>")
	case "/file":
		b, err := os.ReadFile(r.URL.Query().Get("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(b)
	case "/write":
		err := os.WriteFile(r.URL.Query().Get("name"), []byte("written"), 0o644)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusCreated)
	default:
		body, _ := io.ReadAll(r.Body)
		e := echo{
			Method: r.Method, URI: r.RequestURI, Path: r.URL.Path, Query: r.URL.RawQuery,
			Host: r.Host, Remote: r.RemoteAddr, Proto: r.Proto, Header: r.Header,
			Body: string(body), Length: r.ContentLength, Count: requests,
		}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GODEBUG=") {
				e.Environ = append(e.Environ, kv)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(e)
	}
}

func main() {}
