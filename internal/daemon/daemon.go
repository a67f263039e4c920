// Package daemon wires one running `cutover serve` daemon: one unit per
// app of the config file (units.go: the app's config view, state
// database, proxy and deploy engine, whose fleet owns the supervisor), one
// proxy listener whose proxy.Router picks a unit's proxy by Host, and one
// admin API socket whose api.Apps picks a unit's API by ?app=. An app
// with TCP ports ([[app.tcp]]) has its tcpproxy.Ports in its unit, whose
// routing follows the HTTP weights through the engine's traffic seam
// (tcp.go). The
// single-app form is one unit, served as it always was. It owns start-up
// order and shutdown, and the daemon's half of an upgrade's handover — which
// is also how `cutover reload` adds and removes apps: the fresh daemon reads
// the file, and stops the instances of apps no longer in it.
//
// It also serves /metrics on [metrics] listen and writes the access log of
// [log] access (observe.go), both off by default; SIGUSR1 opens the access
// log again.
//
// Shutdown on SIGTERM/SIGINT leaves the app's instances running: they live
// in their own process groups and the next daemon re-adopts them (see
// deploy.Engine.Recover). `cutover stop` is the way to take the app down
// on purpose. Once it no longer accepts (after the handover, during an
// upgrade), a stopping daemon ends its websockets with a close frame,
// 1001 "going away" (proxy.Proxy.CloseWebsockets), so that browsers
// reconnect at once, to the next daemon if there is one; a websocket
// over HTTP/2 would otherwise hold the TLS server's Shutdown, as a stream
// in flight, until its deadline.
//
// Normally the daemon is the child of a keeper (package keeper), which
// holds the listening sockets and passes them with systemd's socket
// activation protocol (see inheritedListeners): a daemon restart, even
// after SIGKILL, then refuses no connection. Under a keeper the daemon
// takes daemon.lock only after it said "prepared", so that during an
// upgrade the new daemon can get ready while the old one still
// supervises; on "release" the old one stops supervising and deploying,
// refuses changing admin requests and unlocks, and proxies on until
// SIGTERM; on "resume" (the new one failed) it takes the lock back and
// recovers into its own proxy. On "stop" (the keeper stops, and the
// sockets, systemd's, outlive it) it releases the same way, says so, and
// proxies until the next daemon serves — it replaced the admin socket —
// then drains and exits (see successorServes).
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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/datadir"
	"github.com/cutover/cutover/internal/freeport"
	"github.com/cutover/cutover/internal/h1"
	"github.com/cutover/cutover/internal/keeper"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/supervisor"
	"github.com/cutover/cutover/internal/tlsfront"
)

// Options configure Run.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Ready, when set, is called once the proxy and the API listen.
	Ready func(proxyAddr string)
	// Keeper is the control link to the keeper that started this daemon
	// (see package keeper); nil when the daemon runs on its own.
	Keeper *keeper.Link
	// Version is told to the keeper, which shows it on upgrade.
	Version string
}

// Run serves until ctx is cancelled, a stop request arrives, or (under a
// keeper) the keeper is gone. Under a keeper, a start-up error is also
// told to the keeper, which shows it to whoever asked for the upgrade.
func Run(ctx context.Context, opts Options) error {
	err := run(ctx, opts)
	if err != nil && opts.Keeper != nil {
		opts.Keeper.Send(keeper.MsgFailed, err.Error()) //nolint:errcheck // the keeper sees the exit anyway
	}
	return err
}

func run(ctx context.Context, opts Options) error {
	cfg, log, link := opts.Config, opts.Logger, opts.Keeper
	if err := datadir.Prepare(cfg.DataDir, log); err != nil {
		return err
	}
	var unlock func()
	if link == nil {
		var err error
		if unlock, err = lockDataDir(cfg.DataDir); err != nil {
			return err
		}
	}
	// Under a keeper, daemon.lock is taken below, after "prepared": an
	// old daemon may hold it until it hands over. Until then nothing here
	// touches an instance or writes state.
	defer func() {
		if unlock != nil {
			unlock()
		}
	}()

	obs, err := openObserver(cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		octx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		obs.close(octx)
	}()
	dash, err := openDashboard(cfg, log)
	if err != nil {
		return err
	}
	defer dash.close(context.Background())
	units, err := openUnits(cfg, log, obs, dash.hub)
	if err != nil {
		return err
	}
	defer closeUnits(units)
	for _, u := range units {
		if why := supervisor.BootNiceProblem(u.cfg.App.BootNice); why != "" {
			log.Warn("instances boot at the daemon's priority: app.boot_nice has no effect: "+why,
				"app", u.name, "key", "app.boot_nice", "config", cfg.Path)
		}
		e, err := u.newEngine(log)
		if err != nil {
			closeEngines(units)
			return err
		}
		u.setEngine(e)
	}
	defer func() { closeEngines(units) }()
	files, err := fileCerts(cfg, units, log)
	if err != nil {
		return err
	}

	inherited, err := inheritedListeners(link != nil)
	if err != nil {
		return err
	}
	proxyLn := inherited["proxy"]
	if proxyLn != nil {
		log.Info("serving the proxy on a socket passed by the keeper or the service manager", "addr", proxyLn.Addr().String())
	} else if proxyLn, err = net.Listen("tcp", cfg.Proxy.Listen); err != nil {
		return fmt.Errorf("proxy listen on %s (proxy.listen in %s): %w", cfg.Proxy.Listen, cfg.Path, err)
	} else {
		warnEphemeral(log, proxyLn.Addr(), "proxy.listen", cfg.Path)
	}
	tlsLn := inherited["tls"]
	switch {
	case tlsLn != nil || cfg.Proxy.TLSListen == "":
	case link != nil:
		// As preview_listen below: the sockets are the keeper's.
		log.Warn("proxy.tls_listen was set after `cutover serve` started: restart `cutover serve` to listen on it",
			"addr", cfg.Proxy.TLSListen, "config", cfg.Path)
	default:
		if tlsLn, err = net.Listen("tcp", cfg.Proxy.TLSListen); err != nil {
			proxyLn.Close()
			return fmt.Errorf("TLS listen on %s (proxy.tls_listen in %s): %w", cfg.Proxy.TLSListen, cfg.Path, err)
		}
		warnEphemeral(log, tlsLn.Addr(), "proxy.tls_listen", cfg.Path)
	}
	closeLns := func() {
		proxyLn.Close()
		if tlsLn != nil {
			tlsLn.Close()
		}
	}
	chain := certChain(files)
	certs, acmeHosts, err := newACME(cfg, units, files, chain, proxyLn, tlsLn, log)
	if err != nil {
		closeLns()
		return fmt.Errorf("certificates from ACME ([tls] in %s): %w", cfg.Path, err)
	}
	if certs != nil {
		defer certs.Close()
	}
	ropts := proxy.RouterOptions{MaxRequestLineBytes: cfg.Proxy.MaxRequestLine, MaxHeaderBytes: cfg.Proxy.MaxHeaderBytes, Logger: log}
	if tlsLn != nil {
		ropts.Certs, ropts.HTTPSPort = chain, portOf(tlsLn.Addr())
		if cfg.Proxy.HTTPSPort != 0 {
			ropts.HTTPSPort = cfg.Proxy.HTTPSPort
		}
	}
	if certs != nil {
		ropts.Challenge = certs
	}
	router := proxy.NewRouter(ropts)
	if err := router.SetRoutes(withFrontDoor(cfg, routes(units), units)); err != nil {
		closeLns()
		return fmt.Errorf("route the apps of %s: %w", cfg.Path, err)
	}
	tcpLns, err := openTCP(units, inherited, link != nil, cfg.Path, log)
	if err != nil {
		closeLns()
		return err
	}
	tcpServing := false
	defer func() {
		if !tcpServing {
			closeTCPListeners(tcpLns)
		}
	}()
	if link != nil {
		if err := link.Send(keeper.MsgPrepared, opts.Version); err != nil {
			closeLns()
			return err
		}
		unlock, err = waitLock(ctx, cfg.DataDir, link.Messages())
		if err != nil {
			closeLns()
			if ctx.Err() != nil {
				// Stopped before it began (an upgrade refused by the
				// old daemon): nothing to report.
				return nil
			}
			return err
		}
	}
	for _, u := range units {
		if err := u.eng.Recover(ctx); err != nil {
			closeLns()
			return fmt.Errorf("app %s: %w", u.name, err)
		}
	}
	if cfg.MultiApp() {
		stopRemovedApps(ctx, cfg, units, log)
	}
	// The TCP ports take connections once the live release is routed:
	// until then they wait in the listeners' backlog.
	tcpServing = true
	for i, u := range units {
		if u.tcp == nil {
			continue
		}
		defer u.tcp.Close()
		if err := u.tcp.Serve(tcpLns[i]); err != nil {
			proxyLn.Close()
			return fmt.Errorf("app %s: %w", u.name, err)
		}
	}
	previewLn := inherited["preview"]
	switch {
	case previewLn != nil || cfg.Proxy.PreviewListen == "":
	case link != nil:
		// The sockets are the keeper's: one bound here would be held by
		// this daemon through a handover, and the next daemon could not
		// bind it (every later upgrade would fail), nor would it outlive a
		// crash of this one.
		log.Warn("proxy.preview_listen was set after `cutover serve` started: restart `cutover serve` to listen on it",
			"addr", cfg.Proxy.PreviewListen, "config", cfg.Path)
	default:
		if previewLn, err = net.Listen("tcp", cfg.Proxy.PreviewListen); err != nil {
			closeLns()
			return fmt.Errorf("preview listen on %s (proxy.preview_listen in %s): %w", cfg.Proxy.PreviewListen, cfg.Path, err)
		}
		warnEphemeral(log, previewLn.Addr(), "proxy.preview_listen", cfg.Path)
	}
	apiLn, err := listenUnix(cfg.SocketPath())
	if err != nil {
		closeLns()
		if previewLn != nil {
			previewLn.Close()
		}
		return err
	}
	// Closing a unix listener removes its path, which after an upgrade is
	// the new daemon's socket: remove it only if it is still ours.
	apiLn.(*net.UnixListener).SetUnlinkOnClose(false)
	apiFile, _ := os.Lstat(cfg.SocketPath()) //nolint:errcheck // nil: never removed at exit

	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	certsDone := make(chan struct{}) // closed when files.Run returned
	var stopOnce sync.Once
	var appStopped atomic.Bool // by `cutover stop`: then the instances are gone, not left running
	gate := &apiGate{}
	onStop := func() { appStopped.Store(true); stopOnce.Do(stop) }
	newAPI := func() http.Handler {
		a := api.NewApps(apiServers(units, log, onStop), onStop)
		a.Dashboard = dash.LoginURL
		if certs != nil {
			a.Certificates = func() []string {
				var lines []string
				for _, st := range certs.Status() {
					lines = append(lines, st.String())
				}
				return lines
			}
		}
		return a
	}
	gate.set(newAPI())
	apiSrv := &http.Server{Handler: gate, ReadHeaderTimeout: 10 * time.Second}
	proxySrv := router.NewServer(cfg.Proxy.ReadHeaderTimeout.Duration, cfg.Proxy.IdleTimeout.Duration)
	hand := newHandoff()
	hand.wrap(proxySrv)
	var tlsSrv *tlsfront.Server
	if tlsLn != nil {
		h1tls := router.NewServer(cfg.Proxy.ReadHeaderTimeout.Duration, cfg.Proxy.IdleTimeout.Duration)
		hand.wrap(h1tls)
		tlsSrv = tlsfront.NewServer(tlsfront.Options{H1: h1tls, Handler: router, Certs: chain, HTTP2Server: cfg.Proxy.HTTP2Server})
	}

	if certs != nil {
		// The listeners listen (so certmagic binds no challenge server
		// of its own) and answer the challenges once served, just below.
		// Manage returns once the stored certificates are loaded: under
		// a keeper the TLS socket is shared with the daemon serving now,
		// and a handshake this one took before would fail.
		certs.Manage(acmeHosts)
	}
	errc := make(chan error, 8) // one per server (proxy, tls, api, preview, metrics), with room: each sends once when it stops
	go func() { errc <- serve(proxySrv, proxyLn, "proxy") }()
	if tlsSrv != nil {
		go func() { errc <- serve(tlsSrv, tlsLn, "tls") }()
	}
	if files != nil {
		go func() {
			defer close(certsDone)
			files.Run(stopCtx, 0)
		}()
	} else {
		close(certsDone)
	}
	go func() { errc <- serve(apiSrv, apiLn, "api") }()
	var certList metrics.CertSource
	if tlsLn != nil && (files != nil || certs != nil) {
		certList = certExpiries{files: files, acme: certs}
	}
	obs.serveMetrics(units, certList, errc)
	dash.serve(units, cfg.Dashboard.Token)
	var previewSrv *h1.Server
	if previewLn != nil {
		// Only the single-app form has a preview listener (the config
		// refuses proxy.preview_listen with several apps).
		previewSrv = units[0].px.NewPreviewServer(cfg.Proxy.ReadHeaderTimeout.Duration, cfg.Proxy.IdleTimeout.Duration)
		go func() { errc <- serve(previewSrv, previewLn, "preview") }()
	}
	servers := []peakCounter{proxySrv}
	if previewSrv != nil {
		servers = append(servers, previewSrv)
	}
	if tlsSrv != nil {
		servers = append(servers, tlsSrv)
	}
	trimDone := make(chan struct{})
	go func() {
		defer close(trimDone)
		newTrimmer(servers...).run(stopCtx, log)
	}()
	names := make([]string, len(units))
	for i, u := range units {
		names[i] = u.name
	}
	serving := []any{"apps", strings.Join(names, ", "), "proxy", proxyLn.Addr().String()}
	if tlsLn != nil {
		serving = append(serving, "tls", tlsLn.Addr().String())
	}
	log.Info("cutover serving", append(serving, "api", cfg.SocketPath(), "daemon_pid", os.Getpid())...)
	if opts.Ready != nil {
		opts.Ready(proxyLn.Addr().String())
	}
	var msgs <-chan keeper.Msg
	if link != nil {
		if err := link.Send(keeper.MsgReady, ""); err != nil {
			log.Warn("tell the keeper ready", "err", err)
		}
		msgs = link.Messages()
	}

	var runErr error
	released := false    // a successor serves: the keeper's SIGTERM ends a handover
	handingOver := false // told "stop": the sockets outlive the keeper
loop:
	for {
		select {
		case <-stopCtx.Done():
			break loop
		case runErr = <-errc:
			break loop
		case m, ok := <-msgs:
			if !ok {
				log.Warn("the keeper is gone; stopping (instances keep running)")
				break loop
			}
			switch m.Word {
			case keeper.MsgStop:
				handingOver = !released
				break loop
			case keeper.MsgRelease:
				gate.closed.Store(true)
				if why := refuseRelease(units, gate); why != "" {
					gate.closed.Store(false)
					log.Info("upgrade refused", "why", why)
					link.Send(keeper.MsgRefused, why) //nolint:errcheck // EOF ends the loop
					continue
				}
				closeEngines(units)
				unlock()
				unlock = nil
				released = true
				// A client's keep-alive connection to this admin API
				// would keep reaching it, not the new daemon.
				apiSrv.SetKeepAlivesEnabled(false)
				log.Info("handed supervision over to a new daemon; proxying until told to stop")
				link.Send(keeper.MsgReleased, keeper.ReleasedArg(longestTCPDrain(units))) //nolint:errcheck // EOF ends the loop
			case keeper.MsgResume:
				if err := resume(ctx, cfg.DataDir, &unlock, units, log); err != nil {
					log.Error("resume after a failed upgrade", "err", err)
					link.Send(keeper.MsgFailed, err.Error()) //nolint:errcheck // exiting anyway
					runErr = err
					break loop
				}
				gate.set(newAPI())
				gate.closed.Store(false)
				apiSrv.SetKeepAlivesEnabled(true)
				released = false
				log.Info("the upgrade failed; supervising again")
				link.Send(keeper.MsgResumed, "") //nolint:errcheck // EOF ends the loop
			}
		}
	}
	// Stop accepting, let clients leave their keep-alive connections, then
	// finish the requests in flight and stop.
	lns := []net.Listener{proxyLn}
	if tlsLn != nil {
		lns = append(lns, tlsLn)
	}
	if released {
		// The successor accepts from the same sockets: stop accepting
		// before anything else and tell the keeper, which answers
		// `cutover upgrade` then — every connection opened after it
		// reaches the successor and the config it read.
		for _, ln := range lns {
			ln.Close() //nolint:errcheck // Serve returns; served connections go on
		}
		if previewLn != nil {
			previewLn.Close() //nolint:errcheck // likewise
		}
		for _, u := range units {
			if u.tcp != nil {
				u.tcp.StopAccepting()
			}
		}
		link.Send(keeper.MsgClosed, "") //nolint:errcheck // a keeper gone does not wait for it
	}
	if appStopped.Load() {
		log.Info("cutover shutting down after `cutover stop`: the app's instances are stopped; the next `cutover serve` starts the live release again")
	} else {
		log.Info("cutover shutting down; instances keep running for the next daemon")
	}
	stop()
	<-trimDone
	<-certsDone
	// When to stop accepting: at once after an upgrade's handover (the
	// new daemon accepts from the same socket); never before the end
	// when the socket closes with this daemon; and when the sockets
	// outlive the keeper (socket activation), once the next daemon
	// serves — this one stops supervising first, so that the keeper can
	// exit and the service manager start the next `cutover serve` now.
	var handover <-chan struct{}
	switch {
	case released:
		handover = closedChan()
	case handingOver && !appStopped.Load():
		gate.closed.Store(true)
		closeEngines(units)
		if unlock != nil {
			unlock()
			unlock = nil
		}
		apiSrv.SetKeepAlivesEnabled(false) // as on "release"
		log.Info("stopped supervising; proxying until the next daemon serves (instances keep running)", "for_at_most", successorWait)
		link.Send(keeper.MsgReleased, keeper.ReleasedArg(longestTCPDrain(units))) //nolint:errcheck // a keeper gone does not wait for it
		handover = successorServes(cfg.SocketPath(), apiFile, successorWait)
	}
	sctx, cancel := context.WithTimeout(context.Background(), successorWait+10*time.Second)
	defer cancel()
	// The TCP ports stop accepting at the handover too, and their open
	// connections get each port's drain_timeout from then, unbounded by
	// sctx (see shutdownTCP). With no successor (the sockets close with
	// this daemon) they are closed after the HTTP side, within sctx, as
	// before: nobody takes the port's next connections either.
	var tcpDone <-chan struct{}
	if handover != nil {
		tcpDone = shutdownTCP(context.Background(), units, handover, log)
	}
	hand.drain(sctx, lns, handoffGrace, handover)
	// Nothing new comes in: end the websockets now, with a close frame,
	// so that their clients reconnect (to the next daemon, if any) and a
	// websocket over HTTP/2 does not hold the TLS server's Shutdown.
	for _, u := range units {
		if n := u.px.CloseWebsockets(); n > 0 {
			log.Info("websockets closed with 1001 going away; their clients reconnect", "app", u.name, "count", n)
		}
	}
	if err := proxySrv.Shutdown(sctx); err != nil {
		log.Warn("proxy shutdown", "err", err)
	}
	if tlsSrv != nil {
		if err := tlsSrv.Shutdown(sctx); err != nil {
			log.Warn("TLS shutdown", "err", err)
		}
	}
	if previewSrv != nil {
		if err := previewSrv.Shutdown(sctx); err != nil {
			log.Warn("preview shutdown", "err", err)
		}
	}
	if tcpDone == nil {
		tcpDone = shutdownTCP(sctx, units, nil, log)
	}
	if err := apiSrv.Shutdown(sctx); err != nil {
		log.Warn("api shutdown", "err", err)
	}
	if sameFile(cfg.SocketPath(), apiFile) {
		os.Remove(cfg.SocketPath()) //nolint:errcheck // the next daemon replaces it anyway
	}
	<-tcpDone
	return runErr
}

// resume takes daemon.lock back after a handover that failed and recovers
// into a fresh engine over the same proxy, as a starting daemon would.
func resume(ctx context.Context, dir string, unlock *func(), units []*unit, log *slog.Logger) error {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u, err := waitLock(lctx, dir, nil)
	if err != nil {
		return err
	}
	*unlock = u
	for _, un := range units {
		e, err := un.newEngine(log)
		if err != nil {
			return fmt.Errorf("app %s: %w", un.name, err)
		}
		un.setEngine(e)
		if err := e.Recover(ctx); err != nil {
			return fmt.Errorf("app %s: %w", un.name, err)
		}
	}
	return nil
}

func serve(srv interface{ Serve(net.Listener) error }, ln net.Listener, name string) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", name, err)
	}
	return nil
}

// lockDataDir takes an exclusive flock on <data_dir>/daemon.lock so two
// daemons never drive the same app (see datadir.Lock).
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, "daemon.lock")
	unlock, err := datadir.Lock(path)
	var held *datadir.HeldError
	switch {
	case errors.As(err, &held):
		return nil, fmt.Errorf("another cutover daemon already serves %s (%w)", dir, err)
	case err != nil:
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	return unlock, nil
}

// listenUnix listens on the admin API's unix socket, owner only.
func listenUnix(path string) (net.Listener, error) {
	ln, err := datadir.ListenUnix(path)
	if err != nil {
		return nil, fmt.Errorf("admin API listen on %s: %w", path, err)
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
