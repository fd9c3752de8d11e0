// Command eventsink is the event-consuming process function of the
// end-to-end tests. Every request it serves is reported to COLLECT_URL
// (the test's collector) as a POST of "<ce-id> <ce-type>" before it
// answers 200 with the request body, so the test sees each delivery.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

func main() {
	collect := os.Getenv("COLLECT_URL")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		line := r.Header.Get("Ce-Id") + " " + r.Header.Get("Ce-Type")
		resp, err := http.Post(collect, "text/plain", strings.NewReader(line))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
