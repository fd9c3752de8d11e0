// Command natsserver runs a standalone NATS server with JetStream for the
// end-to-end tests of `wisp serve --nats-url`. It prints its client URL on
// stdout and runs until SIGTERM.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/wisp-faas/wisp/controller/store"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: natsserver DATADIR")
		os.Exit(2)
	}
	srv, err := store.StartServer(store.ServerOptions{DataDir: os.Args[1], ListenAddr: "127.0.0.1:0"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(srv.ClientURL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	srv.Shutdown()
}
