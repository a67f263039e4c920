package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/supervisor"
)

// Recover brings the world in line with the recorded state when the daemon
// starts: instances of the live release that are still running are adopted
// (the app never stopped), missing ones are started, instances of any other
// release (left by a deploy the previous daemon did not finish) are
// stopped, and an interrupted deploy is marked as such. Before all that,
// the commands (git, test, build, hooks) of that deploy are stopped: see
// trackCommand.
//
// It serves what runs rather than fail: a state database that lost its
// rows is rebuilt from disk and the running processes (rebuild.go), an
// instance that runs but was never recorded is found by a scan of /proc
// and adopted or stopped, and what cannot be done (a write to state.db,
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
	found := e.findInstances()
	active, app := e.liveRelease(ctx, recorded, found)
	for _, d := range interrupted {
		e.log.Warn("a deploy was interrupted by the daemon's stop", "deploy", d.ID, "release", d.Release, "live", active)
		if d.Release != "" && d.Release != active {
			if err := e.store.SetReleaseStatus(ctx, d.Release, state.ReleaseFailed); err != nil && !errors.Is(err, state.ErrNotFound) {
				e.stateFailed("record release "+d.Release+" failed", err)
			}
		}
	}
	rows, err := e.store.Instances(ctx)
	if err != nil {
		e.stateFailed("read the instances", err)
	}
	rows = e.addFound(rows, found)
	used := map[int]bool{} // instance numbers in use
	adopted := 0
	for _, row := range rows {
		n := instanceNumber(row.ID, active)
		if row.Release != active || active == "" || n == 0 || used[n] {
			e.log.Info("stopping an instance of a release that is not live", "instance", row.ID, "release", row.Release, "pid", row.PID)
			if err := supervisor.KillGroup(row.PID, row.StartTime, 10*time.Second); err != nil {
				e.log.Warn("stop leftover instance", "instance", row.ID, "pid", row.PID, "err", err)
			}
			e.forget(ctx, row.ID)
			continue
		}
		spec := e.spec(app, active, n, row.Port)
		_, err := e.adoptInstance(spec, app, row.PID, row.StartTime, supervisor.History{Restarts: row.Restarts, LastExit: row.LastExit})
		if err != nil {
			if _, gone := supervisor.ProcStartTime(row.PID); gone == nil && e.sameProcess(row) {
				// Alive but not adoptable: stopped, never left behind.
				e.log.Warn("cannot adopt a running instance; stopping it", "instance", row.ID, "pid", row.PID, "err", err)
				if err := supervisor.KillGroup(row.PID, row.StartTime, 10*time.Second); err != nil {
					e.log.Warn("stop instance", "instance", row.ID, "pid", row.PID, "err", err)
				}
			} else {
				e.log.Warn("instance is gone; starting a new one", "instance", row.ID, "pid", row.PID, "err", err)
			}
			e.forget(ctx, row.ID)
			continue
		}
		used[n] = true
		adopted++
		e.log.Info("adopted instance", "instance", row.ID, "pid", row.PID, "port", row.Port)
	}
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
	for n := 1; adopted < app.Instances; n++ {
		if used[n] {
			continue
		}
		if _, err := e.startInstance(e.spec(app, active, n, 0), app); err != nil {
			e.note(fmt.Sprintf("could not start instance %d of the live release %s (%v): it serves with %d of %d instances; deploy again to restore them",
				n, active, err, adopted, app.Instances))
			break
		}
		used[n] = true
		adopted++
	}
	if cur, err := e.rel.Current(); err == nil && cur != active {
		if err := e.rel.SetCurrent(active); err != nil {
			e.log.Warn("repoint current", "release", active, "err", err)
		}
	}
	return nil
}

// sameProcess reports whether row's pid is still the process recorded,
// alive (a zombie, not yet reaped by whoever inherited it, is not).
func (e *Engine) sameProcess(row state.Instance) bool {
	return supervisor.Alive(row.PID, row.StartTime)
}

// forget deletes an instance's row; a failure to write is remembered and
// written later (see flushState).
func (e *Engine) forget(ctx context.Context, id string) {
	if err := e.store.DeleteInstance(ctx, id); err != nil {
		e.stateFailed("forget instance "+id, err)
	}
}

// instanceNumber extracts n from "<release>-<n>"; 0 if it has none.
func instanceNumber(id, release string) int {
	var n int
	if _, err := fmt.Sscanf(strings.TrimPrefix(id, release+"-"), "%d", &n); err != nil {
		return 0
	}
	return n
}

// TailFile returns up to n last lines of a file.
func TailFile(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		if _, err := f.Seek(-window, io.SeekEnd); err != nil {
			return nil
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
