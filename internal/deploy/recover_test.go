package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/fleet"
	"github.com/cutover/cutover/internal/state"
)

// TestRecoverAfterDaemonDeath plays a daemon that died in the middle of a
// deploy: the live release runs, an instance of the release being deployed
// runs too, and the deploy is still recorded as running. The next daemon
// must keep the live instances (same processes), kill the other one, and
// record the deploy as interrupted.
func TestRecoverAfterDaemonDeath(t *testing.T) {
	h := newHarness(t, setup{instances: 2})
	ctx := context.Background()
	v1 := h.mustDeploy("v1", nil)
	livePIDs := h.pids(v1)

	first := h.eng
	stray, err := first.Releases().Prepare(h.source("v2", nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.PutRelease(ctx, state.Release{ID: stray, CreatedAt: time.Now(), Dir: first.Releases().Dir(stray),
		Status: state.ReleasePrepared, ConfigJSON: appConfigJSON(h.cfg.App)}); err != nil {
		t.Fatal(err)
	}
	deployID, err := h.store.BeginDeploy(ctx, state.Deploy{Kind: "deploy", FromRelease: v1, StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.SetDeployRelease(ctx, deployID, stray); err != nil {
		t.Fatal(err)
	}
	m, err := first.fleet.Start(h.cfg.App, stray, 1)
	if err != nil {
		t.Fatalf("start the stray instance: %v", err)
	}
	strayPID := m.(*fleet.Instance).Status().PID
	rows, err := h.store.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rows, func(in state.Instance) bool { return in.Release == stray && in.PID == strayPID }) {
		t.Fatalf("the stray instance (pid %d) is not recorded: %+v", strayPID, rows)
	}

	// The daemon goes away without stopping anything.
	closeLikeADeadDaemon(first)
	if !alive(strayPID) {
		t.Fatalf("stray pid %d died with the engine; Close must leave instances running", strayPID)
	}

	second := h.newEngine()
	if err := second.Recover(ctx); err != nil {
		t.Fatalf("recover: %v", err)
	}

	if alive(strayPID) {
		t.Errorf("stray instance pid %d of %s still runs after Recover", strayPID, stray)
	}
	if got := h.pids(v1); !slices.Equal(got, livePIDs) {
		t.Errorf("pids of the live release after Recover: got %v, want the same processes %v", got, livePIDs)
	}
	st, err := second.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range st.Instances {
		if !in.Adopted {
			t.Errorf("instance %s: got adopted=false, want it adopted", in.ID)
		}
	}
	if got, want := h.releasesOfInstances(), []string{v1, v1}; !slices.Equal(got, want) {
		t.Errorf("releases of instances: got %q, want %q", got, want)
	}
	rows, err = h.store.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range rows {
		if in.Release != v1 {
			t.Errorf("instance row %s of %s left after Recover", in.ID, in.Release)
		}
	}
	d, err := h.store.Deploy(ctx, deployID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != state.DeployInterrupted {
		t.Errorf("deploy #%d state: got %q, want %q", deployID, d.State, state.DeployInterrupted)
	}
	if got := h.releaseStatus(stray); got != state.ReleaseFailed {
		t.Errorf("status of %s: got %q, want %q", stray, got, state.ReleaseFailed)
	}
	h.assertServes("v1")
}

// TestRecoverRestartsMissingInstances: an instance of the live release that
// died with the daemon is started again, so the app is back to full size.
func TestRecoverRestartsMissingInstances(t *testing.T) {
	h := newHarness(t, setup{instances: 2})
	ctx := context.Background()
	v1 := h.mustDeploy("v1", nil)
	first := h.eng
	ms := first.instancesOf(v1, false)
	closeLikeADeadDaemon(first)
	// One instance dies while no daemon watches.
	gone := ms[0]
	// Its whole process group, as the supervisor's Kill does.
	gonePID := gone.(*fleet.Instance).Status().PID
	if err := syscall.Kill(-gonePID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDead(t, gonePID)
	keptPID := ms[1].(*fleet.Instance).Status().PID

	second := h.newEngine()
	if err := second.Recover(ctx); err != nil {
		t.Fatalf("recover: %v", err)
	}
	pids := h.pids(v1)
	if len(pids) != 2 || !slices.Contains(pids, keptPID) {
		t.Errorf("pids of %s after Recover: got %v, want 2 including the survivor %d", v1, pids, keptPID)
	}
	h.assertServes("v1")
}

// TestRecoverKeepsRestartCount: the crashes an instance had under the
// previous daemon still count after the next one adopts it; before, status
// showed 0 restarts after every daemon restart.
func TestRecoverKeepsRestartCount(t *testing.T) {
	h := newHarness(t, setup{instances: 1})
	ctx := context.Background()
	v1 := h.mustDeploy("v1", nil)
	pid := h.pids(v1)[0]
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		st, err := h.eng.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Instances) == 1 && st.Instances[0].Restarts == 1 && st.Instances[0].Healthy && st.Instances[0].PID != pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed instance was not restarted within %v: %+v", waitTimeout, st.Instances)
		}
		time.Sleep(20 * time.Millisecond)
	}

	closeLikeADeadDaemon(h.eng)
	second := h.newEngine()
	if err := second.Recover(ctx); err != nil {
		t.Fatalf("recover: %v", err)
	}
	st, err := second.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Instances) != 1 {
		t.Fatalf("instances after Recover: %+v", st.Instances)
	}
	in := st.Instances[0]
	if !in.Adopted || in.Restarts != 1 || in.LastExit != "signal: killed" {
		t.Errorf("adopted instance: got adopted=%v restarts=%d last exit %q; want adopted, 1, %q", in.Adopted, in.Restarts, in.LastExit, "signal: killed")
	}
}

// TestRecoverStopsLeftoverCommands: a deploy records the process group of
// each command it runs (here a before_switch hook) while it runs, and
// forgets it once it ended. The groups a killed daemon left recorded are
// stopped by the next daemon's Recover — whether their leader still runs
// or only what it started does — and a record whose pid now names another
// process (a start time that differs) is left alone.
func TestRecoverStopsLeftoverCommands(t *testing.T) {
	h := newHarness(t, setup{instances: 1, deploy: []string{`before_switch = "sleep 1"`}})
	dir := h.eng.commandsDir()
	r, err := h.eng.Start(Request{Source: h.source("v1", nil)})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	waitEvent(t, r, &i, isStep(StepHook, "start"))
	var ents []os.DirEntry
	for deadline := time.Now().Add(500 * time.Millisecond); len(ents) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // the step starts a moment before its command
		ents, _ = os.ReadDir(dir)
	}
	if len(ents) != 1 {
		t.Fatalf("while the hook runs, %s holds %d records, want 1 (the hook's group)", dir, len(ents))
	}
	pgid, _ := strconv.Atoi(ents[0].Name())
	if !alive(pgid) {
		t.Errorf("the record names pgid %d, which is not running", pgid)
	}
	if _, err := r.Wait(context.Background()); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("after the hook ended, %s still holds %d record(s)", dir, len(ents))
	}

	// What a daemon killed during a command leaves: its groups recorded.
	group := func(script string) *exec.Cmd {
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Dir = h.root
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
		return cmd
	}
	withLeader := group("sleep 30; true")
	h.eng.trackCommand(withLeader.Process.Pid)
	leaderless := group("sleep 30 & echo started")
	h.eng.trackCommand(leaderless.Process.Pid)
	leaderless.Wait() // the leader exits, its sleep runs on in the group
	if err := syscall.Kill(-leaderless.Process.Pid, 0); err != nil {
		t.Fatalf("the leaderless group is gone already: %v", err)
	}
	reused := group("sleep 30; true")
	os.WriteFile(filepath.Join(dir, strconv.Itoa(reused.Process.Pid)), []byte("1\n"), 0o644)

	closeLikeADeadDaemon(h.eng)
	second := h.newEngine()
	if err := second.Recover(context.Background()); err != nil {
		t.Fatalf("recover: %v", err)
	}
	for name, pgid := range map[string]int{"with its leader": withLeader.Process.Pid, "without its leader": leaderless.Process.Pid} {
		deadline := time.Now().Add(5 * time.Second)
		for groupRuns(pgid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if groupRuns(pgid) {
			t.Errorf("the group %s (%d) a dead daemon left still runs after Recover", name, pgid)
		}
	}
	if !alive(reused.Process.Pid) {
		t.Errorf("Recover killed pid %d, whose start time is not the recorded one", reused.Process.Pid)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("after Recover, %s still holds %d record(s)", dir, len(ents))
	}
}

// groupRuns reports whether a live (not zombie) process is in group pgid.
func groupRuns(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if err != nil || i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}
