package fleet

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/release"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/supervisor"
	"github.com/cutover/cutover/internal/tcpproxy"
)

// Options configure a Fleet.
type Options struct {
	// Config is the daemon's configuration: the data directory (drain
	// files, logs), the app's name (to find its processes at start) and
	// app.logs_max_total.
	Config *config.Config
	// Store records each instance (state.Instance rows).
	Store *state.Store
	// Proxy gets a backend per running instance.
	Proxy *proxy.Proxy
	// TCP, when set, is the app's [[app.tcp]] ports: told of each
	// instance's ports, HTTP health and crashes, and of its stop.
	TCP *tcpproxy.Ports
	// Releases gives each release's directory, where its instances run.
	Releases *release.Manager
	Logger   *slog.Logger
	// StateFailed, when set, is told of each write to (or read of) the
	// state database that failed; the Fleet goes on from memory, and its
	// owner calls Flush later. Nil: such failures are only logged.
	StateFailed func(what string, err error)
	// Note, when set, is told what recovery found or could not do that
	// the operator should see (the owner shows it in status). Nil: it is
	// only logged.
	Note func(msg string)
}

// Fleet is the instances of one app. Create it with New; Recover once at
// start; Start and Stop as deploys ask; Close at daemon shutdown leaves
// the instances running for the next daemon.
type Fleet struct {
	log         *slog.Logger
	cfg         *config.Config
	store       *state.Store
	px          *proxy.Proxy
	tcp         *tcpproxy.Ports // nil: the app has no TCP ports
	rel         *release.Manager
	sup         *supervisor.Supervisor
	stateFailed func(what string, err error)
	note        func(msg string)

	ctx    context.Context // the fleet's lifetime; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // health checkers, restart watches, the log trimmer: Close waits

	// logsOver is set while the logs pass app.logs_max_total with only
	// running instances' files left (said once, see TrimLogs).
	logsOver atomic.Bool

	mu     sync.Mutex           // guards the fields below
	insts  map[string]*Instance // by instance id
	closed bool
}

// New returns a Fleet with no instances. It creates the supervisor and
// starts the loop that holds the logs to app.logs_max_total.
func New(opts Options) *Fleet {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fleet{
		log:         log.With("component", "fleet", "app", opts.Config.App.Name),
		cfg:         opts.Config,
		store:       opts.Store,
		px:          opts.Proxy,
		tcp:         opts.TCP,
		rel:         opts.Releases,
		stateFailed: opts.StateFailed,
		note:        opts.Note,
		ctx:         ctx,
		cancel:      cancel,
		insts:       map[string]*Instance{},
	}
	f.sup = supervisor.New(supervisor.Options{
		OnChange: f.onInstanceChange,
		Logger:   log,
	})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.trimLogsEvery(logTrimEvery)
	}()
	return f
}

// Close stops health checking and detaches from the instances without
// stopping them: a daemon that restarts re-adopts them (see Recover).
func (f *Fleet) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.sup.Detach()
	f.cancel()
	f.wg.Wait()
}

// StopAll stops every instance gracefully and forgets them; used by
// `cutover stop`, which takes the app down on purpose.
func (f *Fleet) StopAll(ctx context.Context) error {
	return f.stopInstances(ctx, f.instancesOf("", true))
}

// markUnsaved reports a write to state that failed.
func (f *Fleet) markUnsaved(what string, err error) {
	if f.stateFailed != nil {
		f.stateFailed(what, err)
		return
	}
	f.log.Error("state.db not written", "what", what, "err", err)
}

// noteRecovery says loudly what recovery found or could not do.
func (f *Fleet) noteRecovery(msg string) {
	if f.note != nil {
		f.note(msg)
		return
	}
	f.log.Warn(msg)
}
