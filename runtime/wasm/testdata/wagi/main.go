// Command wagi is the wagi-ABI guest of the runtime/wasm tests: a WASI
// command whose PATH_INFO selects what it prints.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	switch os.Getenv("PATH_INFO") {
	case "/status":
		fmt.Print("Status: 404 Not Found\nContent-Type: text/plain\nX-Extra: yes\n\nnot here")
	case "/redirect":
		fmt.Print("Location: /elsewhere\n\n")
	case "/redirect-status":
		fmt.Print("Status: 301 Moved\r\nLocation: /moved\r\n\r\n")
	case "/noheaders":
		fmt.Print("X-Only: this\n\nbody without content type")
	case "/noblank":
		fmt.Print("Content-Type: text/plain")
	case "/exit":
		fmt.Print("Content-Type: text/plain\n\npartial")
		os.Exit(3)
	case "/exit0":
		fmt.Print("Content-Type: text/plain\n\nbye")
		os.Exit(0)
	case "/loop":
		for {
		}
	case "/stderr":
		fmt.Fprintln(os.Stderr, "line one")
		fmt.Fprint(os.Stderr, "line two")
		fmt.Print("Content-Type: text/plain\n\nok")
	default:
		stdin, _ := io.ReadAll(os.Stdin)
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		fmt.Print("Content-Type: application/json\n\n")
		json.NewEncoder(os.Stdout).Encode(map[string]any{"args": os.Args, "env": env, "stdin": string(stdin)})
	}
}
