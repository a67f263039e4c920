package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/traffic"
)

// A held switch is how cutover ships a change that cannot run beside the
// live release: an app that cannot run two copies at once (strategy
// "stop-first": one SQLite file under an exclusive lock, a single
// volume, a licence), or a release phase that breaks the live release's
// schema. Where other tools answer 502 while the old copy is down, the
// proxy holds the requests (proxy.Hold) and the clients see latency, not
// an error:
//
//	hold          no request reaches a backend any more; the live
//	              release's requests in flight finish (up to
//	              proxy.drain_timeout; its websockets are not waited
//	              for: they end with its instances)
//	stop          (stop-first) the live release's instances stop
//	release_phase (when set) the release phase runs
//	held_boot     the new release boots, and the before_switch hook runs
//	switch        recorded, then the held requests and every new one go
//	              to the new release, in one step (proxy.Unhold)
//
// Failures put back what was there: the old release's instances start
// again if they were stopped (restore) and get the held requests. The
// one exception is a release phase that changed the database in a way
// the old code may not work with (it succeeded and was not found all
// additive by the schema preview, or it failed half-way after a breaking
// change) before the new release failed. Serving the held requests to
// code that may corrupt data or fail in ways nobody tested is worse than
// refusing them, so the proxy answers them, and every request after them,
// 503 with what happened (proxy.FailHold); the old release's instances
// are stopped, and the refusal is recorded in state (failedHoldKey) so
// that a restarted daemon keeps it. The next deploy takes a held switch
// whatever its strategy, and its switch ends the refusal.

// held reports whether this run takes the held path: strategy
// "stop-first", or a rollback of a stop-first app (two copies at once are
// not possible for it either).
func (r *Run) held() bool {
	return r.cfg.Deploy.Strategy == "stop-first"
}

// errHeldFailed marks a held switch that ended with the proxy refusing
// requests (proxy.FailHold): nothing serves until the operator acts.
var errHeldFailed = errors.New("held switch failed")

// heldShift moves traffic from the live release (r.from) to newID through
// a held switch (see above): it holds requests, waits for those in flight,
// stops the live release's instances when stopOld, runs during (the
// release phase; nil for none) as its own step, boots newID, runs the
// before_switch hook and switches, unholding in the same step. On failure
// it has stopped what it booted of newID and, unless during succeeded,
// put the old release back to serve the held requests; the error says
// which.
func (r *Run) heldShift(ctx context.Context, newID string, stopOld bool, during func(ctx context.Context) (string, error)) error {
	e, old := r.e, r.from
	r.inHold = true
	cfg := r.config()
	drainTimeout := cfg.Proxy.DrainTimeout.Duration
	var oldApp config.App
	oldInsts := e.instancesOf(old, false)
	if old == "" {
		oldInsts = nil
	}
	if len(oldInsts) > 0 {
		oldApp = oldInsts[0].App()
	}
	stopped := false // the old release's instances were stopped

	// restore puts the old release back after a failure before the
	// switch: its instances start again if stopped, then the held
	// requests go to it.
	restore := func(cause error) error {
		r.stop(cause.Error())
		e.forgetPhase(ctx) // the database suits the old release
		if why, err := e.store.Get(context.WithoutCancel(ctx), failedHoldKey); err == nil && why != "" {
			// An earlier held switch failed after changing the database:
			// the requests are refused again, as before this deploy.
			rep := e.px.FailHold(why)
			r.info("the hold ended: %s; requests are refused again: %s", describeHold(rep), why)
			return cause
		}
		if !stopped || len(oldInsts) == 0 {
			rep := e.px.Unhold("")
			r.info("the hold ended: %s; %s serves the held requests", describeHold(rep), orNone(old))
			return cause
		}
		rerr := r.step(StepRestore, func() (string, error) {
			ms, err := e.boot(context.WithoutCancel(ctx), r, old, oldApp, len(oldInsts), 1, nil)
			if err != nil {
				return "", fmt.Errorf("start %s again: %w", old, err)
			}
			rep := e.px.Unhold(old)
			return fmt.Sprintf("%d instance(s) of %s started again and serve the held requests; %s", len(ms), old, describeHold(rep)), nil
		})
		if rerr != nil {
			rep := e.px.FailHold(fmt.Sprintf("%s could not start again after the deploy of %s failed; the operator has been told", old, newID))
			return fmt.Errorf("%w; and %s could not be started again (%v): requests are answered 503 (%s); deploy a release that boots, or restart the daemon to try %s again",
				cause, old, rerr, describeHold(rep), old)
		}
		return cause
	}

	// hold
	if err := r.step(StepHold, func() (string, error) {
		e.px.Hold()
		if stopOld {
			e.announceDrain(oldInsts, time.Now().Add(drainTimeout))
		}
		if old == "" {
			return "requests held; no release was live", nil
		}
		actx, stop := r.abortable(ctx)
		defer stop()
		wctx, cancel := context.WithTimeout(actx, drainTimeout)
		defer cancel()
		left := e.px.WaitRequests(wctx, old)
		if r.aborted() {
			return "", fmt.Errorf("%w while requests were held; nothing was stopped", errOperatorAbort)
		}
		detail := fmt.Sprintf("requests held; %s: %d in flight finished", old, left.Finished)
		if left.Requests > 0 {
			detail += fmt.Sprintf(", %d still running after proxy.drain_timeout %s", left.Requests, drainTimeout)
		}
		if left.Websockets > 0 {
			detail += fmt.Sprintf(", %d websocket(s) open (closed with the instances)", left.Websockets)
		}
		return detail, nil
	}); err != nil {
		e.clearDrain(ids(oldInsts)...)
		return restore(err)
	}

	// stop
	if stopOld && len(oldInsts) > 0 {
		err := r.step(StepStop, func() (string, error) {
			// What still runs after the hold step's wait (websockets, a
			// request past drain_timeout) is cut now, websockets with a
			// close frame. Not paced by drain_pace as a drain is: the
			// instances stop next, which would close everything at once
			// anyway, and every held client waits meanwhile; the clients
			// that reconnect wait in the hold.
			stopped = true
			rs, err := e.drain(ctx, oldInsts, drainHow{told: true})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d instance(s) of %s stopped; %d request(s) cut", len(oldInsts), old, rs[0].Cut), nil
		})
		if err == nil && r.aborted() {
			err = fmt.Errorf("%w once %s had stopped", errOperatorAbort, old)
		}
		if err != nil {
			return restore(err)
		}
	}

	// An abort taken while the hold or the stop step ended: nothing has
	// changed yet, so everything goes back.
	if r.aborted() {
		return restore(fmt.Errorf("%w while requests were held; nothing changed", errOperatorAbort))
	}

	// release phase
	changed := false
	if during != nil && !r.dbSafe {
		// Recorded first: a daemon killed while the release phase runs, or
		// before the switch, comes back refusing requests rather than
		// serving the old release on a database it may not work with.
		mark := fmt.Sprintf("a held deploy of %s stopped after its release phase began: the database may have changed in a way %s cannot work with", newID, orNone(old))
		if err := e.store.Set(context.WithoutCancel(ctx), phaseKey, mark); err != nil {
			return restore(fmt.Errorf("record the release phase of %s before it runs: %w; nothing changed", newID, err))
		}
	}
	if during != nil {
		if err := r.step(StepReleasePhase, func() (string, error) { return during(ctx) }); err != nil {
			if errors.Is(err, errSchemaChanged) {
				// It failed half-way, after a change the old release
				// cannot work with.
				changed = true
				r.stop(err.Error())
				rep := r.failHold(ctx, fmt.Sprintf("the release phase of %s failed half-way and changed the database in a way %s cannot work with", newID, orNone(old)), stopped, oldInsts)
				return fmt.Errorf("release phase of %s failed half-way: %w; requests are answered 503 rather than sent to %s (%s). Fix the migration and deploy again: %w",
					newID, err, orNone(old), describeHold(rep), errHeldFailed)
			}
			// The schema is as the old release knew it (the release
			// phase changed nothing, or nothing the old release uses).
			return restore(fmt.Errorf("release phase of %s failed, and the database still suits %s: %w", newID, orNone(old), err))
		}
		// The old release cannot work on the database any more, unless
		// the schema preview found every change additive.
		changed = !r.dbSafe
	}

	// failChanged ends a held switch whose release phase changed the
	// database when the new release cannot serve (see above).
	failChanged := func(cause error) error {
		r.stop(cause.Error())
		rep := r.failHold(ctx, fmt.Sprintf("the release phase of %s changed the database, then %s could not serve; requests are refused rather than sent to %s, which may not work on the changed database",
			newID, newID, orNone(old)), stopped, oldInsts)
		return fmt.Errorf("%w, after its release phase had changed the database: requests are answered 503 rather than sent to %s, which may not work with the changed database (%s). Fix the release and deploy it; or, if %s works with the database as it is now, `cutover rollback --force` to it: %w",
			cause, orNone(old), describeHold(rep), orNone(old), errHeldFailed)
	}
	fail := func(cause error) error {
		if changed {
			return failChanged(cause)
		}
		return restore(cause)
	}

	// boot, then the before_switch hook, still held
	if err := r.step(StepHeldBoot, func() (string, error) {
		ms, err := e.boot(ctx, r, newID, r.app, r.app.Instances, 1, r.aborting())
		if err != nil {
			return "", err
		}
		detail := fmt.Sprintf("%d instance(s) healthy", len(ms))
		if hook := r.cfg.Deploy.BeforeSwitch; hook != "" {
			hctx, stop := r.abortable(ctx)
			defer stop()
			hd, err := r.hook(hctx, "before_switch", hook, newID)
			if err != nil {
				if serr := e.stopInstances(context.WithoutCancel(ctx), ms); serr != nil {
					e.log.Error("stop instances", "release", newID, "err", serr)
				}
				if r.aborted() {
					return "", fmt.Errorf("%w during the before_switch hook, which was stopped; nothing switched", errOperatorAbort)
				}
				return "", fmt.Errorf("before_switch hook failed, nothing switched: %w", err)
			}
			detail += "; before_switch: " + hd
		}
		return detail, nil
	}); err != nil {
		return fail(err)
	}

	// switch: recorded, then routed, in the same step as the unhold.
	var rep traffic.HoldReport
	err := r.step(StepSwitch, func() (string, error) {
		if err := e.store.SetActive(context.WithoutCancel(ctx), newID, time.Now()); err != nil {
			return "", fmt.Errorf("record the switch to %s: %w; nothing switched", newID, err)
		}
		rep = e.px.Unhold(newID)
		r.setSwitched()
		e.clearFailedHold(ctx)
		return fmt.Sprintf("traffic %s → %s; %s", orNone(old), newID, describeHold(rep)), nil
	})
	if err != nil {
		if serr := e.stopInstances(context.WithoutCancel(ctx), e.instancesOf(newID, false)); serr != nil {
			e.log.Error("stop instances", "release", newID, "err", serr)
		}
		return fail(err)
	}
	if rep.TimedOut > 0 {
		r.info("%d request(s) held longer than proxy.hold_timeout %s during the held switch were answered 503; raise proxy.hold_timeout above the hold's %s",
			rep.TimedOut, cfg.Proxy.HoldTimeout.Duration, rep.Duration.Round(time.Millisecond))
	}
	return nil
}

// describeHold is "held 12 request(s), longest 840ms, hold 1.2s".
func describeHold(rep traffic.HoldReport) string {
	s := fmt.Sprintf("held %d request(s), longest %s, hold %s", rep.Held, rep.Longest.Round(time.Millisecond), rep.Duration.Round(time.Millisecond))
	if rep.TimedOut > 0 {
		s += fmt.Sprintf(", %d answered 503 at proxy.hold_timeout", rep.TimedOut)
	}
	return s
}

// releasePhase is what the held switch of this run runs between stop and
// boot: r.during, except for a rollback, which runs no release phase.
func (r *Run) releasePhase() func(ctx context.Context) (string, error) {
	if r.req.Rollback {
		return nil
	}
	return r.during
}

// failedHoldKey is the state key recording a failed held switch's refusal,
// so that a daemon restarted meanwhile (a crash, a reboot) keeps refusing
// requests instead of sending them to the old release on the changed
// database.
const failedHoldKey = "failed_hold"

// failHold ends a held switch whose database change the old release
// cannot work with: requests are refused (proxy.FailHold) with why, the
// refusal is recorded for a restarted daemon, and the old release's
// instances, when they were not stopped, are stopped, so that no later
// deploy's weights send a request to them.
func (r *Run) failHold(ctx context.Context, why string, stopped bool, oldInsts []managed) traffic.HoldReport {
	e := r.e
	rep := e.px.FailHold(why)
	e.forgetPhase(ctx)
	if err := e.store.Set(context.WithoutCancel(ctx), failedHoldKey, why); err != nil {
		e.log.Error("record the failed held switch; a restarted daemon would serve the old release", "err", err)
	}
	if !stopped && len(oldInsts) > 0 {
		if err := e.stopInstances(context.WithoutCancel(ctx), oldInsts); err != nil {
			e.log.Error("stop the old release after a failed held switch", "err", err)
		}
	}
	return rep
}

// phaseKey is the state key recording a held switch's release phase
// under way (see heldShift), so that a daemon killed before the switch
// comes back refusing requests (Recover).
const phaseKey = "held_release_phase"

// forgetPhase forgets a release phase under way: it ended, and the
// database suits the release that serves.
func (e *Engine) forgetPhase(ctx context.Context) { e.forget(ctx, phaseKey, "the release phase") }

// clearFailedHold forgets a failed held switch, and a release phase under
// way, once a release is live again.
func (e *Engine) clearFailedHold(ctx context.Context) {
	e.forgetPhase(ctx)
	e.forget(ctx, failedHoldKey, "the failed held switch")
}

// forget clears the state record key (what names it for the log), if set.
func (e *Engine) forget(ctx context.Context, key, what string) {
	ctx = context.WithoutCancel(ctx)
	if v, err := e.store.Get(ctx, key); err == nil && v != "" {
		if err := e.store.Set(ctx, key, ""); err != nil {
			e.log.Error("forget "+what, "err", err)
		}
	}
}
