package deploy

import (
	"context"
	"errors"
	"time"

	"github.com/cutover/cutover/internal/state"
)

// Recover brings the world in line with the recorded state when the daemon
// starts: instances of the live release that are still running are adopted
// (the app never stopped), missing ones are started, instances of any other
// release (left by a deploy the previous daemon did not finish) are
// stopped, and an interrupted deploy is marked as such. Before all that,
// the commands (git, test, build, hooks) of that deploy are stopped: see
// trackCommand.
//
// The instances' part is the fleet's (fleet.Fleet.Find, Recover,
// StartMissing); the deploys, the release rows and the `current` link are
// this package's. It serves what runs rather than fail: a state database
// that lost its rows is rebuilt from disk and the running processes
// (rebuild.go), an instance that runs but was never recorded is found by
// a scan of /proc and adopted or stopped, and what cannot be done (a write to state.db,
// starting an instance whose directory is gone) is logged and shown by
// Status instead of stopping the daemon. The error is reserved for what
// leaves nothing to serve with; today there is none.
func (e *Engine) Recover(ctx context.Context) error {
	e.stopLeftoverCommands()
	e.removeTemporary()
	e.moveOldSnapshots()
	interrupted, err := e.store.InterruptRunning(ctx, time.Now())
	if err != nil {
		e.stateFailed("mark interrupted deploys", err)
		e.mu.Lock()
		e.rec.interruptPending = true
		e.mu.Unlock()
	}
	recorded, err := e.store.Active(ctx)
	if err != nil {
		e.stateFailed("read the live release", err)
	}
	found := e.fleet.Find()
	active, app := e.liveRelease(ctx, recorded, found)
	for _, d := range interrupted {
		e.log.Warn("a deploy was interrupted by the daemon's stop", "deploy", d.ID, "release", d.Release, "live", active)
		if d.Release != "" && d.Release != active {
			if err := e.store.SetReleaseStatus(ctx, d.Release, state.ReleaseFailed); err != nil && !errors.Is(err, state.ErrNotFound) {
				e.stateFailed("record release "+d.Release+" failed", err)
			}
		}
	}
	e.fleet.Recover(ctx, active, app, found)
	defer e.startFlusher()
	if active == "" {
		return nil
	}
	e.px.SetActive(active)
	for _, key := range []string{failedHoldKey, phaseKey} {
		// A held switch failed, or the daemon died in one, after it
		// changed the database; the old release may not work on it.
		// Keep refusing until a deploy.
		if why, err := e.store.Get(ctx, key); err == nil && why != "" {
			e.px.FailHold(why)
			e.note("requests are refused (503): " + why + "; deploy a release that works with the database, or `cutover rollback --force`")
			break
		}
	}
	e.fleet.StartMissing(active, app)
	if cur, err := e.rel.Current(); err == nil && cur != active {
		if err := e.rel.SetCurrent(active); err != nil {
			e.log.Warn("repoint current", "release", active, "err", err)
		}
	}
	return nil
}
