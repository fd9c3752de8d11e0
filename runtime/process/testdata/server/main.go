// Command server is the HTTP server that the process runtime's tests
// start. It listens on 127.0.0.1:$PORT. Environment variables choose
// misbehaviours:
//
//	PID_FILE=f         write the PID to f first
//	EXIT_AT_START=msg  write "starting up" and msg to stderr and exit with status 3
//	FAIL_IF_EXISTS=f   as EXIT_AT_START, with the message "config is bad", while f exists
//	NEVER_LISTEN=1     never listen (sleep until killed)
//	UNHEALTHY=1        answer every request with 500
//	IGNORE_SIGTERM=1   ignore SIGTERM (otherwise it shuts down gracefully)
//	SPAWN_CHILD=f      start a sleeping child process and write its PID to f
//
// Paths:
//
//	/                     "ok"
//	/env                  the environment as a JSON object
//	/headers              the request's headers, and its Host, as a JSON object
//	/slow?sleep=d&gate=g  sleep for d, or until /release?gate=g, then answer
//	/release?gate=g       let the requests waiting on gate g go on
//	/active               how many /slow and /stream requests are in progress
//	/crash                write "crash requested" to stderr and exit 1
//	/stream?n=3&gate=g    n chunks, each flushed; after the first, wait for gate g
//	/print?stdout=a&stderr=b  write line a to stdout and line b to stderr
//	/healthz              "healthy"; records the K-Network-Probe header
//	/last-probe           that header
//
// A request waiting (sleep or gate) ends early when its client goes away.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if os.Getenv("SLEEPER") != "" { // the child of SPAWN_CHILD
		time.Sleep(time.Minute)
		return
	}
	if f := os.Getenv("PID_FILE"); f != "" {
		must(os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0o644))
	}
	if msg := os.Getenv("EXIT_AT_START"); msg != "" {
		fmt.Fprintln(os.Stderr, "starting up")
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(3)
	}
	if f := os.Getenv("FAIL_IF_EXISTS"); f != "" {
		if _, err := os.Stat(f); err == nil {
			fmt.Fprintln(os.Stderr, "config is bad")
			os.Exit(3)
		}
	}
	if f := os.Getenv("SPAWN_CHILD"); f != "" {
		cmd := exec.Command(os.Args[0])
		cmd.Env = []string{"SLEEPER=1"}
		must(cmd.Start())
		must(os.WriteFile(f, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644))
	}
	ignoreTerm := os.Getenv("IGNORE_SIGTERM") != ""
	if ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	if os.Getenv("NEVER_LISTEN") != "" {
		time.Sleep(time.Hour)
		return
	}

	var active atomic.Int64
	var lastProbe atomic.Value
	lastProbe.Store("")
	g := &gates{m: map[string]chan struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		writeJSON(w, env)
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		h := map[string]string{"Host": r.Host}
		for k := range r.Header {
			h[k] = strings.Join(r.Header.Values(k), ", ")
		}
		writeJSON(w, h)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		active.Add(1)
		defer active.Add(-1)
		if !g.wait(r) {
			return
		}
		fmt.Fprintln(w, "slept")
	})
	mux.HandleFunc("/release", func(w http.ResponseWriter, r *http.Request) {
		g.release(r.URL.Query().Get("gate"))
		fmt.Fprintln(w, "released")
	})
	mux.HandleFunc("/active", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, active.Load()) })
	mux.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(os.Stderr, "crash requested")
		os.Exit(1)
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		active.Add(1)
		defer active.Add(-1)
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		for k := range n {
			if k == 1 && !g.wait(r) {
				return
			}
			fmt.Fprintf(w, "chunk %d\n", k)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/print", func(w http.ResponseWriter, r *http.Request) {
		if s := r.URL.Query().Get("stdout"); s != "" {
			fmt.Fprintln(os.Stdout, s)
		}
		if s := r.URL.Query().Get("stderr"); s != "" {
			fmt.Fprintln(os.Stderr, s)
		}
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		lastProbe.Store(r.Header.Get("K-Network-Probe"))
		fmt.Fprintln(w, "healthy")
	})
	mux.HandleFunc("/last-probe", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, lastProbe.Load()) })

	var h http.Handler = mux
	if os.Getenv("UNHEALTHY") != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "unhealthy", 500) })
	}
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: h}
	shutdown := make(chan struct{})
	if !ignoreTerm {
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() {
			<-term
			fmt.Fprintln(os.Stderr, "SIGTERM: shutting down")
			_ = srv.Shutdown(context.Background())
			close(shutdown)
		}()
	}
	fmt.Println("listening on", srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	<-shutdown
}

// gates are named channels that requests wait on until released.
type gates struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

func (g *gates) get(name string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.m[name]
	if !ok {
		c = make(chan struct{})
		g.m[name] = c
	}
	return c
}

func (g *gates) release(name string) {
	c := g.get(name)
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-c:
	default:
		close(c)
	}
}

// wait waits for the request's sleep or gate, or for neither when it has
// none; it reports false if the client went away first.
func (g *gates) wait(r *http.Request) bool {
	var gate <-chan struct{}
	if name := r.URL.Query().Get("gate"); name != "" {
		gate = g.get(name)
	}
	var timer <-chan time.Time
	if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
		timer = time.After(d)
	} else if gate == nil {
		return true
	}
	select {
	case <-gate:
	case <-timer:
	case <-r.Context().Done():
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
