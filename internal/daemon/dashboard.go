package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/dashboard"
)

// dashboardServer serves the live dashboard ([dashboard] listen), or,
// with listen unset, on an ephemeral loopback port opened by the first
// `cutover dashboard` and kept until the daemon exits.
type dashboardServer struct {
	log *slog.Logger
	hub *dashboard.Hub
	h   *dashboard.Server
	// idle closes a keep-alive connection idle this long
	// (proxy.idle_timeout); an event stream is never idle.
	idle time.Duration

	mu  sync.Mutex
	ln  net.Listener // nil until served
	srv *http.Server
}

// openDashboard binds [dashboard] listen of cfg, if set, with
// SO_REUSEPORT like /metrics: during an upgrade the new daemon binds it
// while the old one still holds it.
func openDashboard(cfg *config.Config, log *slog.Logger) (*dashboardServer, error) {
	d := &dashboardServer{log: log, hub: dashboard.NewHub(), idle: cfg.Proxy.IdleTimeout.Duration}
	if cfg.Dashboard.Listen == "" {
		return d, nil
	}
	lc := net.ListenConfig{Control: reusePort}
	ln, err := lc.Listen(context.Background(), "tcp", cfg.Dashboard.Listen)
	if err != nil {
		return nil, fmt.Errorf("dashboard listen on %s (dashboard.listen in %s): %w", cfg.Dashboard.Listen, cfg.Path, err)
	}
	warnEphemeral(log, ln.Addr(), "dashboard.listen", cfg.Path)
	d.ln = ln
	return d, nil
}

// serve starts serving units' dashboard on the configured listener, if
// any. token is [dashboard] token.
func (d *dashboardServer) serve(units []*unit, token string) {
	apps := func() []dashboard.App {
		as := make([]dashboard.App, len(units))
		for i, u := range units {
			as[i] = dashboard.App{Name: u.name, Proxy: u.px}
			if e := u.live.Load(); e != nil {
				as[i].Engine = e
			}
		}
		return as
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.h = dashboard.New(apps, d.hub, token, d.log)
	if d.ln != nil {
		d.startLocked()
	}
}

func (d *dashboardServer) startLocked() {
	d.srv = &http.Server{Handler: d.h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: d.idle}
	d.log.Info("serving the dashboard", "addr", "http://"+d.ln.Addr().String()+"/")
	srv, ln := d.srv, d.ln
	go func() {
		if err := serve(srv, ln, "dashboard"); err != nil {
			d.log.Error("dashboard stopped", "err", err)
		}
	}()
}

// LoginURL mints a one-time token and returns the URL that logs a
// browser in with it, opening an ephemeral loopback listener first when
// [dashboard] listen is not set.
func (d *dashboardServer) LoginURL() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.h == nil {
		return "", errors.New("the daemon is still starting: try again in a moment")
	}
	if d.ln == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("open a loopback port for the dashboard: %w", err)
		}
		d.ln = ln
		d.startLocked()
	}
	host := d.ln.Addr().String()
	if ta, ok := d.ln.Addr().(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		host = net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port))
	}
	return "http://" + host + "/?token=" + d.h.Mint(), nil
}

// close stops the dashboard; open event streams end.
func (d *dashboardServer) close(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.srv != nil {
		d.srv.Close() //nolint:errcheck // streams are long-lived: Shutdown would wait for them
	} else if d.ln != nil {
		d.ln.Close() //nolint:errcheck // never served
	}
}
