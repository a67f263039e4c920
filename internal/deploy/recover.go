package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
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
func (e *Engine) Recover(ctx context.Context) error {
	e.stopLeftoverCommands()
	interrupted, err := e.store.InterruptRunning(ctx, time.Now())
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	active, err := e.store.Active(ctx)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	for _, d := range interrupted {
		e.log.Warn("a deploy was interrupted by the daemon's stop", "deploy", d.ID, "release", d.Release, "live", active)
		if d.Release != "" && d.Release != active {
			if err := e.store.SetReleaseStatus(ctx, d.Release, state.ReleaseFailed); err != nil && !errors.Is(err, state.ErrNotFound) {
				return fmt.Errorf("recover: %w", err)
			}
		}
	}
	rows, err := e.store.Instances(ctx)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	var app config.App
	if active != "" {
		rec, err := e.store.Release(ctx, active)
		if err != nil {
			return fmt.Errorf("recover: live release: %w", err)
		}
		if app, err = decodeAppConfig(rec.ConfigJSON); err != nil {
			return fmt.Errorf("recover: live release %s: %w", active, err)
		}
	}
	used := map[int]bool{} // instance numbers in use
	adopted := 0
	for _, row := range rows {
		if row.Release != active || active == "" {
			e.log.Info("stopping an instance of a release that is not live", "instance", row.ID, "release", row.Release, "pid", row.PID)
			if err := supervisor.KillGroup(row.PID, row.StartTime, 10*time.Second); err != nil {
				e.log.Warn("stop leftover instance", "instance", row.ID, "pid", row.PID, "err", err)
			}
			if err := e.store.DeleteInstance(ctx, row.ID); err != nil {
				return fmt.Errorf("recover: %w", err)
			}
			continue
		}
		n := instanceNumber(row.ID, active)
		spec := e.spec(app, active, n, row.Port)
		_, err := e.adoptInstance(spec, app, row.PID, row.StartTime, supervisor.History{Restarts: row.Restarts, LastExit: row.LastExit})
		if err != nil {
			e.log.Warn("instance is gone; starting a new one", "instance", row.ID, "pid", row.PID, "err", err)
			if err := e.store.DeleteInstance(ctx, row.ID); err != nil {
				return fmt.Errorf("recover: %w", err)
			}
			continue
		}
		used[n] = true
		adopted++
		e.log.Info("adopted instance", "instance", row.ID, "pid", row.PID, "port", row.Port)
	}
	if active == "" {
		return nil
	}
	e.px.SetActive(active)
	for n := 1; adopted < app.Instances; n++ {
		if used[n] {
			continue
		}
		if _, err := e.startInstance(e.spec(app, active, n, 0), app); err != nil {
			return fmt.Errorf("recover: %w", err)
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
