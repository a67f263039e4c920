// Command proxyprof runs cutover's reverse proxy (internal/proxy) in
// process, in front of one backend, with a CPU profile written by
// runtime/pprof. The daemon has no profiling endpoint; this program puts
// the same request path under load so `go tool pprof` can show where its
// time goes. The profile starts on SIGUSR1 (so that a warm-up can fill the
// connection pools first) or at once with -now, and ends on SIGINT or
// SIGTERM, when the profile is written and the program exits. With
// -tls-cert and -tls-key it serves HTTPS instead, through the TLS
// listener's server (internal/tlsfront: HTTP/2 or HTTP/1.1 by ALPN), so
// that HTTP/2's path can be profiled under h2load.
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
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/h1"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/tlsfront"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9005", "address the proxy serves on")
	backend := flag.String("backend", "127.0.0.1:9000", "backend host:port")
	profile := flag.String("cpuprofile", "cpu.pprof", "CPU profile written at exit")
	now := flag.Bool("now", false, "profile from the start instead of from SIGUSR1")
	certFile := flag.String("tls-cert", "", "PEM certificate: serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) as the TLS listener does")
	keyFile := flag.String("tls-key", "", "PEM key of -tls-cert")
	flag.StringVar(&tlsfront.DefaultHTTP2Server, "http2-server", tlsfront.DefaultHTTP2Server, "with -tls-cert: the HTTP/2 server, cutover or go")
	static := flag.Bool("static", false, "answer every request from the server itself (13 bytes, the backend's headers), without the proxy: the server's own ceiling")
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
	if err := run(ctx, start, *listen, *backend, *profile, *certFile, *keyFile, *static, logger); err != nil {
		logger.Error("proxyprof failed", "err", err)
		os.Exit(1)
	}
}

// run serves the proxy until ctx ends, profiling from the first value
// received on start until then.
// With certFile and keyFile it serves HTTPS through tlsfront, as the
// daemon's TLS listener. With static the servers answer by themselves
// (staticHandler) and the backend is not used.
func run(ctx context.Context, start <-chan os.Signal, listen, backend, profile, certFile, keyFile string, static bool, logger *slog.Logger) error {
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
	var h http.Handler = px
	if static {
		h = staticHandler{n: new(atomic.Uint64)}
	}
	newH1 := func() *h1.Server {
		s := px.NewServer(10*time.Second, 120*time.Second)
		s.Handler = h
		return s
	}
	var srv interface {
		Serve(net.Listener) error
		Shutdown(context.Context) error
	} = newH1()
	if certFile != "" || keyFile != "" {
		files, err := tlsfront.NewFileCerts([]tlsfront.FilePair{{
			App: "bench", Default: true, CertFile: certFile, KeyFile: keyFile,
			CertKey: "-tls-cert", KeyKey: "-tls-key",
		}}, logger)
		if err != nil {
			return err
		}
		srv = tlsfront.NewServer(tlsfront.Options{
			H1:      newH1(),
			Handler: h,
			Certs:   &tlsfront.Chain{Sources: []tlsfront.CertSource{files}},
		})
	}

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("proxyprof serving", "listen", ln.Addr().String(), "backend", backend, "pid", os.Getpid())

	var serveErr error
	profiling := false
	var created0 uint64
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
			created0 = goroutinesCreated()
			logger.Info("cpu profile started", "file", profile)
		case <-ctx.Done():
			break loop
		case serveErr = <-errc:
			break loop
		}
	}
	if profiling {
		pprof.StopCPUProfile()
		// Per request, with the load generator's count: HTTP/2's server
		// starts goroutines where HTTP/1.1's does not.
		logger.Info("cpu profile written", "file", profile, "goroutines_created", goroutinesCreated()-created0)
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

// staticHandler answers as bench/backend's "/" does, with the headers the
// proxy adds to it, from the server itself: what the server costs
// without the proxy's work and its upstream round trip.
// Its request ids differ from one answer to the next, as the proxy's.
type staticHandler struct{ n *atomic.Uint64 }

func (s staticHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain"}
	h["Content-Length"] = []string{"13"}
	h["X-Cutover-Release"] = []string{"bench"}
	h["X-Request-Id"] = []string{"8878290236d4-" + strconv.FormatUint(s.n.Add(1), 10)}
	_, _ = io.WriteString(w, "Hello, World!")
}

// goroutinesCreated returns how many goroutines the program has started.
func goroutinesCreated() uint64 {
	m := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(m)
	if m[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return m[0].Value.Uint64()
}
