package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/dashboard"
	"github.com/cutover/cutover/internal/datadir"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/fleet"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/supervisor"
	"github.com/cutover/cutover/internal/tcpproxy"
)

// unit is one app the daemon runs: the single-app view of the config for
// it (config.Config.ForUnit), its state database, its proxy (releases,
// weights, cookie, hold, drain, preview) and its deploy engine. A file in
// the single-app form gives one unit whose data is data_dir itself; the
// several-apps form one per [apps.NAME], each under <data_dir>/apps/NAME.
// Units share the daemon's listeners, through one proxy.Router that
// picks a unit's proxy by the request's Host, and its admin socket,
// through api.Apps.
type unit struct {
	name  string         // the app's name
	key   string         // its name for config.ForUnit: "" in the single-app form
	conf  config.Unit    // hosts, default, cookie
	cfg   *config.Config // the app's single-form view
	store *state.Store
	prob  stateProblem
	px    *proxy.Proxy
	tcp   *tcpproxy.Ports // its [[app.tcp]] ports; nil without any
	eng   *deploy.Engine
	// live is eng, for /metrics, which reads it from another goroutine
	// while resume may replace it (setEngine).
	live atomic.Pointer[deploy.Engine]
	// observe is the engine's deploy.Options.Observe.
	observe func(kind string, ev deploy.Event)
	// started is when px, and its traffic counters, started: every
	// engine over it reports it (deploy.Options.TrafficSince).
	started time.Time
}

// setEngine makes e the unit's engine.
func (u *unit) setEngine(e *deploy.Engine) {
	u.eng = e
	u.live.Store(e)
}

// openUnits opens the state of every app of cfg and builds its proxy. It
// does not start engines (newEngine). On error, what it opened is closed.
func openUnits(cfg *config.Config, log *slog.Logger, obs *observer, dash *dashboard.Hub) ([]*unit, error) {
	if err := formChanged(cfg); err != nil {
		return nil, err
	}
	var us []*unit
	fail := func(err error) ([]*unit, error) {
		closeUnits(us)
		return nil, err
	}
	for _, cu := range cfg.Units() {
		key := ""
		if cfg.MultiApp() {
			key = cu.Name
		}
		view, err := cfg.ForUnit(key)
		if err != nil {
			return fail(err)
		}
		if view.DataDir != cfg.DataDir {
			if err := datadir.Prepare(view.DataDir, log); err != nil {
				return fail(fmt.Errorf("app %s: %w", cu.Name, err))
			}
		}
		store, prob, err := openState(view.StatePath(), log)
		if err != nil {
			return fail(fmt.Errorf("app %s: %w", cu.Name, err))
		}
		u := &unit{name: cu.Name, key: key, conf: cu, cfg: view, store: store, prob: prob}
		u.px, u.started = newProxy(cfg, cu, log, obs.accessLogger()), time.Now()
		if len(view.App.TCP) > 0 {
			u.tcp = tcpproxy.New(tcpproxy.Options{Entries: view.App.TCP, Health: view.App.Health, HoldTimeout: cfg.Proxy.HoldTimeout.Duration,
				Logger: log.With("app", cu.Name)})
		}
		metricsObs, dashObs := obs.observe(cu.Name), dash.Observe(cu.Name)
		u.observe = func(kind string, ev deploy.Event) {
			metricsObs(kind, ev)
			dashObs(kind, ev)
		}
		us = append(us, u)
	}
	return us, nil
}

// newProxy builds the proxy of one app: [proxy] is shared, the cookie is
// the app's (config.Unit.Cookie).
func newProxy(cfg *config.Config, cu config.Unit, log *slog.Logger, access proxy.AccessLogger) *proxy.Proxy {
	return proxy.New(proxy.Options{
		App:                   cu.Name,
		HoldTimeout:           cfg.Proxy.HoldTimeout.Duration,
		ResponseHeaderTimeout: cfg.Proxy.ResponseHeaderTimeout.Duration,
		ClientBodyTimeout:     cfg.Proxy.ClientBodyTimeout.Duration,
		StreamRequestBodies:   !cfg.Proxy.RequestBuffering,
		RequestBufferMemory:   cfg.Proxy.RequestBufferMemory,
		MaxBufferedBody:       cfg.Proxy.RequestBufferMax,
		MaxRequestBody:        cfg.Proxy.MaxRequestBody,
		BodyTempDir:           filepath.Join(cfg.DataDir, "bodies"),
		TrustedProxies:        cfg.Proxy.TrustedPrefixes(),
		MaxRequestLineBytes:   cfg.Proxy.MaxRequestLine,
		MaxHeaderBytes:        cfg.Proxy.MaxHeaderBytes,
		Logger:                log,
		Sticky:                cfg.Proxy.Sticky,
		Cookie:                cu.Cookie,
		VersionHeader:         cfg.Proxy.VersionHeader,
		HideVersion:           cfg.Proxy.VersionHeader == "",
		AccessLog:             access,
	})
}

// newEngine starts the app's deploy engine (not yet recovered).
func (u *unit) newEngine(log *slog.Logger) (*deploy.Engine, error) {
	var tr deploy.Traffic = u.px
	var tcpStatus func() []tcpproxy.PortStatus
	if u.tcp != nil {
		tr = &tcpTraffic{Traffic: u.px, ports: u.tcp, log: log.With("component", "tcp", "app", u.name)}
		tcpStatus = u.tcp.Status
	}
	return deploy.New(deploy.Options{Config: u.cfg, App: u.key, Store: u.store, Proxy: tr, TCPStatus: tcpStatus, Logger: log,
		NewFleet: func(o deploy.FleetOptions) deploy.Fleet {
			return fleet.New(fleet.Options{Config: u.cfg, Store: u.store, Proxy: u.px, TCP: u.tcp, Releases: o.Releases, Logger: log,
				StateFailed: o.StateFailed, Note: o.Note})
		},
		Processes: supervisor.Groups{},
		StateNote: u.prob.note, Degraded: u.prob.degraded, Observe: u.observe, TrafficSince: u.started})
}

// routes is the router's table for units.
func routes(us []*unit) []proxy.Route {
	rs := make([]proxy.Route, len(us))
	for i, u := range us {
		rs[i] = proxy.Route{App: u.name, Hosts: u.conf.Hosts, Default: u.conf.Default, Proxy: u.px}
	}
	return rs
}

// apiServers is one admin API server per unit, by app name.
func apiServers(us []*unit, log *slog.Logger, onStop func()) map[string]*api.Server {
	m := make(map[string]*api.Server, len(us))
	for _, u := range us {
		m[u.name] = api.NewServer(u.eng, log, onStop)
	}
	return m
}

// closeEngines closes every unit's engine (instances keep running).
func closeEngines(us []*unit) {
	for _, u := range us {
		if u.eng != nil {
			u.eng.Close()
		}
	}
}

// closeUnits closes the state databases.
func closeUnits(us []*unit) {
	for _, u := range us {
		if u.store != nil {
			u.store.Close() //nolint:errcheck // closing at exit
		}
	}
}

// stopRemovedApps stops the instances of apps that have a directory under
// <data_dir>/apps but are no longer in the file (removed, then `cutover
// reload`): the daemon that served them handed over to this one, which
// does not route their hosts. Their data stays where it is: adding the
// app back finds its releases again.
func stopRemovedApps(ctx context.Context, cfg *config.Config, us []*unit, log *slog.Logger) {
	dir := filepath.Join(cfg.DataDir, "apps")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	known := map[string]bool{}
	for _, u := range us {
		known[u.name] = true
	}
	for _, ent := range ents {
		if !ent.IsDir() || known[ent.Name()] {
			continue
		}
		path := filepath.Join(dir, ent.Name(), "state.db")
		if _, err := os.Stat(path); err != nil {
			continue
		}
		store, err := state.Open(path)
		if err != nil {
			log.Warn("read the state of an app no longer in the config", "app", ent.Name(), "err", err)
			continue
		}
		rows, err := store.Instances(ctx)
		if err != nil {
			log.Warn("read the instances of an app no longer in the config", "app", ent.Name(), "err", err)
		}
		for _, in := range rows {
			err := supervisor.KillGroup(in.PID, in.StartTime, 10*time.Second)
			if err != nil && !errors.Is(err, supervisor.ErrGone) {
				log.Warn("stop an instance of an app no longer in the config", "app", ent.Name(), "instance", in.ID, "pid", in.PID, "err", err)
				continue
			}
			if err := store.DeleteInstance(ctx, in.ID); err != nil {
				log.Warn("forget an instance of an app no longer in the config", "app", ent.Name(), "instance", in.ID, "err", err)
			}
			log.Info("stopped an instance of an app no longer in the config; its data stays", "app", ent.Name(), "instance", in.ID, "pid", in.PID, "data", filepath.Join(dir, ent.Name()))
		}
		store.Close() //nolint:errcheck // read and cleaned
	}
}

// formChanged refuses a file whose form (one app, or several) is not the
// one the data dir was written by: the apps' data would be looked for in
// the wrong place, the instances recorded there left unsupervised.
func formChanged(cfg *config.Config) error {
	if cfg.MultiApp() {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "state.db")); err == nil {
			return fmt.Errorf("%s has several apps ([apps.NAME]), but %s holds the data of the single-app form (state.db, releases/): move it to %s first, with the daemon stopped (docs/config.md, \"Several apps\")",
				cfg.Path, cfg.DataDir, filepath.Join(cfg.DataDir, "apps", "NAME"))
		}
		return nil
	}
	if m, _ := filepath.Glob(filepath.Join(cfg.DataDir, "apps", "*", "state.db")); len(m) > 0 {
		return fmt.Errorf("%s has the single-app form ([app]), but %s holds the data of several apps (%s): go back to the [apps.NAME] form, or move one app's data up to %s first, with the daemon stopped",
			cfg.Path, cfg.DataDir, filepath.Join(cfg.DataDir, "apps"), cfg.DataDir)
	}
	return nil
}
