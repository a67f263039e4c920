package deploy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Action is an operator's word to the deploy in flight (`cutover promote`,
// `abort`, `pause`, `resume`). Its text form (String, and in JSON) is the
// command's name.
type Action uint8

// The actions.
const (
	ActionPromote Action = iota + 1 // end a preview, or skip the remaining steps / the watch
	ActionAbort                     // go back to the release that was live
	ActionPause                     // hold the deploy where it is, or before its next step
	ActionResume                    // continue a paused deploy
)

var actionText = [...]string{ActionPromote: "promote", ActionAbort: "abort", ActionPause: "pause", ActionResume: "resume"}

// String returns the action's name.
func (a Action) String() string {
	if a >= ActionPromote && int(a) < len(actionText) {
		return actionText[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// ParseAction reads an action's name.
func ParseAction(s string) (Action, error) {
	for i, n := range actionText {
		if n != "" && n == s {
			return Action(i), nil
		}
	}
	return 0, fmt.Errorf("unknown action %q: want promote, abort, pause or resume", s)
}

// MarshalText writes the action's name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads an action's name.
func (a *Action) UnmarshalText(b []byte) error {
	v, err := ParseAction(string(b))
	*a = v
	return err
}

// ControlRefusedError is an operator's action that the deploy in flight
// cannot honour in the step it is in; Reason says why and what to do
// instead. It maps to the "refused" kind: HTTP 412, exit status 1.
type ControlRefusedError struct {
	Action   Action
	Step     Step
	DeployID int64
	Reason   string
}

func (e *ControlRefusedError) Error() string {
	return fmt.Sprintf("%s refused (deploy #%d, step %s): %s", e.Action, e.DeployID, e.Step, e.Reason)
}

// timing says when an honoured action takes effect.
type timing uint8

const (
	whenRefused  timing = iota
	whenNow             // the step in flight acts on it at once
	whenStepEnds        // the step in flight runs to its end, then it takes effect
)

// rule is what one action does in one step: refused, or honoured now or
// at the step's end, with what the operator is told. The text may name
// {new} (the release being deployed), {live} (the one that was live),
// {step}, {strategy}, and {nopromote} (why promote has nothing to do yet).
type rule struct {
	when timing
	say  string
}

// Rows of controlTable for situations that are not a step of their own.
const (
	rowLive = Step(255) // traffic moved to the new release for good: after the switch
	rowHeld = Step(254) // paused between two steps, before traffic moved for good
)

// controlTable is every (step, action) pair and what it does: every action
// is either honoured or refused with a reason, in every step. resume is
// the same everywhere (honoured when paused, refused otherwise), and so
// is a second pause; a run that is already going back refuses everything.
// Control reads it; docs/strategies.md shows it to operators.
var controlTable = map[Step]map[Action]rule{
	StepLock: {
		ActionAbort:   {whenNow, "abort: the deploy of {new} stops before anything runs; {live} keeps serving"},
		ActionPause:   {whenStepEnds, "pause: the deploy holds when the {step} step ends, before anything boots; `cutover resume` continues, `cutover abort` stops it"},
		ActionPromote: {whenRefused, "{nopromote}"},
	},
	StepPrepare: {
		ActionAbort:   {whenNow, "abort: the deploy of {new} stops now (a git checkout, test or build under way is stopped; a copy finishes first); nothing boots; {live} keeps serving"},
		ActionPause:   {whenStepEnds, "pause: the deploy holds when the {step} step ends, before anything boots; `cutover resume` continues, `cutover abort` stops it"},
		ActionPromote: {whenRefused, "{nopromote}"},
	},
	StepCheck: {
		ActionAbort:   {whenStepEnds, "abort: the deploy of {new} stops when its migrations are checked; nothing boots; {live} keeps serving"},
		ActionPause:   {whenStepEnds, "pause: the deploy holds when the {step} step ends, before anything boots; `cutover resume` continues, `cutover abort` stops it"},
		ActionPromote: {whenRefused, "{nopromote}"},
	},
	StepExpand: {
		ActionAbort:   {whenStepEnds, "abort: the expand migrations under way finish (a migration is never cut in half; they keep working with {live}), then the deploy stops before anything boots; {live} keeps serving"},
		ActionPause:   {whenStepEnds, "pause: the expand migrations under way finish, then the deploy holds before anything boots; `cutover resume` continues, `cutover abort` stops it"},
		ActionPromote: {whenRefused, "{nopromote}"},
	},
	StepSchema: {
		ActionAbort:   {whenNow, "abort: the schema preview stops (its command is stopped, the scratch copy dropped); nothing touched the database; {live} keeps serving"},
		ActionPause:   {whenStepEnds, "pause: the deploy holds when the schema preview ends, before anything touches the database; `cutover resume` continues, `cutover abort` stops it"},
		ActionPromote: {whenRefused, "{nopromote}"},
	},
	StepMigrate: {
		ActionAbort:   {whenNow, "abort: database.migrate_command is stopped (what it applied stays: it is the app's own tool, and its changes were previewed as safe for {live}); nothing boots; {live} keeps serving"},
		ActionPause:   {whenStepEnds, "pause: database.migrate_command runs to its end, then the deploy holds before anything boots; `cutover resume` continues, `cutover abort` stops it"},
		ActionPromote: {whenRefused, "{nopromote}"},
	},
	StepBoot: {
		ActionAbort:   {whenNow, "abort: stopping the booting instances of {new}; the live release {live} keeps serving"},
		ActionPause:   {whenStepEnds, "pause: the deploy holds when the instances of {new} are healthy, before traffic moves; `cutover resume` continues, `cutover abort` stops it"},
		ActionPromote: {whenRefused, "{nopromote}"},
	},
	StepPreview: {
		ActionAbort:   {whenNow, "abort: stopping the preview of {new}; {live} keeps serving"},
		ActionPause:   {whenNow, "pause: the preview's clock (deploy.preview_timeout) stops; `cutover resume` restarts it; promote and abort still work"},
		ActionPromote: {whenNow, "promote: traffic moves to {new} ({strategy})"},
	},
	StepHook: { // before_switch; the after_switch hook runs in rowLive
		ActionAbort:   {whenNow, "abort: stopping the before_switch hook and the instances of {new}; {live} keeps serving"},
		ActionPause:   {whenStepEnds, "pause: the deploy holds when the before_switch hook ends, before traffic moves; `cutover resume` continues, `cutover abort` stops it"},
		ActionPromote: {whenRefused, "{nopromote}"},
	},
	StepSwitch: {
		ActionAbort:   {whenRefused, "traffic is moving to {new} for good right now; once the deploy ends, `cutover rollback` goes back"},
		ActionPause:   {whenRefused, "traffic is moving to {new} for good right now; there is nothing left to hold"},
		ActionPromote: {whenRefused, "traffic is moving to {new} right now; nothing to promote"},
	},
	StepShift: {
		ActionAbort:   {whenNow, "abort: all traffic goes back to {live}, and {new} is drained and stopped"},
		ActionPause:   {whenNow, "pause: the deploy holds at its current weights, its clock stopped; `cutover resume` continues; promote and abort still work"},
		ActionPromote: {whenNow, "promote: skipping the remaining {strategy} steps; all traffic moves to {new}"},
	},
	StepWatch: {
		ActionAbort:   {whenNow, "abort: all traffic goes back to {live}, which the watch kept warm, and {new} is drained and stopped"},
		ActionPause:   {whenNow, "pause: the watch's clock stops; {live} stays warm; `cutover resume` continues; promote and abort still work"},
		ActionPromote: {whenNow, "promote: the watch ends now and {live} is drained and stopped"},
	},
	StepDrain:    liveRules,
	StepContract: liveRules,
	StepFinish:   liveRules,
	// A held switch (held.go) holds the clients' requests from the hold
	// step to the switch: it never pauses there, since a pause would make
	// them wait longer, and an abort puts the old release back.
	StepHold: {
		ActionAbort:   {whenNow, "abort: the hold ends and {live} serves the held requests; {new} never starts"},
		ActionPause:   {whenRefused, "requests are held right now; a held switch does not pause, since they would wait longer; `cutover abort` puts {live} back"},
		ActionPromote: {whenRefused, "{nopromote}"},
	},
	StepStop: {
		ActionAbort:   {whenStepEnds, "abort: once the instances of {live} have stopped, they start again and serve the held requests; {new} never starts"},
		ActionPause:   {whenRefused, "requests are held right now; a held switch does not pause, since they would wait longer; `cutover abort` puts {live} back"},
		ActionPromote: {whenRefused, "{nopromote}"},
	},
	StepReleasePhase: {
		ActionAbort:   {whenRefused, "the release phase is changing the database and is never cut in half; if it fails, {live} serves again; once it succeeds, {new} boots"},
		ActionPause:   {whenRefused, "requests are held right now; a held switch does not pause, since they would wait longer"},
		ActionPromote: {whenRefused, "{nopromote}"},
	},
	StepHeldBoot: {
		ActionAbort:   {whenNow, "abort: stopping the booting instances of {new}; {live} starts again and serves the held requests (unless the release phase changed the database: then they are answered 503)"},
		ActionPause:   {whenRefused, "requests are held right now; a held switch does not pause, since they would wait longer; `cutover abort` puts {live} back"},
		ActionPromote: {whenRefused, "{nopromote}"},
	},
	StepRestore: {
		ActionAbort:   {whenRefused, "{live} is starting again to serve the held requests; the deploy of {new} has failed already"},
		ActionPause:   {whenRefused, "{live} is starting again to serve the held requests; there is nothing left to hold"},
		ActionPromote: {whenRefused, "{live} is starting again to serve the held requests; nothing to promote"},
	},
	rowLive: liveRules, // after the switch, in any step but the watch: the after_switch hook
	rowHeld: { // paused before {step}
		ActionAbort:   {whenNow, "abort: the paused deploy stops before {step}; {live} keeps serving and {new} is stopped"},
		ActionPause:   {whenRefused, "already paused before {step}; `cutover resume` continues"},
		ActionPromote: {whenRefused, "{nopromote}"},
	},
}

// liveRules answer once traffic moved to the new release for good.
var liveRules = map[Action]rule{
	ActionAbort:   {whenRefused, "the new release {new} is live; `cutover rollback` goes back"},
	ActionPause:   {whenRefused, "traffic has moved to {new} for good; there is nothing left to hold"},
	ActionPromote: {whenRefused, "the new release {new} is live already; nothing to promote"},
}

// control is the one owner of a run's control state: the step it is in,
// whether it is paused, and what the operator asked that the run has not
// acted on yet. Control decides under its lock, by controlTable, and the
// steps consult it (step entry, wait, boot), so an action is decided and
// seen against one state. Its lock is never held while taking another.
type control struct {
	mu       sync.Mutex
	deployID int64
	step     Step
	detail   string        // where a multi-step shift is: "canary 25%", "batch 2/4"
	shift    [2]int        // the shift's step and its number of steps, 0 outside a shift
	token    string        // the preview token while the preview step runs
	strategy string        // "bluegreen", "rolling", "canary" or "stop-first"
	preview  bool          // the deploy has a preview step
	release  string        // the release being deployed, once prepared
	live     string        // the release live when the deploy began
	switched bool          // traffic moved to release for good
	stopping string        // why the run is on its way back or out; "" while it goes on
	held     bool          // paused before step: it has not begun
	paused   bool          // asked to pause and not resumed
	promote  bool          // promote honoured, not yet taken by the step
	abort    bool          // abort honoured
	abortc   chan struct{} // closed when abort is honoured
	wake     chan struct{} // closed and replaced on every change
}

func newControl(live string) *control {
	return &control{step: StepLock, live: live, abortc: make(chan struct{}), wake: make(chan struct{})}
}

// changedLocked wakes whoever waits for a change.
func (c *control) changedLocked() {
	close(c.wake)
	c.wake = make(chan struct{})
}

// decide applies action a if the table honours it in the current state,
// and returns what the operator is told.
func (c *control) decide(a Action) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	refuse := func(why string) (string, error) {
		return "", &ControlRefusedError{Action: a, Step: c.step, DeployID: c.deployID, Reason: c.fill(why)}
	}
	if c.stopping != "" {
		return refuse("the deploy is already on its way out (" + c.stopping + "); {live} keeps serving")
	}
	switch {
	case a == ActionResume && !c.paused:
		return refuse("not paused")
	case a == ActionResume:
		c.paused = false
		c.changedLocked()
		if c.held {
			return c.fill("resume: the deploy goes on with the {step} step"), nil
		}
		return "resume: the deploy goes on", nil
	case a == ActionPause && c.paused && !c.held:
		return refuse("already paused; `cutover resume` continues")
	}
	row := c.step
	switch {
	case c.held:
		row = rowHeld
	case c.switched && c.step != StepWatch:
		row = rowLive
	}
	r, ok := controlTable[row][a]
	if !ok {
		return refuse("not possible in step {step}")
	}
	if r.when == whenRefused {
		return refuse(r.say)
	}
	switch a {
	case ActionAbort:
		c.abort, c.paused, c.promote = true, false, false
		c.stopping = "aborted by the operator"
		close(c.abortc)
	case ActionPause:
		c.paused = true
	case ActionPromote:
		c.promote, c.paused = true, false
	}
	c.changedLocked()
	return c.fill(r.say), nil
}

// fill replaces a rule's placeholders.
func (c *control) fill(s string) string {
	nopromote := ""
	switch {
	case c.preview:
		nopromote = "nothing to promote yet: the preview of {new} begins once it has booted"
	case c.strategy == "bluegreen":
		nopromote = "a blue-green deploy switches as soon as its instances are healthy; nothing to promote"
	case c.strategy == "stop-first":
		nopromote = "a held switch moves the held requests to {new} as soon as it is healthy; nothing to promote"
	default:
		nopromote = "nothing to promote yet: the {strategy} steps begin once {new} has booted"
	}
	release := c.release
	if release == "" {
		release = "the new release"
	}
	s = strings.ReplaceAll(s, "{nopromote}", nopromote)
	if c.live == "" { // a first deploy
		s = strings.NewReplacer("; the live release {live} keeps serving", "; no release was live", "; {live} keeps serving", "; no release was live").Replace(s)
	}
	return strings.NewReplacer("{new}", release, "{live}", orNone(c.live), "{step}", c.step.String(), "{strategy}", c.strategy).Replace(s)
}

// errOperatorAbort is an abort the run acted on; it wraps ErrAborted.
var errOperatorAbort error = sentinel{"aborted by the operator", ErrAborted}

// stopsAt reports whether a pending abort or pause takes effect when the
// run enters step: every step before traffic moves for good. The steps
// after it (drain, contract, finish, an after_switch hook) and the watch
// run whatever was asked, which the table refuses or the watch takes.
func (c *control) stopsAt(step Step) bool {
	switch step {
	case StepPrepare, StepCheck, StepSchema, StepExpand, StepMigrate, StepBoot, StepPreview, StepSwitch, StepShift, StepHold:
		return true
	case StepHook:
		return !c.switched
	}
	return false
}

// enter makes step the run's current step. Before traffic has moved for
// good it first honours what is pending: an abort ends the run here (an
// error wrapping errOperatorAbort), a pause holds it until resume or
// abort.
func (r *Run) enter(ctx context.Context, step Step) error {
	c := r.ctl
	c.mu.Lock()
	c.step = step
	stops := c.stopsAt(step)
	if !stops || (!c.abort && !c.paused) {
		c.mu.Unlock()
		return nil
	}
	c.held = c.paused
	c.mu.Unlock()
	announced := false
	for {
		c.mu.Lock()
		abort, paused, wake := c.abort, c.paused, c.wake
		if !paused || abort {
			c.held = false
		}
		c.mu.Unlock()
		switch {
		case abort:
			return fmt.Errorf("%w before the %s step; %s kept serving", errOperatorAbort, step, orNone(r.from))
		case !paused:
			if announced {
				r.info("resumed")
			}
			return nil
		case !announced:
			announced = true
			r.info("paused before the %s step; `cutover resume` continues, `cutover abort` stops the deploy", step)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("paused before the %s step when the daemon stopped: %w", step, ErrAborted)
		}
	}
}

// aborting returns a channel closed once the operator's abort is
// honoured: a step that can stop at once (boot) selects on it.
func (r *Run) aborting() <-chan struct{} { return r.ctl.abortc }

// abortable returns a context that the operator's abort cancels, for work
// that may stop at once (a git checkout, a test, a build, a hook), and its
// release, which the caller must call when that work ends.
func (r *Run) abortable(ctx context.Context) (context.Context, context.CancelFunc) {
	actx, cancel := context.WithCancel(ctx)
	go func() { // ends with the work: stop cancels actx
		select {
		case <-r.ctl.abortc:
			cancel()
		case <-actx.Done():
		}
	}()
	return actx, cancel
}

// aborted reports whether the operator's abort was honoured.
func (r *Run) aborted() bool {
	r.ctl.mu.Lock()
	defer r.ctl.mu.Unlock()
	return r.ctl.abort
}

// takePromote reports whether a promote was honoured since the last call.
func (r *Run) takePromote() bool {
	c := r.ctl
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.promote
	c.promote = false
	return p
}

// stop records that the run is on its way out (going back, or failed):
// from then on every action is refused with why.
func (r *Run) stop(why string) {
	c := r.ctl
	c.mu.Lock()
	if c.stopping == "" {
		c.stopping = why
	}
	c.paused = false
	c.changedLocked()
	c.mu.Unlock()
}

// setSwitched records that traffic moved to the new release for good.
func (r *Run) setSwitched() {
	r.ctl.mu.Lock()
	r.ctl.switched = true
	r.ctl.mu.Unlock()
}

// setPreview records the preview token for Progress, "" when the
// preview ends.
func (r *Run) setPreview(token string) {
	r.ctl.mu.Lock()
	r.ctl.token = token
	r.ctl.mu.Unlock()
}

func (r *Run) setDetail(d string) {
	r.ctl.mu.Lock()
	r.ctl.detail = d
	r.ctl.mu.Unlock()
}

// setShift records where a multi-step shift is: step k of n, described
// by d.
func (r *Run) setShift(d string, k, n int) {
	r.ctl.mu.Lock()
	r.ctl.detail, r.ctl.shift = d, [2]int{k, n}
	r.ctl.mu.Unlock()
}

// judgeEvery is how often a canary step or a watch looks at the new
// release's numbers: often enough that a broken release is caught within a
// few dozen requests, not a step later.
const judgeEvery = 100 * time.Millisecond

// wait lets d pass, or less if the operator acts: it returns (0, "") when
// d passed, (ActionPromote or ActionAbort, "") when honoured. While paused
// the clock stops; tick, when not nil, is called every judgeEvery and may
// end the wait early by returning a non-empty reason (returned as is). The
// daemon stopping reads as an abort.
func (r *Run) wait(ctx context.Context, d time.Duration, tick func() string) (Action, string) {
	c := r.ctl
	left := d
	ticker := time.NewTicker(judgeEvery)
	defer ticker.Stop()
	wasPaused := false
	for {
		c.mu.Lock()
		abort, paused, promote, wake := c.abort, c.paused, c.promote, c.wake
		c.promote = false
		detail := c.detail
		c.mu.Unlock()
		switch {
		case abort:
			return ActionAbort, ""
		case promote:
			return ActionPromote, ""
		case paused && !wasPaused:
			r.info("paused at %s; `cutover resume` continues, `cutover promote` skips ahead, `cutover abort` goes back", orNone(detail))
		case !paused && wasPaused:
			r.info("resumed")
		}
		wasPaused = paused
		var timeout <-chan time.Time
		var timer *time.Timer
		start := time.Now()
		if !paused {
			timer = time.NewTimer(left)
			timeout = timer.C
		}
		select {
		case <-ctx.Done():
			return ActionAbort, ""
		case <-timeout:
			return 0, ""
		case <-wake:
		case <-ticker.C:
			if tick != nil && !paused {
				if why := tick(); why != "" {
					if timer != nil {
						timer.Stop()
					}
					return 0, why
				}
			}
		}
		if timer != nil {
			timer.Stop()
			left -= time.Since(start)
		}
	}
}

// ControlAnswer is an honoured action's acknowledgement.
type ControlAnswer struct {
	Run *Run // the deploy that took the action
	// Message says what will happen, e.g. "abort: stopping the booting
	// instances of R2; the live release R1 keeps serving". It is also the
	// run's next event.
	Message string
}

// Control passes an operator's action to the deploy in flight. It returns
// what will happen, or a *ControlRefusedError saying why the action cannot
// be honoured in the step the deploy is in (see controlTable), or
// ErrNoDeploy.
func (e *Engine) Control(a Action) (ControlAnswer, error) {
	e.mu.Lock()
	r := e.current
	e.mu.Unlock()
	if r == nil {
		return ControlAnswer{}, ErrNoDeploy
	}
	if a < ActionPromote || a > ActionResume {
		return ControlAnswer{}, fmt.Errorf("unknown action %v", a)
	}
	ack, err := r.ctl.decide(a)
	if err != nil {
		return ControlAnswer{}, err
	}
	r.info("%s", ack)
	return ControlAnswer{Run: r, Message: ack}, nil
}
