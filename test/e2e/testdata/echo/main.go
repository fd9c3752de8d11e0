// Command echo is the process function of the end-to-end tests. It
// answers every request with a JSON object of what it saw: its revision,
// MESSAGE from its environment, the request's path and host; and logs
// "served PATH" to stderr. START_DELAY (a Go duration) delays listening. With
// EXIT_AT_START set it writes that to stderr and exits 1 at once.
// FAIL_EVERY=N answers every Nth request 503. ?sleep=DURATION holds a
// request, /break makes this process answer 500 from then on, and /stats
// counts the requests it served and those that were mirror copies.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

func main() {
	if d, err := time.ParseDuration(os.Getenv("START_DELAY")); err == nil {
		time.Sleep(d)
	}
	if msg := os.Getenv("EXIT_AT_START"); msg != "" {
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
	// /upgrade switches protocols and echoes lines back: a stand-in for
	// WebSocket that tests the gateway's upgrade pass-through.
	http.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		rw.Flush()
		for {
			line, err := rw.ReadString('\n')
			if err != nil {
				return
			}
			fmt.Fprint(rw, "echo: "+line)
			rw.Flush()
		}
	})
	failEvery, _ := strconv.ParseInt(os.Getenv("FAIL_EVERY"), 10, 64)
	var served, shadow atomic.Int64
	var broken atomic.Bool
	http.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]int64{"served": served.Load(), "shadow": shadow.Load()})
	})
	http.HandleFunc("/break", func(w http.ResponseWriter, r *http.Request) { broken.Store(true) })
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		if strings.HasSuffix(r.Host, "-shadow") {
			shadow.Add(1)
		}
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		if broken.Load() || failEvery > 0 && n%failEvery == 0 {
			http.Error(w, "failing on purpose", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(os.Stderr, "served", r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"revision": os.Getenv("K_REVISION"),
			"service":  os.Getenv("K_SERVICE"),
			"message":  os.Getenv("MESSAGE"),
			"path":     r.URL.Path,
			"host":     r.Host,
			"prefix":   r.Header.Get("X-Forwarded-Prefix"),
			"proto":    r.Proto,
			"trace":    r.Header.Get("Traceparent"),
			"test":     r.Header.Get("X-Test"),
		})
	})
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
