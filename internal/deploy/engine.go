// Package deploy is the only package that drives the others: it runs the
// deploy state machine (lock → prepare → boot → switch → drain → finish),
// rollbacks, and the daemon's recovery at start. Every step is recorded in
// state, so a daemon that dies mid-deploy restarts into a consistent world:
// the release recorded as live keeps (or gets back) its instances, anything
// else is stopped.
//
// The operator's actions (promote, abort, pause, resume) go to one place
// per run, its control (control.go): Control decides each against the
// step the run is in, by one table (controlTable), and the steps consult
// the same state when they enter, wait or boot. Every action is honoured
// or refused with a reason, in every step.
//
// # Seams
//
// The always-on instances belong to package fleet (one Fleet per app:
// processes, proxy backends, health checks, crash and hang restarts,
// recovery of instances at start, their state rows, log paths, drain
// notices, status). What stays here is the deploy: the plan of steps
// (deploy.go, shift.go, held.go), the control table (control.go), runs
// and their events, migrations and the release phase, prepare, rollback
// targets, retention, and Recover's deploy-side part (interrupted
// deploys, commands left running, release rows rebuilt from disk).
//
// The engine drives the rest of the daemon through small interfaces
// declared here, where they are used (seams.go), so that the state
// machine can be tested with fakes and a shared store can later back them
// for several hosts:
//
//   - Journal (state; *state.Store): BeginDeploy, SetDeployRelease,
//     AddStep, FinishDeploy, InterruptRunning, Deploys, Active,
//     SetActive, Release, Releases, LastRetired, PutRelease,
//     SetReleaseStatus, SetReleaseMeta;
//   - Traffic (the proxy; *proxy.Proxy): SetActive, Active, SetWeights,
//     Weights, SetPreview, Hold, WaitRequests, Unhold, FailHold, Drain,
//     Window, Stats — in the types of package traffic;
//   - Fleet (the instances; *fleet.Fleet, made by Options.NewFleet):
//     Start (boot one instance), Stop, StopAll, Of, AllBut, Drain,
//     AnnounceDrain, ClearDrain, Find, Recover and StartMissing (at
//     start), Flush, Status, TrimLogs, Close — each instance an
//     instance.Handle;
//   - Processes (supervisor.Groups): the process groups of commands a
//     previous daemon left running.
//
// `go list -deps ./internal/deploy` names neither the proxy, the
// supervisor nor the fleet (TestSeamsKeepDeployOffTheProxyAndSupervisor).
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/datadir"
	"github.com/cutover/cutover/internal/instance"
	"github.com/cutover/cutover/internal/release"
	"github.com/cutover/cutover/internal/tcpproxy"
)

// Options configure an Engine.
type Options struct {
	// Config is the app's configuration as loaded at start: the single-app
	// view of the file (config.Config.ForUnit) for the app this engine
	// runs. Each deploy reads Config.Path once, as it starts, takes the
	// view of App from it, and runs with that to its end, so that changes
	// to the file apply to the next deploy.
	Config *config.Config
	// App names the app in a file with several apps (config.Unit); "" for
	// the single-app form.
	App string
	// Store records deploys and releases (*state.Store).
	Store Journal
	// Proxy routes the requests (*proxy.Proxy).
	Proxy Traffic
	// TCPStatus, when set, reports the app's TCP ports ([[app.tcp]]) for
	// Status.
	TCPStatus func() []tcpproxy.PortStatus
	// NewFleet returns the app's fleet (a *fleet.Fleet), wired to what
	// the engine gives it.
	NewFleet func(FleetOptions) Fleet
	// Processes stops the commands a previous daemon left running
	// (supervisor.Groups).
	Processes Processes
	Logger    *slog.Logger
	// StateNote, when set, says what the daemon had to do to open its
	// state database (a damaged file moved aside); Recover logs it and
	// Status shows it until the next deploy succeeds.
	StateNote string
	// Degraded, when set, is why this engine refuses every deploy (the
	// state database could not be opened); Status shows it.
	Degraded string
	// Observe, when set, is given every event of every run, with the
	// run's kind ("deploy" or "rollback"), as it happens (for metrics).
	// It must not block.
	Observe func(kind string, ev Event)
	// TrafficSince is when Proxy's counters started (Status.TrafficSince).
	// Zero: now. An engine that replaces another over the same proxy (a
	// resume after a failed upgrade) gives the first one's: the counters
	// went on.
	TrafficSince time.Time
}

// Engine runs deploys for one app. Create it with New, call Recover once,
// then Deploy/Rollback as asked; Close at daemon shutdown leaves instances
// running for the next daemon.
type Engine struct {
	log   *slog.Logger
	store Journal
	rel   *release.Manager
	fleet Fleet // the app's instances
	px    Traffic
	procs Processes
	// tcpStatus reports the app's TCP ports; nil without any.
	tcpStatus func() []tcpproxy.PortStatus
	// started is when the traffic counters it reports started
	// (Options.TrafficSince): Status.TrafficSince.
	started time.Time
	// observe is Options.Observe.
	observe func(kind string, ev Event)

	app    string          // Options.App
	ctx    context.Context // the engine's lifetime; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // runs, the state flusher: Close waits

	deployMu sync.Mutex // held by the one running deploy

	// bootReportEvery is how often a boot reports each instance that is
	// not healthy yet, with its latest health check: a boot_timeout of a
	// minute is not to be waited out in silence. Tests shorten it.
	bootReportEvery time.Duration
	// digestKey keys the digests of release metadata (datadir.DigestKey).
	digestKey []byte
	// during is what a held switch runs between the old release's stop
	// and the new one's boot (Run.during): nil today; the release phase
	// of a held deploy will set it, and tests do.
	during func(ctx context.Context) (string, error)

	mu       sync.Mutex // guards the fields below
	cfg      *config.Config
	progress *Progress // the running deploy, nil when idle
	current  *Run      // the running deploy, nil when idle
	closed   bool
	rec      recovery // what Recover rebuilt, and what still cannot be written
}

// New returns an Engine. It creates the app's fleet; instances are started
// or adopted by Recover and deploys.
func New(opts Options) (*Engine, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.NewFleet == nil || opts.Processes == nil {
		return nil, errors.New("deploy.New: Options.NewFleet and Options.Processes are required")
	}
	rel, err := release.NewManager(opts.Config.DataDir)
	if err != nil {
		return nil, err
	}
	key, err := datadir.DigestKey(opts.Config.DataDir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		log:       log.With("component", "deploy", "app", opts.Config.App.Name),
		store:     opts.Store,
		rel:       rel,
		px:        opts.Proxy,
		tcpStatus: opts.TCPStatus,
		started:   trafficSince(opts.TrafficSince),
		procs:     opts.Processes,
		app:       opts.App,
		ctx:       ctx,
		cancel:    cancel,
		cfg:       opts.Config,

		digestKey:       key,
		bootReportEvery: bootReportEvery,
	}
	e.rec.degraded = opts.Degraded
	e.observe = opts.Observe
	if opts.StateNote != "" {
		e.rec.notes = append(e.rec.notes, opts.StateNote)
	}
	e.fleet = opts.NewFleet(FleetOptions{Releases: rel, StateFailed: e.markUnsaved, Note: e.note})
	e.rekeyDigests(ctx)
	return e, nil
}

// Config returns the configuration the daemon runs with.
func (e *Engine) Config() *config.Config {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg
}

// loadConfig reads the config file as it is now and returns this
// engine's app's view of it (config.Config.ForUnit).
func (e *Engine) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(e.Config().Path)
	if err != nil {
		return nil, err
	}
	view, err := cfg.ForUnit(e.app)
	if err != nil {
		return nil, err
	}
	if view.DataDir != e.Config().DataDir {
		// The file changed form (one app ↔ several) since the daemon
		// started: this app's data would be looked for elsewhere.
		return nil, fmt.Errorf("%s now keeps app %q's data in %s, but the daemon runs it from %s: the file changed between the single-app and the several-apps form; move the data (docs/config.md, \"Several apps\") and restart `cutover serve`",
			cfg.Path, e.Config().App.Name, view.DataDir, e.Config().DataDir)
	}
	return view, nil
}

// Instances reports every instance of the app (the fleet's status),
// without reading the state database.
func (e *Engine) Instances() []instance.Status { return e.fleet.Status() }

// Releases returns the release manager.
func (e *Engine) Releases() *release.Manager { return e.rel }

// Close stops health checking and detaches from the instances without
// stopping them: a daemon that restarts re-adopts them (see Recover).
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.fleet.Close()
	e.cancel()
	e.wg.Wait()
}

// StopAll stops every instance gracefully and forgets them; used by
// `cutover stop`, which takes the app down on purpose.
func (e *Engine) StopAll(ctx context.Context) error {
	return e.fleet.StopAll(ctx)
}

// appConfigJSON is how a release remembers the [app] section it runs with.
func appConfigJSON(app config.App) string {
	b, err := json.Marshal(app)
	if err != nil {
		// config.App holds only strings, numbers, maps and durations.
		panic(fmt.Sprintf("encode app config: %v", err))
	}
	return string(b)
}

func decodeAppConfig(s string) (config.App, error) {
	var app config.App
	if err := json.Unmarshal([]byte(s), &app); err != nil {
		return app, fmt.Errorf("decode recorded app config: %w", err)
	}
	return app, nil
}

// Progress returns the running deploy, or nil.
func (e *Engine) Progress() *Progress {
	e.mu.Lock()
	if e.progress == nil {
		e.mu.Unlock()
		return nil
	}
	p := *e.progress
	r := e.current
	e.mu.Unlock()
	if r != nil {
		// Where the run is, and whether it holds, belong to the run.
		c := r.ctl
		c.mu.Lock()
		if c.step != 0 {
			p.Step = c.step.String()
		}
		p.Detail, p.Paused, p.PreviewToken = c.detail, c.paused, c.token
		p.Strategy, p.ShiftStep, p.ShiftSteps = c.strategy, c.shift[0], c.shift[1]
		c.mu.Unlock()
	}
	return &p
}

// bootReportEvery is Engine.bootReportEvery's value: often enough that an
// operator sees a stuck boot long before its boot_timeout (60s by
// default), seldom enough to stay a few lines.
const bootReportEvery = 5 * time.Second

func now() time.Time { return time.Now() }

// trafficSince is Options.TrafficSince, or now, to the millisecond.
func trafficSince(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Truncate(time.Millisecond)
}
