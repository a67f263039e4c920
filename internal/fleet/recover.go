package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/instance"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/supervisor"
)

// Recover brings the instances in line with the live release when the
// daemon starts: of the instances recorded in state, and those found
// running (found, from Find) that state does not record, the ones of
// active that still run are adopted (the app never stopped) and every
// other is stopped. active "" stops them all. StartMissing then starts
// what active lacks.
func (f *Fleet) Recover(ctx context.Context, active string, app config.App, found []state.Instance) {
	rows, err := f.store.Instances(ctx)
	if err != nil {
		f.markUnsaved("read the instances", err)
	}
	rows = f.addFound(rows, found)
	used := map[int]bool{} // instance numbers in use
	for _, row := range rows {
		n := instance.Number(row.ID, active)
		if row.Release != active || active == "" || n == 0 || used[n] {
			f.log.Info("stopping an instance of a release that is not live", "instance", row.ID, "release", row.Release, "pid", row.PID)
			if err := supervisor.KillGroup(row.PID, row.StartTime, 10*time.Second); err != nil {
				f.log.Warn("stop leftover instance", "instance", row.ID, "pid", row.PID, "err", err)
			}
			f.forget(ctx, row.ID)
			continue
		}
		spec, err := f.spec(app, active, n, row.Port, f.adoptedTCPPorts(app, row))
		if err == nil {
			_, err = f.adoptInstance(spec, app, row.PID, row.StartTime, supervisor.History{Restarts: row.Restarts, LastExit: row.LastExit})
		}
		if err != nil {
			if _, gone := supervisor.ProcStartTime(row.PID); gone == nil && f.sameProcess(row) {
				// Alive but not adoptable: stopped, never left behind.
				f.log.Warn("cannot adopt a running instance; stopping it", "instance", row.ID, "pid", row.PID, "err", err)
				if err := supervisor.KillGroup(row.PID, row.StartTime, 10*time.Second); err != nil {
					f.log.Warn("stop instance", "instance", row.ID, "pid", row.PID, "err", err)
				}
			} else {
				f.log.Warn("instance is gone; starting a new one", "instance", row.ID, "pid", row.PID, "err", err)
			}
			f.forget(ctx, row.ID)
			continue
		}
		used[n] = true
		f.log.Info("adopted instance", "instance", row.ID, "pid", row.PID, "port", row.Port)
	}
}

// adoptedTCPPorts returns the TCP ports a running instance was started
// with, read from its environment as PORT is (see Find): an adopted
// instance keeps listening on them, so they must not be picked anew.
func (f *Fleet) adoptedTCPPorts(app config.App, row state.Instance) map[string]int {
	if len(app.TCP) == 0 {
		return nil
	}
	env, err := supervisor.ProcEnv(row.PID)
	if err != nil {
		f.log.Warn("read an instance's environment for its TCP ports", "instance", row.ID, "pid", row.PID, "err", err)
		return nil
	}
	ports := tcpPorts(app, func(k string) string { return env[k] })
	for _, t := range app.TCP {
		if ports[t.PortEnv] == 0 {
			f.noteRecovery(fmt.Sprintf("instance %s (pid %d) has no %s in its environment (started before [[app.tcp]] %s was added?): "+
				"its TCP port gets a new number it does not listen on; deploy again to start instances that have it", row.ID, row.PID, t.PortEnv, t.Listen))
		}
	}
	return ports
}

// StartMissing starts instances of active until it has app.Instances,
// numbered from the lowest free number. One that cannot start is noted
// (Options.Note) and ends it: the release serves with what it has.
func (f *Fleet) StartMissing(active string, app config.App) {
	used := map[int]bool{}
	have := f.instancesOf(active, false)
	for _, m := range have {
		used[instance.Number(m.id, active)] = true
	}
	adopted := len(have)
	for n := 1; adopted < app.Instances; n++ {
		if used[n] {
			continue
		}
		spec, err := f.spec(app, active, n, 0, nil)
		if err == nil {
			_, err = f.startInstance(spec, app)
		}
		if err != nil {
			f.noteRecovery(fmt.Sprintf("could not start instance %d of the live release %s (%v): it serves with %d of %d instances; deploy again to restore them",
				n, active, err, adopted, app.Instances))
			break
		}
		used[n] = true
		adopted++
	}
}

// Find returns the instance processes of this app that run now,
// recorded or not: process group leaders whose environment has this app's
// CUTOVER_APP and whose drain file is under this data dir, or whose
// working directory is under releases/. Each gets its instance id from
// its drain file, its release from CUTOVER_RELEASE, its port from PORT.
// An instance caught while its shell execs the app is waited for (see
// supervisor.Find); a process that could not be checked is noted.
func (f *Fleet) Find() []state.Instance {
	cfg := f.cfg
	procs, err := supervisor.Find("CUTOVER_APP", cfg.App.Name)
	switch {
	case err != nil && procs == nil: // /proc could not be listed
		f.log.Warn("scan /proc for running instances", "err", err)
		return nil
	case err != nil:
		// Processes stuck in execve: not known to be instances, so
		// neither adopted nor stopped.
		f.noteRecovery(fmt.Sprintf("the scan of /proc for running instances of %s could not check some processes (%v): "+
			"if one is an instance of %s (CUTOVER_APP=%s in /proc/PID/environ), stop it (kill -TERM -PID) or restart the daemon",
			cfg.App.Name, err, cfg.App.Name, cfg.App.Name))
	}
	drainDir := filepath.Join(cfg.DataDir, "drain") + string(filepath.Separator)
	relDir := f.rel.Dir("") + string(filepath.Separator)
	var out []state.Instance
	for _, p := range procs {
		df := p.Env[DrainFileEnv]
		ours := strings.HasPrefix(df, drainDir)
		if !ours && !strings.HasPrefix(p.Cwd, relDir) {
			continue
		}
		in := state.Instance{Release: p.Env["CUTOVER_RELEASE"], PID: p.PID, StartTime: p.StartTime, State: "running"}
		if ours {
			in.ID = filepath.Base(df)
		}
		in.Port, _ = strconv.Atoi(p.Env["PORT"]) //nolint:errcheck // 0: cannot be adopted, so it is stopped
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b state.Instance) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return cmp.Compare(a.StartTime, b.StartTime)
	})
	// A child the instance started in a session or group of its own
	// (setsid, setpgid: a detached worker) leads a group and carries the
	// instance's environment, drain file included. The instance is the
	// process the supervisor started: the oldest one with that id, as its
	// children start after it. The others are its children, which outlive
	// it by design (supervisor package doc): left alone.
	kept := out[:0]
	for i, in := range out {
		if i > 0 && in.ID != "" && in.ID == out[i-1].ID {
			f.log.Info("leaving alone a process that carries an instance's environment: a child it started in a group of its own",
				"instance", in.ID, "pid", in.PID, "instance_pid", kept[len(kept)-1].PID)
			continue
		}
		kept = append(kept, in)
	}
	return kept
}

// addFound merges the instances found running into the recorded rows: one
// that is recorded (same pid and start time) is left as is; one recorded
// under its id with another process that is gone (restarted while state.db
// could not be written) replaces that row; one whose id is recorded with a
// process that still runs is a child of that instance (Find keeps
// only the oldest process per id, and the recorded one may be older still)
// and is left alone; any other is added, so that it is adopted or stopped
// — never left running untracked.
func (f *Fleet) addFound(rows []state.Instance, found []state.Instance) []state.Instance {
	for _, in := range found {
		i := slices.IndexFunc(rows, func(r state.Instance) bool { return r.PID == in.PID && r.StartTime == in.StartTime })
		if i >= 0 {
			continue
		}
		if j := slices.IndexFunc(rows, func(r state.Instance) bool { return in.ID != "" && r.ID == in.ID }); j >= 0 {
			if !f.sameProcess(rows[j]) {
				f.noteRecovery(fmt.Sprintf("instance %s runs as pid %d (port %d), not as the pid %d state.db records: taken as the instance",
					in.ID, in.PID, in.Port, rows[j].PID))
				rows[j] = in
				f.markUnsaved("record instance "+in.ID, errors.New("found running, not recorded"))
				continue
			}
			// The recorded instance runs: in carries its id because the
			// instance started it (a detached child), not a stray
			// instance. Left alone, like any child that leaves the group.
			f.log.Info("leaving alone a process that carries an instance's environment: a child it started in a group of its own",
				"instance", in.ID, "pid", in.PID, "instance_pid", rows[j].PID)
			continue
		}
		f.noteRecovery(fmt.Sprintf("found instance %s of release %s running (pid %d, port %d) that state.db does not record",
			orUnknown(in.ID), in.Release, in.PID, in.Port))
		rows = append(rows, in)
	}
	return rows
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown id)"
	}
	return s
}

// sameProcess reports whether row's pid is still the process recorded,
// alive (a zombie, not yet reaped by whoever inherited it, is not).
func (f *Fleet) sameProcess(row state.Instance) bool {
	return supervisor.Alive(row.PID, row.StartTime)
}

// forget deletes an instance's row; a failure to write is reported
// (Options.StateFailed) and written later (see Flush).
func (f *Fleet) forget(ctx context.Context, id string) {
	if err := f.store.DeleteInstance(ctx, id); err != nil {
		f.markUnsaved("forget instance "+id, err)
	}
}

// Flush writes the instances as they are in memory to state (rows of
// instances that are gone deleted): what could not be written when they
// changed.
func (f *Fleet) Flush(ctx context.Context) error {
	rows, err := f.store.Instances(ctx)
	if err != nil {
		return err
	}
	f.mu.Lock()
	live := map[string]*Instance{}
	for id, m := range f.insts {
		live[id] = m
	}
	f.mu.Unlock()
	for _, row := range rows {
		if live[row.ID] == nil {
			if err := f.store.DeleteInstance(ctx, row.ID); err != nil {
				return err
			}
		}
	}
	for _, m := range live {
		st := m.status()
		if st.PID == 0 {
			continue
		}
		if err := f.store.PutInstance(ctx, state.Instance{
			ID: st.Instance, Release: st.Release, PID: st.PID, StartTime: st.StartTime, Port: st.Port,
			State: st.State.String(), Restarts: st.Restarts, LastExit: st.LastExit, UpdatedAt: time.Now(),
		}); err != nil {
			return err
		}
	}
	return nil
}
