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
// Instances are owned here as "managed" triples: a supervisor process, a
// proxy backend, and a health checker that moves the backend in and out of
// rotation.
package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/datadir"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/release"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/supervisor"
)

// Options configure an Engine.
type Options struct {
	// Config is the app's configuration as loaded at start: the single-app
	// view of the file (config.Config.ForUnit) for the app this engine
	// runs. Deploys re-read Config.Path, and take the view of App from it,
	// so that changes apply to the next deploy.
	Config *config.Config
	// App names the app in a file with several apps (config.Unit); "" for
	// the single-app form.
	App    string
	Store  *state.Store
	Proxy  *proxy.Proxy
	Logger *slog.Logger
	// StateNote, when set, says what the daemon had to do to open its
	// state database (a damaged file moved aside); Recover logs it and
	// Status shows it until the next deploy succeeds.
	StateNote string
	// Degraded, when set, is why this engine refuses every deploy (the
	// state database could not be opened); Status shows it.
	Degraded string
}

// Engine runs deploys for one app. Create it with New, call Recover once,
// then Deploy/Rollback as asked; Close at daemon shutdown leaves instances
// running for the next daemon.
type Engine struct {
	log   *slog.Logger
	store *state.Store
	rel   *release.Manager
	sup   *supervisor.Supervisor
	px    *proxy.Proxy

	app    string          // Options.App
	ctx    context.Context // the engine's lifetime; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // health checkers, runs, the log trimmer: Close waits

	deployMu sync.Mutex // held by the one running deploy

	// bootReportEvery is how often a boot reports each instance that is
	// not healthy yet, with its latest health check: a boot_timeout of a
	// minute is not to be waited out in silence. Tests shorten it.
	bootReportEvery time.Duration
	// digestKey keys the digests of release metadata (datadir.DigestKey).
	digestKey []byte
	// logsOver is set while the logs pass app.logs_max_total with only
	// running instances' files left (said once, see trimLogs).
	logsOver atomic.Bool
	// during is what a held switch runs between the old release's stop
	// and the new one's boot (Run.during): nil today; the release phase
	// of a held deploy will set it, and tests do.
	during func(ctx context.Context) (string, error)

	mu       sync.Mutex // guards the fields below
	cfg      *config.Config
	insts    map[string]*managed // by instance id
	progress *Progress           // the running deploy, nil when idle
	current  *Run                // the running deploy, nil when idle
	closed   bool
	rec      recovery // what Recover rebuilt, and what still cannot be written
}

// New returns an Engine. It creates the supervisor; instances are started
// or adopted by Recover and deploys.
func New(opts Options) (*Engine, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
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
		log:    log.With("component", "deploy", "app", opts.Config.App.Name),
		store:  opts.Store,
		rel:    rel,
		px:     opts.Proxy,
		app:    opts.App,
		ctx:    ctx,
		cancel: cancel,
		cfg:    opts.Config,
		insts:  map[string]*managed{},

		digestKey:       key,
		bootReportEvery: bootReportEvery,
	}
	e.rec.degraded = opts.Degraded
	if opts.StateNote != "" {
		e.rec.notes = append(e.rec.notes, opts.StateNote)
	}
	e.sup = supervisor.New(supervisor.Options{
		OnChange: e.onInstanceChange,
		Logger:   log,
	})
	e.rekeyDigests(ctx)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.trimLogsEvery(logTrimEvery)
	}()
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
	return cfg.ForUnit(e.app)
}

// Releases returns the release manager.
func (e *Engine) Releases() *release.Manager { return e.rel }

// Close stops health checking and detaches from the instances without
// stopping them: a daemon that restarts re-adopts them (see Recover).
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.sup.Detach()
	e.cancel()
	e.wg.Wait()
}

// StopAll stops every instance gracefully and forgets them; used by
// `cutover stop`, which takes the app down on purpose.
func (e *Engine) StopAll(ctx context.Context) error {
	e.mu.Lock()
	var all []*managed
	for _, m := range e.insts {
		all = append(all, m)
	}
	e.mu.Unlock()
	return e.stopInstances(ctx, all)
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
		c.mu.Unlock()
	}
	return &p
}

// bootReportEvery is Engine.bootReportEvery's value: often enough that an
// operator sees a stuck boot long before its boot_timeout (60s by
// default), seldom enough to stay a few lines.
const bootReportEvery = 5 * time.Second

func now() time.Time { return time.Now() }
