package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/internal/accesslog"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/proxy"
)

// observer is what the daemon shows of itself beyond the admin API: the
// access log ([log] access) and /metrics ([metrics] listen). Both are off
// by default; a daemon with neither still counts finished deploys, for
// nothing, at no cost worth saying.
type observer struct {
	log     *slog.Logger
	access  *accesslog.Writer // nil = no access log
	deploys *metrics.Deploys
	ln      net.Listener // nil = no /metrics
	srv     *http.Server
	idle    time.Duration // proxy.idle_timeout: a scraper's idle connection is closed after it
	done    chan struct{} // closed when the USR1 loop ends
	stop    context.CancelFunc
}

// openObserver opens the access log and binds the metrics listener of
// cfg. The metrics socket is bound with SO_REUSEPORT: during an upgrade
// the new daemon binds it while the old one still holds it, and a scrape
// meanwhile reaches one or the other.
func openObserver(cfg *config.Config, log *slog.Logger) (*observer, error) {
	o := &observer{log: log, deploys: metrics.NewDeploys(), done: make(chan struct{}), idle: cfg.Proxy.IdleTimeout.Duration}
	if cfg.Log.Access != "" {
		f, err := accesslog.ParseFormat(cfg.Log.AccessFormat)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Path, err)
		}
		if o.access, err = accesslog.Open(cfg.Log.Access, f); err != nil {
			return nil, fmt.Errorf("%w (log.access in %s; make its directory, or change the path)", err, cfg.Path)
		}
	}
	if cfg.Metrics.Listen != "" {
		lc := net.ListenConfig{Control: reusePort}
		ln, err := lc.Listen(context.Background(), "tcp", cfg.Metrics.Listen)
		if err != nil {
			o.closeAccess()
			return nil, fmt.Errorf("metrics listen on %s (metrics.listen in %s): %w", cfg.Metrics.Listen, cfg.Path, err)
		}
		warnEphemeral(log, ln.Addr(), "metrics.listen", cfg.Path)
		o.ln = ln
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.stop = cancel
	go o.reopenOnUSR1(ctx)
	return o, nil
}

func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}

// accessLogger is the proxies' Options.AccessLog: nil when off (a nil
// *accesslog.Writer in the interface would not be nil).
func (o *observer) accessLogger() proxy.AccessLogger {
	if o.access == nil {
		return nil
	}
	return o.access
}

// observe is an app's deploy.Options.Observe.
func (o *observer) observe(app string) func(kind string, ev deploy.Event) {
	return o.deploys.Observer(app)
}

// serveMetrics serves /metrics on the metrics listener, if any, reading
// units' proxies and engines at each scrape, and certs (nil: none) for
// the certificates' expiry.
func (o *observer) serveMetrics(units []*unit, certs metrics.CertSource, errc chan<- error) {
	if o.ln == nil {
		return
	}
	apps := func() []metrics.App {
		as := make([]metrics.App, len(units))
		for i, u := range units {
			as[i] = metrics.App{Name: u.name, Proxy: u.px}
			if e := u.live.Load(); e != nil {
				as[i].Engine = e
			}
		}
		return as
	}
	var extra []prometheus.Collector
	if o.access != nil {
		extra = append(extra, metrics.AccessLogDropped(o.access))
	}
	extra = append(extra, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg := metrics.Registry(apps, o.deploys, certs, extra...)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(o.log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/metrics", http.StatusFound)
	})
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: o.idle}
	o.log.Info("serving metrics", "addr", "http://"+o.ln.Addr().String()+"/metrics")
	go func() { errc <- serve(o.srv, o.ln, "metrics") }()
}

// reopenOnUSR1 opens the access log file again on each SIGUSR1 (after
// logrotate renamed it). The signal is caught even without an access
// log: its default action would end the daemon.
func (o *observer) reopenOnUSR1(ctx context.Context) {
	defer close(o.done)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-usr1:
			if o.access == nil {
				o.log.Info("SIGUSR1: no access log to open again (log.access is not set)")
				continue
			}
			if err := o.access.Reopen(); err != nil {
				o.log.Error("SIGUSR1: open the access log again; writing on to the old file", "err", err)
				continue
			}
			o.log.Info("SIGUSR1: access log opened again")
		}
	}
}

// close stops /metrics and writes out the access log.
func (o *observer) close(ctx context.Context) {
	o.stop()
	<-o.done
	if o.srv != nil {
		if err := o.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			o.log.Warn("metrics shutdown", "err", err)
		}
	} else if o.ln != nil {
		o.ln.Close() //nolint:errcheck // never served
	}
	o.closeAccess()
}

func (o *observer) closeAccess() {
	if o.access != nil {
		o.access.Close() //nolint:errcheck // Close reports nothing
	}
}
