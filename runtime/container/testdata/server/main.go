// Command server is the program of the test image: an HTTP server on
// $PORT with endpoints that report what it sees inside its container.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	fmt.Println("server starting on port", port)
	fmt.Fprintln(os.Stderr, "server stderr works")

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		cwd, _ := os.Getwd()
		host, _ := os.Hostname()
		writeJSON(w, map[string]any{
			"env": env, "args": os.Args, "cwd": cwd, "hostname": host,
			"uid": os.Getuid(), "gid": os.Getgid(), "pid": os.Getpid(),
		})
	})
	// /write?path=P tries to create the file P.
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		err := os.WriteFile(r.URL.Query().Get("path"), []byte("x"), 0o644)
		if err != nil {
			fmt.Fprintln(w, "error:", err)
			return
		}
		fmt.Fprintln(w, "written")
	})
	// /read?path=P answers the content of the file P.
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		_, _ = w.Write(b)
	})
	// /pids lists the processes this server can see in /proc.
	mux.HandleFunc("/pids", func(w http.ResponseWriter, r *http.Request) {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var pids []string
		for _, e := range entries {
			if e.Name()[0] >= '0' && e.Name()[0] <= '9' {
				pids = append(pids, e.Name())
			}
		}
		writeJSON(w, pids)
	})
	// /unshare tries to make a user namespace.
	mux.HandleFunc("/unshare", func(w http.ResponseWriter, r *http.Request) {
		if err := syscall.Unshare(syscall.CLONE_NEWUSER); err != nil {
			fmt.Fprintln(w, "error:", err)
			return
		}
		fmt.Fprintln(w, "unshared")
	})
	mux.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(os.Stderr, "crash requested")
		os.Exit(1)
	})

	srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: mux}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		s := <-term
		if os.Getenv("IGNORE_SIGTERM") != "" {
			fmt.Println("ignoring", s)
			return
		}
		fmt.Println("shutting down on", s)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("server stopped")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
