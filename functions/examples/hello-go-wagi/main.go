// Command hello-go-wagi is the example Wasm function for wisp's "wagi"
// ABI: a plain Go program, built as a WASI command, that reads the
// request from CGI environment variables and prints a CGI response.
//
//	GOOS=wasip1 GOARCH=wasm go build -o hello-go-wagi.wasm .
package main

import (
	"fmt"
	"net/url"
	"os"
)

func main() {
	q, _ := url.ParseQuery(os.Getenv("QUERY_STRING"))
	name := q.Get("name")
	if name == "" {
		name = "world"
	}
	fmt.Print("Content-Type: text/plain; charset=utf-8\n\n")
	fmt.Printf("Hello, %s! (revision %s, path %s)\n", name, os.Getenv("K_REVISION"), os.Getenv("PATH_INFO"))
}
