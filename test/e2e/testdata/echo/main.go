// Command echo is the process function of the end-to-end tests. It
// answers every request with a JSON object of what it saw: its revision,
// MESSAGE from its environment, the request's path and host; and logs
// "served PATH" to stderr. START_DELAY (a Go duration) delays listening. With
// EXIT_AT_START set it writes that to stderr and exits 1 at once.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
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
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
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
		})
	})
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
