// Package daemon wires one running `cutover serve`: the state database, the
// proxy listener, the deploy engine (which owns the supervisor) and the
// admin API socket. It owns start-up order and shutdown.
//
// Shutdown on SIGTERM/SIGINT leaves the app's instances running: they live
// in their own process groups and the next daemon re-adopts them (see
// deploy.Engine.Recover), so a daemon restart — even after SIGKILL — costs
// the app no more than the moments the proxy listener is closed; with
// systemd socket activation (see inheritedListeners) not even that. `cutover
// stop` is the way to take the app down on purpose.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/datadir"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/freeport"
	"github.com/cutover/cutover/internal/h1"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/supervisor"
)

// Options configure Run.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Ready, when set, is called once the proxy and the API listen.
	Ready func(proxyAddr string)
}

// Run serves until ctx is cancelled or a stop request arrives.
func Run(ctx context.Context, opts Options) error {
	cfg, log := opts.Config, opts.Logger
	if err := datadir.Prepare(cfg.DataDir, log); err != nil {
		return err
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()

	store, err := state.Open(cfg.StatePath())
	if err != nil {
		return err
	}
	defer store.Close()

	px := proxy.New(proxy.Options{
		App:                   cfg.App.Name,
		HoldTimeout:           cfg.Proxy.HoldTimeout.Duration,
		ResponseHeaderTimeout: cfg.Proxy.ResponseHeaderTimeout.Duration,
		Logger:                log,
		Sticky:                cfg.Proxy.Sticky,
		Cookie:                cfg.Proxy.Cookie,
		VersionHeader:         cfg.Proxy.VersionHeader,
	})
	if why := supervisor.BootNiceProblem(cfg.App.BootNice); why != "" {
		log.Warn("instances boot at the daemon's priority: app.boot_nice has no effect: "+why,
			"key", "app.boot_nice", "config", cfg.Path)
	}
	eng, err := deploy.New(deploy.Options{Config: cfg, Store: store, Proxy: px, Logger: log})
	if err != nil {
		return err
	}
	defer eng.Close()

	inherited, err := inheritedListeners()
	if err != nil {
		return err
	}
	proxyLn := inherited["proxy"]
	if proxyLn != nil {
		log.Info("serving the proxy on a socket passed by the service manager", "addr", proxyLn.Addr().String())
	} else if proxyLn, err = net.Listen("tcp", cfg.Proxy.Listen); err != nil {
		return fmt.Errorf("proxy listen on %s (proxy.listen in %s): %w", cfg.Proxy.Listen, cfg.Path, err)
	} else {
		warnEphemeral(log, proxyLn.Addr(), "proxy.listen", cfg.Path)
	}
	if err := eng.Recover(ctx); err != nil {
		proxyLn.Close()
		return err
	}
	previewLn := inherited["preview"]
	if previewLn == nil && cfg.Proxy.PreviewListen != "" {
		if previewLn, err = net.Listen("tcp", cfg.Proxy.PreviewListen); err != nil {
			proxyLn.Close()
			return fmt.Errorf("preview listen on %s (proxy.preview_listen in %s): %w", cfg.Proxy.PreviewListen, cfg.Path, err)
		}
		warnEphemeral(log, previewLn.Addr(), "proxy.preview_listen", cfg.Path)
	}
	apiLn, err := listenUnix(cfg.SocketPath())
	if err != nil {
		proxyLn.Close()
		if previewLn != nil {
			previewLn.Close()
		}
		return err
	}

	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	var stopOnce sync.Once
	var appStopped atomic.Bool // by `cutover stop`: then the instances are gone, not left running
	apiSrv := &http.Server{Handler: api.NewServer(eng, store, log, func() { appStopped.Store(true); stopOnce.Do(stop) }), ReadHeaderTimeout: 10 * time.Second}
	proxySrv := px.NewServer(cfg.Proxy.ReadHeaderTimeout.Duration, cfg.Proxy.IdleTimeout.Duration)
	hand := newHandoff()
	hand.wrap(proxySrv)

	errc := make(chan error, 3)
	go func() { errc <- serve(proxySrv, proxyLn, "proxy") }()
	go func() { errc <- serve(apiSrv, apiLn, "api") }()
	var previewSrv *h1.Server
	if previewLn != nil {
		previewSrv = px.NewPreviewServer(cfg.Proxy.ReadHeaderTimeout.Duration, cfg.Proxy.IdleTimeout.Duration)
		go func() { errc <- serve(previewSrv, previewLn, "preview") }()
	}
	servers := []peakCounter{proxySrv}
	if previewSrv != nil {
		servers = append(servers, previewSrv)
	}
	trimDone := make(chan struct{})
	go func() {
		defer close(trimDone)
		newTrimmer(servers...).run(stopCtx, log)
	}()
	log.Info("cutover serving", "app", cfg.App.Name, "proxy", proxyLn.Addr().String(), "api", cfg.SocketPath())
	if opts.Ready != nil {
		opts.Ready(proxyLn.Addr().String())
	}

	var runErr error
	select {
	case <-stopCtx.Done():
	case runErr = <-errc:
	}
	if appStopped.Load() {
		log.Info("cutover shutting down after `cutover stop`: the app's instances are stopped; the next `cutover serve` starts the live release again")
	} else {
		log.Info("cutover shutting down; instances keep running for the next daemon")
	}
	stop()
	<-trimDone
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Stop accepting, let clients leave their keep-alive connections, then
	// finish the requests in flight and stop.
	hand.drain(sctx, proxyLn, handoffGrace)
	if err := proxySrv.Shutdown(sctx); err != nil {
		log.Warn("proxy shutdown", "err", err)
	}
	if previewSrv != nil {
		if err := previewSrv.Shutdown(sctx); err != nil {
			log.Warn("preview shutdown", "err", err)
		}
	}
	if err := apiSrv.Shutdown(sctx); err != nil {
		log.Warn("api shutdown", "err", err)
	}
	os.Remove(cfg.SocketPath()) //nolint:errcheck // the next daemon replaces it anyway
	return runErr
}

func serve(srv interface{ Serve(net.Listener) error }, ln net.Listener, name string) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", name, err)
	}
	return nil
}

// lockDataDir takes an exclusive flock on <data_dir>/daemon.lock so two
// daemons never drive the same app. The kernel drops it when the process
// dies, however it dies.
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, "daemon.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another cutover daemon already serves %s (lock %s held)", dir, path)
	}
	f.Truncate(0)                       //nolint:errcheck // the pid is informative only
	fmt.Fprintf(f, "%d\n", os.Getpid()) //nolint:errcheck // informative only
	return func() { f.Close() }, nil
}

// listenUnix listens on a unix socket readable by the owner only. A stale
// socket left by a killed daemon is removed (the data dir lock proves no
// daemon uses it).
func listenUnix(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("admin API listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin API socket %s: %w", path, err)
	}
	return ln, nil
}

// warnEphemeral warns when a port the daemon listens on lies in the
// kernel's ephemeral range: while the daemon restarts, an outgoing
// connection can be given that port and the next daemon cannot listen.
func warnEphemeral(log *slog.Logger, addr net.Addr, key, path string) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return
	}
	if lo, hi := freeport.EphemeralRange(); ta.Port >= lo && ta.Port <= hi {
		log.Warn("listen port inside the kernel's ephemeral port range: while the daemon restarts, an outgoing connection can take it and the daemon cannot listen again; choose a port below the range",
			"key", key, "port", ta.Port, "range", fmt.Sprintf("%d-%d", lo, hi), "config", path)
	}
}
