package deploy

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

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
	m, err := first.startInstance(first.spec(h.cfg.App, stray, 1, 0), h.cfg.App)
	if err != nil {
		t.Fatalf("start the stray instance: %v", err)
	}
	strayPID := m.status().PID
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
	gone.mu.Lock()
	inst := gone.inst
	gone.mu.Unlock()
	inst.Kill()
	waitDead(t, gone.status().PID)
	keptPID := ms[1].status().PID

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
