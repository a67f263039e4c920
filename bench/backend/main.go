// Command backend is the tiny application the cutover benchmark puts behind
// every proxy: it answers GET / with the 13 bytes "Hello, World!", GET /1m
// with 1 MiB, and POST /upload by reading the whole body and answering its
// size. Connections are kept alive. It listens on 127.0.0.1:$PORT (as an
// instance started by cutover does) or on -addr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// hello is the small GET body: 13 bytes.
var hello = []byte("Hello, World!")

// oneMiB is the download body, allocated once.
var oneMiB = make([]byte, 1<<20)

func main() {
	addr := flag.String("addr", "", "listen address; default 127.0.0.1:$PORT")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*addr, logger); err != nil {
		logger.Error("backend failed", "err", err)
		os.Exit(1)
	}
}

func run(addr string, logger *slog.Logger) error {
	if addr == "" {
		port := os.Getenv("PORT")
		if port == "" {
			return errors.New("neither -addr nor $PORT is set")
		}
		addr = "127.0.0.1:" + port
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           newHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("backend listening", "addr", ln.Addr().String(), "pid", os.Getpid())
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// newHandler returns the backend's routes.
func newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{"13"}
		w.Write(hello) //nolint:errcheck // a client that went away needs nothing more
	})
	mux.HandleFunc("GET /1m", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/octet-stream"}
		h["Content-Length"] = []string{strconv.Itoa(len(oneMiB))}
		w.Write(oneMiB) //nolint:errcheck // a client that went away needs nothing more
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header()["Content-Type"] = []string{"text/plain"}
		fmt.Fprintf(w, "%d\n", n)
	})
	return mux
}
