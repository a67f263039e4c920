package deploy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/errkind"
	"github.com/cutover/cutover/internal/state"
)

// Request asks for a deploy or a rollback.
type Request struct {
	// Source is the release to ship: an absolute path to a directory or a
	// .tar.gz. Empty for a git deploy or a rollback.
	Source string `json:"source,omitempty"`
	// Git is a ref (tag, branch, commit) of [release] repo to check out,
	// test and build. Empty for a directory/tarball deploy or a rollback.
	Git string `json:"git,omitempty"`
	// Rollback makes this a rollback to Release (empty: the previous one).
	Rollback bool   `json:"rollback,omitempty"`
	Release  string `json:"release,omitempty"`
	// Force skips refusals that protect the app (rollback across contract
	// migrations).
	Force bool `json:"force,omitempty"`
	// Preview boots the release and waits, before any traffic moves, for
	// `promote` or `abort`; meanwhile only requests naming the release (by
	// header or cookie, or on proxy.preview_listen) reach it.
	Preview bool `json:"preview,omitempty"`
	// Hold ships the deploy held: the proxy holds new requests while the
	// database changes run and the new release boots, then releases them
	// to it. Needed for a change the schema preview finds breaking (unless
	// deploy.breaking is "hold"); a rollback held switches the same way.
	Hold bool `json:"hold,omitempty"`
	// User is who asked (recorded with the release).
	User string `json:"user,omitempty"`
}

// ErrNoDeploy is returned by Control when no deploy is in flight.
var ErrNoDeploy = errors.New("no deploy is in flight")

// ErrAborted is the outcome of a deploy aborted by the operator or by its
// own judgement (a failed canary step, a broken watch).
var ErrAborted = errors.New("aborted")

// Run is one deploy in flight or finished: its events, in order, ending
// with a "result" event.
type Run struct {
	e       *Engine
	id      int64
	kind    string
	release string
	from    string
	app     config.App
	cfg     *config.Config // what this run deploys with, from prepare on
	snap    *config.Config // cutover.toml as Start read it; nil if it did not load
	req     Request
	holdDB  bool // the database changes ship held (see Request.Hold)
	dbSafe  bool // the schema preview found the release phase's changes all additive
	inHold  bool // the run is in a held switch: the live release is held, maybe stopped
	// lintBlocked: the lint found statements that would break the live
	// release, let through because the deploy may ship held; it then must.
	lintBlocked bool

	ctl *control // the run's step and the operator's actions

	// during, when set, runs in a held switch between the old release's
	// stop and the new one's boot, as its own step (the release phase of
	// a change that cannot run beside the live release): see heldShift.
	// nil = nothing runs there.
	during func(ctx context.Context) (string, error)

	mu     sync.Mutex // guards the event log and the outcome below
	events []Event
	notify chan struct{} // closed and replaced on each new event
	done   bool
	err    error
}

func newRun(e *Engine, kind, from string, req Request) *Run {
	return &Run{e: e, kind: kind, from: from, req: req, ctl: newControl(from), notify: make(chan struct{}), during: e.during}
}

// event appends an event and wakes the subscribers.
func (r *Run) event(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	close(r.notify)
	r.notify = make(chan struct{})
	if ev.Type == "result" {
		r.done = true
	}
	r.mu.Unlock()
	if r.e.observe != nil {
		r.e.observe(r.kind, ev)
	}
}

func (r *Run) info(format string, args ...any) {
	r.event(Event{Type: "info", Message: fmt.Sprintf(format, args...)})
}

// Next returns the events from index i on, waiting until there is at least
// one or ctx ends. done reports that the last of them is the result.
func (r *Run) Next(ctx context.Context, i int) (evs []Event, done bool, err error) {
	for {
		r.mu.Lock()
		if i < len(r.events) {
			evs = append([]Event(nil), r.events[i:]...)
			done = r.done
			r.mu.Unlock()
			return evs, done, nil
		}
		ch := r.notify
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// Len returns how many events the run has so far.
func (r *Run) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// Wait waits for the run to end and returns the live release and error.
func (r *Run) Wait(ctx context.Context) (string, error) {
	i := 0
	for {
		evs, done, err := r.Next(ctx, i)
		if err != nil {
			return "", err
		}
		i += len(evs)
		if done {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.release, r.err
		}
	}
}

// step runs fn as a step: it emits start and end events and records the
// step in state. Entering it first honours a pending abort or pause (see
// Run.enter): an abort returns an error wrapping errOperatorAbort without
// running fn.
func (r *Run) step(name Step, fn func() (string, error)) error {
	if err := r.enter(r.e.ctx, name); err != nil {
		return err
	}
	start := time.Now()
	r.event(Event{Type: "step", Step: name, Status: "start"})
	detail, err := fn()
	status := "ok"
	if err != nil {
		status = "failed"
		detail = err.Error()
	}
	dur := time.Since(start)
	r.event(Event{Type: "step", Step: name, Status: status, DurationMS: float64(dur.Microseconds()) / 1000, Message: detail})
	if r.id != 0 {
		if serr := r.e.store.AddStep(r.e.ctx, r.id, state.Step{Name: name.String(), Status: status, StartedAt: start, FinishedAt: start.Add(dur), Detail: detail}); serr != nil {
			r.e.log.Error("record step", "step", name, "err", serr)
		}
	}
	return err
}

// Current returns the deploy in flight, or nil.
func (e *Engine) Current() *Run {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.current
}

// Start begins a deploy or rollback in the background and returns its run.
// It fails at once with *BusyError when another deploy runs.
func (e *Engine) Start(req Request) (*Run, error) {
	if !e.deployMu.TryLock() {
		p := e.Progress()
		if p == nil {
			p = &Progress{Kind: "deploy", Step: "finishing", StartedAt: time.Now()}
		}
		return nil, &BusyError{Running: *p}
	}
	if why := e.deployRefusal(e.ctx); why != "" {
		e.deployMu.Unlock()
		return nil, &RefusedError{Reason: why}
	}
	if req.Preview && req.Hold {
		e.deployMu.Unlock()
		return nil, &RefusedError{Reason: "--preview and --hold do not go together: a held deploy holds every request while the new release boots and switches as soon as it is healthy; deploy without --preview"}
	}
	// The run reads cutover.toml once, here, and deploys with that to the
	// end (prepare takes it); a file that does not load now fails the
	// prepare step, which says why.
	snap, err := e.loadConfig()
	if err != nil {
		snap = nil
	}
	cfg := snap
	if cfg == nil {
		cfg = e.Config()
	}
	if req.Preview && cfg.Deploy.Strategy == "stop-first" {
		e.deployMu.Unlock()
		return nil, &RefusedError{Reason: `--preview needs the new release to run beside the live one, which deploy.strategy "stop-first" rules out; deploy without --preview`}
	}
	kind := "deploy"
	if req.Rollback {
		kind = "rollback"
	}
	active, err := e.store.Active(e.ctx)
	if err != nil {
		e.deployMu.Unlock()
		return nil, err
	}
	r := newRun(e, kind, active, req)
	r.snap = snap
	// What Control needs to answer before prepare has read the config
	// again; prepare refines it.
	r.ctl.strategy, r.ctl.preview = cfg.Deploy.Strategy, req.Preview
	if req.Rollback && r.ctl.strategy != "stop-first" { // a stop-first rollback is a held switch too
		r.ctl.strategy = "bluegreen"
	}
	e.mu.Lock()
	e.progress = &Progress{Kind: kind, From: active, StartedAt: time.Now()}
	e.current = r
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		release, err := r.run(e.ctx)
		e.mu.Lock()
		e.progress = nil
		e.current = nil
		e.mu.Unlock()
		e.deployMu.Unlock()
		r.mu.Lock()
		r.release, r.err = release, err
		r.mu.Unlock()
		// The result comes last, once the lock is free, so a client that
		// starts the next deploy on seeing it is not refused.
		ev := Event{Type: "result", OK: err == nil, Release: release, DeployID: r.id}
		if err != nil {
			ev.Message, ev.ErrorKind = err.Error(), string(KindOf(err))
		} else {
			ev.Message = fmt.Sprintf("%s is live", release)
			e.clearNotes() // what the daemon rebuilt at start is history now
		}
		r.event(ev)
	}()
	return r, nil
}

// Deploy runs a deploy or rollback to its end, passing each event to emit,
// and returns the release live afterwards. See Start.
func (e *Engine) Deploy(req Request, emit Emitter) (string, error) {
	r, err := e.Start(req)
	if err != nil {
		return "", err
	}
	for i := 0; ; {
		evs, done, err := r.Next(context.Background(), i)
		if err != nil {
			return "", err
		}
		i += len(evs)
		for _, ev := range evs {
			if emit != nil && ev.Type != "result" {
				emit(ev)
			}
		}
		if done {
			return r.release, r.err
		}
	}
}

// KindOf classifies a deploy error for the API and CLI: busy, config,
// refused (a deploy refused to protect the app, or an operator's action
// the deploy in flight cannot honour now), aborted or failed; the HTTP
// status and exit code of each are errkind's.
func KindOf(err error) errkind.Kind {
	var busy *BusyError
	var cfgErr *config.Error
	var refused *RefusedError
	var ctlRefused *ControlRefusedError
	switch {
	case errors.As(err, &busy):
		return errkind.Busy
	case errors.As(err, &cfgErr):
		return errkind.Config
	case errors.As(err, &refused), errors.As(err, &ctlRefused):
		return errkind.Refused
	case errors.Is(err, ErrAborted):
		return errkind.Aborted
	default:
		return errkind.Failed
	}
}
