package daemon

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/cutover/cutover/internal/state"
)

// stateProblem is what openState had to do to get a state database: note
// is said at start and shown by `cutover status`; degraded, when set, is
// why deploys are refused for this daemon's life.
type stateProblem struct {
	note     string
	degraded string
}

// openState opens the state database, and never lets it stop the daemon
// from serving the app that runs: a damaged file (SQLite: "file is not a
// database", "database disk image is malformed") is moved aside and a new
// one created, which Recover fills again from disk and the running
// processes; a file that cannot be opened at all (a full or read-only
// disk, a permission) is replaced by a database in memory, and deploys
// are refused until the daemon is restarted with the file fixed.
func openState(path string, log *slog.Logger) (*state.Store, stateProblem, error) {
	store, err := state.OpenChecked(path)
	if err == nil {
		return store, stateProblem{}, nil
	}
	if state.IsCorrupt(err) {
		aside, aerr := state.SetAside(path, time.Now())
		if aerr == nil {
			if store, err2 := state.Open(path); err2 == nil {
				note := fmt.Sprintf("the state database %s was damaged (%v); it was moved to %s and a new one was rebuilt from the releases on disk and the running instances: deploy history before now is only in the old file",
					path, err, aside)
				log.Error(note)
				return store, stateProblem{note: note}, nil
			} else {
				err = err2
			}
		} else {
			err = fmt.Errorf("%w; %w", err, aerr)
		}
	}
	store, merr := state.OpenMemory()
	if merr != nil {
		return nil, stateProblem{}, fmt.Errorf("%w (and a database in memory: %w)", err, merr)
	}
	why := fmt.Sprintf("the state database cannot be opened: %v; cutover serves and supervises what runs, from memory, and records nothing: fix %s (free space, permissions) and run `cutover upgrade` to restart the daemon on it",
		err, path)
	log.Error(why)
	return store, stateProblem{degraded: why}, nil
}
