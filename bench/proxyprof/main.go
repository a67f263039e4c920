// Command proxyprof runs cutover's reverse proxy (internal/proxy) in
// process, in front of one backend, with a CPU profile written by
// runtime/pprof. The daemon has no profiling endpoint; this program puts
// the same request path under load so `go tool pprof` can show where its
// time goes. The profile starts on SIGUSR1 (so that a warm-up can fill the
// connection pools first) or at once with -now, and ends on SIGINT or
// SIGTERM, when the profile is written and the program exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9005", "address the proxy serves on")
	backend := flag.String("backend", "127.0.0.1:9000", "backend host:port")
	profile := flag.String("cpuprofile", "cpu.pprof", "CPU profile written at exit")
	now := flag.Bool("now", false, "profile from the start instead of from SIGUSR1")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := make(chan os.Signal, 1)
	if *now {
		start <- syscall.SIGUSR1
	} else {
		signal.Notify(start, syscall.SIGUSR1)
	}
	if err := run(ctx, start, *listen, *backend, *profile, logger); err != nil {
		logger.Error("proxyprof failed", "err", err)
		os.Exit(1)
	}
}

// run serves the proxy until ctx ends, profiling from the first value
// received on start until then.
func run(ctx context.Context, start <-chan os.Signal, listen, backend, profile string, logger *slog.Logger) error {
	f, err := os.Create(profile)
	if err != nil {
		return fmt.Errorf("create profile: %w", err)
	}
	defer f.Close()

	// The daemon's settings: see internal/daemon.
	px := proxy.New(proxy.Options{App: "bench", Logger: logger})
	b := px.AddBackend(proxy.BackendSpec{ID: "bench-1", Release: "bench", Addr: backend})
	b.SetHealthy(true)
	px.SetActive("bench")
	srv := px.NewServer(10*time.Second, 120*time.Second)

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("proxyprof serving", "listen", ln.Addr().String(), "backend", backend, "pid", os.Getpid())

	var serveErr error
	profiling := false
loop:
	for {
		select {
		case <-start:
			if profiling {
				continue
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				serveErr = fmt.Errorf("start cpu profile: %w", err)
				break loop
			}
			profiling = true
			logger.Info("cpu profile started", "file", profile)
		case <-ctx.Done():
			break loop
		case serveErr = <-errc:
			break loop
		}
	}
	if profiling {
		pprof.StopCPUProfile()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("shutdown", "err", err)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	if !profiling {
		return errors.New("no profile: SIGUSR1 never arrived")
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write profile: %w", err)
	}
	return nil
}
