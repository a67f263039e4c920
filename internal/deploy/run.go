package deploy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/config"
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
	// User is who asked (recorded with the release).
	User string `json:"user,omitempty"`
}

// Control actions for a deploy in flight.
const (
	ActionPromote = "promote" // end a preview, or skip the remaining steps / the watch
	ActionAbort   = "abort"   // go back to the release that was live
	ActionPause   = "pause"   // hold a rolling or canary deploy at its current step
	ActionResume  = "resume"  // continue a paused deploy
)

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
	cfg     *config.Config
	req     Request

	ctl chan string // control actions, buffered

	mu     sync.Mutex
	events []Event
	notify chan struct{} // closed and replaced on each new event
	done   bool
	paused bool
	err    error
}

func newRun(e *Engine, kind, from string, req Request) *Run {
	return &Run{e: e, kind: kind, from: from, req: req, ctl: make(chan string, 8), notify: make(chan struct{})}
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

// step runs fn as a named step: it emits start and end events and records
// the step in state.
func (r *Run) step(name string, fn func() (string, error)) error {
	r.e.setStep(name)
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
		if serr := r.e.store.AddStep(r.e.ctx, r.id, state.Step{Name: name, Status: status, StartedAt: start, FinishedAt: start.Add(dur), Detail: detail}); serr != nil {
			r.e.log.Error("record step", "step", name, "err", serr)
		}
	}
	return err
}

// judgeEvery is how often a canary step or a watch looks at the new
// release's numbers: often enough that a broken release is caught within a
// few dozen requests, not a step later.
const judgeEvery = 100 * time.Millisecond

// wait lets d pass, or less if an operator acts: it returns "" when d
// passed, ActionPromote or ActionAbort when asked. While paused the clock
// stops; tick, when not nil, is called every judgeEvery and may end the
// wait early by returning a non-empty reason (returned as is).
func (r *Run) wait(ctx context.Context, d time.Duration, tick func() string) string {
	deadline := time.Now().Add(d)
	ticker := time.NewTicker(judgeEvery)
	defer ticker.Stop()
	var pausedAt time.Time
	for {
		r.mu.Lock()
		paused := r.paused
		r.mu.Unlock()
		var timeout <-chan time.Time
		var timer *time.Timer
		if !paused {
			timer = time.NewTimer(time.Until(deadline))
			timeout = timer.C
		}
		stop := func() {
			if timer != nil {
				timer.Stop()
			}
		}
		select {
		case <-ctx.Done():
			stop()
			return ActionAbort
		case <-timeout:
			return ""
		case a := <-r.ctl:
			stop()
			switch a {
			case ActionPromote, ActionAbort:
				return a
			case ActionPause:
				if !paused {
					pausedAt = time.Now()
					r.setPaused(true)
				}
			case ActionResume:
				if paused {
					deadline = deadline.Add(time.Since(pausedAt))
					r.setPaused(false)
				}
			}
		case <-ticker.C:
			stop()
			if tick != nil && !paused {
				if why := tick(); why != "" {
					return why
				}
			}
		}
	}
}

// checkpoint takes the operator's pending actions between two steps: it
// returns ActionPromote or ActionAbort when asked, and blocks while paused.
func (r *Run) checkpoint(ctx context.Context) string {
	for {
		select {
		case a := <-r.ctl:
			switch a {
			case ActionPromote, ActionAbort:
				return a
			case ActionPause:
				r.setPaused(true)
				for {
					select {
					case <-ctx.Done():
						return ActionAbort
					case b := <-r.ctl:
						switch b {
						case ActionResume:
							r.setPaused(false)
						case ActionPromote, ActionAbort:
							r.unpauseQuietly()
							return b
						default:
							continue
						}
					}
					break
				}
			}
		default:
			return ""
		}
	}
}

// unpauseQuietly clears the paused flag when an operator's promote or
// abort ends the pause: what follows speaks for itself.
func (r *Run) unpauseQuietly() {
	r.mu.Lock()
	r.paused = false
	r.mu.Unlock()
	r.e.mu.Lock()
	if r.e.progress != nil {
		r.e.progress.Paused = false
	}
	r.e.mu.Unlock()
}

func (r *Run) setPaused(p bool) {
	r.mu.Lock()
	r.paused = p
	r.mu.Unlock()
	r.e.mu.Lock()
	if r.e.progress != nil {
		r.e.progress.Paused = p
	}
	r.e.mu.Unlock()
	if p {
		r.info("paused; `cutover resume` continues, `cutover promote` skips ahead, `cutover abort` goes back")
	} else {
		r.info("resumed")
	}
}

// Control sends an operator's action to the deploy in flight.
func (e *Engine) Control(action string) (*Run, error) {
	e.mu.Lock()
	r := e.current
	e.mu.Unlock()
	if r == nil {
		return nil, ErrNoDeploy
	}
	switch action {
	case ActionPromote, ActionAbort, ActionPause, ActionResume:
	default:
		return nil, fmt.Errorf("unknown action %q", action)
	}
	select {
	case r.ctl <- action:
	default:
		return nil, errors.New("the deploy has not taken the previous actions yet; try again")
	}
	return r, nil
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
	e.mu.Lock()
	e.progress = &Progress{Kind: kind, From: active, Step: StepLock, StartedAt: time.Now()}
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
			ev.Message, ev.ErrorKind = err.Error(), KindOf(err)
		} else {
			ev.Message = fmt.Sprintf("%s is live", release)
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

// KindOf classifies a deploy error for the API and CLI: "busy", "config",
// "refused", "aborted" or "failed".
func KindOf(err error) string {
	var busy *BusyError
	var cfgErr *config.Error
	var refused *RefusedError
	switch {
	case errors.As(err, &busy):
		return "busy"
	case errors.As(err, &cfgErr):
		return "config"
	case errors.As(err, &refused):
		return "refused"
	case errors.Is(err, ErrAborted):
		return "aborted"
	default:
		return "failed"
	}
}
