// Command grpcapp is a gRPC app for cutover's end-to-end tests: the test
// service of package grpctest and the standard health service on
// 127.0.0.1:$PORT, over HTTP/2 without TLS, as a grpc-go server listens.
// Its answers are prefixed with the content of the file VERSION in its
// working directory (the release directory). On SIGTERM or SIGINT it stops
// gracefully: it refuses new calls and waits for the open ones, up to 10
// seconds.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/grpctest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "grpcapp:", err)
		os.Exit(1)
	}
}

func run() error {
	port := os.Getenv("PORT")
	if port == "" {
		return fmt.Errorf("PORT is not set")
	}
	name := "dev"
	if b, err := os.ReadFile("VERSION"); err == nil {
		name = strings.TrimSpace(string(b))
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	gs, _ := grpctest.NewGRPCServer(&grpctest.Server{Name: name})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()
	fmt.Printf("grpcapp %s listening on %s\n", name, ln.Addr())
	select {
	case err := <-served:
		return err
	case s := <-sig:
		fmt.Printf("grpcapp %s: %v, stopping\n", name, s)
	}
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		gs.Stop()
	}
	return nil
}
