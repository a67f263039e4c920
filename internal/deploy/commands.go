package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The shell commands a deploy runs — git, the release's test and build,
// the before_switch and after_switch hooks — lead process groups of their
// own, which the daemon kills when it stops or the deploy is aborted. A
// daemon killed with -9 kills nothing: its commands would run on, orphans
// in a release directory nobody will use. So each command in flight is
// recorded as a file <data_dir>/commands/<pgid> holding the group
// leader's start time, removed once the group is gone; the next daemon
// stops every group still recorded before it recovers the instances.
//
// A kill in the microseconds between a command's start and its record
// leaves it unrecorded: the command is then the operator's to stop.

// commandsDir is where the commands in flight are recorded.
func (e *Engine) commandsDir() string { return filepath.Join(e.Config().DataDir, "commands") }

// trackCommand records the process group pgid of a command that just
// started, and returns what forgets it: a release.Started. A record
// that cannot be written (a full disk) is logged, not an error: the
// command runs all the same.
func (e *Engine) trackCommand(pgid int) func() {
	path := filepath.Join(e.commandsDir(), strconv.Itoa(pgid))
	start, err := e.procs.StartTime(pgid)
	if err == nil {
		if err = os.MkdirAll(e.commandsDir(), 0o700); err == nil {
			err = os.WriteFile(path, []byte(strconv.FormatUint(start, 10)+"\n"), 0o600)
		}
	}
	if err != nil {
		e.log.Warn("record a running command; a kill -9 of the daemon now would leave it running", "pgid", pgid, "err", err)
		os.Remove(path) //nolint:errcheck // a partial record is worse than none
		return nil
	}
	return func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			e.log.Warn("forget a finished command", "pgid", pgid, "err", err)
		}
	}
}

// stopLeftoverCommands kills the process group of every command a previous
// daemon recorded and did not see end, and forgets them.
func (e *Engine) stopLeftoverCommands() {
	ents, err := os.ReadDir(e.commandsDir())
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			e.log.Warn("list the commands a previous daemon left running", "dir", e.commandsDir(), "err", err)
		}
		return
	}
	for _, ent := range ents {
		path := filepath.Join(e.commandsDir(), ent.Name())
		pgid, err := strconv.Atoi(ent.Name())
		b, rerr := os.ReadFile(path)
		start, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || pgid <= 1 || rerr != nil || perr != nil {
			e.log.Warn("not a command record; removed", "path", path)
			os.Remove(path) //nolint:errcheck // best effort
			continue
		}
		e.stopLeftoverGroup(pgid, start)
		if err := os.Remove(path); err != nil {
			e.log.Warn("forget a stopped command", "path", path, "err", err)
		}
	}
}

// stopLeftoverGroup stops the process group pgid whose leader started at
// start: SIGTERM, then SIGKILL. The leader may be gone while others of
// its group run on; the group's id then cannot have been handed to another
// process (Linux reuses no pid that still names a group), so the group is
// still the command's. Only a leader alive with another start time is a
// reused pid, left alone.
func (e *Engine) stopLeftoverGroup(pgid int, start uint64) {
	now, err := e.procs.StartTime(pgid)
	if err == nil && now != start {
		return
	}
	if err == nil {
		e.log.Warn("stopping a command the previous daemon left running", "pgid", pgid)
		if err := e.procs.KillGroup(pgid, start, 5*time.Second); err != nil {
			e.log.Warn("stop a leftover command", "pgid", pgid, "err", err)
		}
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err == nil {
		e.log.Warn("killed what a command the previous daemon ran left in its group", "pgid", pgid)
	}
}
