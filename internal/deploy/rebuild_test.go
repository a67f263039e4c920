package deploy

import (
	"context"
	"fmt"
	"os"
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

// loseState gives the harness an empty state database, as a daemon finds
// one that was deleted, truncated, or restored without its -wal file.
func (h *harness) loseState() {
	h.t.Helper()
	store, err := state.Open(filepath.Join(h.t.TempDir(), "state.db"))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { store.Close() })
	h.store = store
}

// TestRecoverRebuildsLostState: a daemon that finds an empty state.db
// while the app runs serves the live release at once with the same
// processes (found by a scan of /proc), rebuilds the release history from
// releases/ (the previous release is the rollback target), says so in
// Status until the next deploy, and that deploy succeeds and stops the old
// instances. Before, it started with no live release: every request got
// 503 and the instances ran on untracked.
func TestRecoverRebuildsLostState(t *testing.T) {
	h := newHarness(t, setup{instances: 2})
	ctx := context.Background()
	v1 := h.mustDeploy("v1", nil)
	v2 := h.mustDeploy("v2", nil)
	livePIDs := h.pids(v2)

	closeLikeADeadDaemon(h.eng)
	h.loseState()
	second := h.newEngine()
	if err := second.Recover(ctx); err != nil {
		t.Fatalf("recover: %v", err)
	}
	if got := h.pids(v2); !slices.Equal(got, livePIDs) {
		t.Errorf("pids of %s after Recover: got %v, want the same processes %v", v2, got, livePIDs)
	}
	h.assertServes("v2")
	if got := h.active(); got != v2 {
		t.Errorf("live release in the rebuilt state: got %q, want %q", got, v2)
	}
	if got := h.releaseStatus(v1); got != state.ReleaseRetired {
		t.Errorf("status of %s in the rebuilt state: got %q, want retired (the rollback target)", v1, got)
	}
	rows, err := h.store.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Errorf("instances recorded in the rebuilt state: got %d, want 2: %+v", len(rows), rows)
	}
	st, err := second.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(st.Recovered, func(s string) bool { return strings.Contains(s, "current") && strings.Contains(s, v2) }) {
		t.Errorf("Status.Recovered does not say the live release came from `current`: %q", st.Recovered)
	}

	h.mustDeploy("v3", nil)
	h.assertServes("v3")
	for _, pid := range livePIDs {
		if alive(pid) {
			t.Errorf("pid %d of %s still runs after the next deploy", pid, v2)
		}
	}
	if st, err = second.Status(ctx); err != nil || len(st.Recovered) != 0 {
		t.Errorf("Status.Recovered after a deploy succeeded: got %q (%v), want none", st.Recovered, err)
	}
}

// TestRecoverWithoutReleasesDir: releases/ was deleted and one instance
// died while no daemon ran. The survivor is adopted and serves, the
// instance that cannot start (its directory is gone) is a line in Status,
// not an error that stops the daemon, and the next deploy succeeds.
func TestRecoverWithoutReleasesDir(t *testing.T) {
	h := newHarness(t, setup{instances: 2})
	ctx := context.Background()
	v1 := h.mustDeploy("v1", nil)
	pids := h.pids(v1)
	closeLikeADeadDaemon(h.eng)
	if err := os.RemoveAll(filepath.Join(h.cfg.DataDir, "releases")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDead(t, pids[0])

	second := h.newEngine()
	if err := second.Recover(ctx); err != nil {
		t.Fatalf("recover: %v", err)
	}
	if got := h.pids(v1); !slices.Equal(got, pids[1:]) {
		t.Errorf("pids of %s after Recover: got %v, want the survivor %v", v1, got, pids[1:])
	}
	h.assertServes("v1")
	st, err := second.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(st.Recovered, func(s string) bool { return strings.Contains(s, "could not start instance") }) {
		t.Errorf("Status.Recovered does not say an instance could not start: %q", st.Recovered)
	}
	h.mustDeploy("v2", nil)
	h.assertServes("v2")
	if alive(pids[1]) {
		t.Errorf("pid %d of %s still runs after the next deploy", pids[1], v1)
	}
}

// TestRecoverStopsUnrecordedStray: an instance of another release runs
// but state.db does not record it (its row was never written: a full
// disk). Recover finds it by its environment and stops it.
func TestRecoverStopsUnrecordedStray(t *testing.T) {
	h := newHarness(t, setup{instances: 1})
	ctx := context.Background()
	v1 := h.mustDeploy("v1", nil)
	first := h.eng
	stray, err := first.Releases().Prepare(h.source("v2", nil))
	if err != nil {
		t.Fatal(err)
	}
	m, err := first.fleet.Start(h.cfg.App, stray, 1)
	if err != nil {
		t.Fatal(err)
	}
	strayPID := m.(*fleet.Instance).Status().PID
	closeLikeADeadDaemon(first)
	if err := h.store.DeleteInstance(ctx, m.ID()); err != nil {
		t.Fatal(err)
	}

	second := h.newEngine()
	if err := second.Recover(ctx); err != nil {
		t.Fatalf("recover: %v", err)
	}
	for deadline := time.Now().Add(2 * time.Second); alive(strayPID) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // SIGKILL takes a moment to land
	}
	if alive(strayPID) {
		t.Errorf("unrecorded instance pid %d of %s still runs after Recover", strayPID, stray)
	}
	if got := h.releasesOfInstances(); !slices.Equal(got, []string{v1}) {
		t.Errorf("releases of instances: got %q, want [%s]", got, v1)
	}
}

// TestRecoverRemovesTemporaryDirs: what a prepare killed half-way left in
// releases/ is removed at start.
func TestRecoverRemovesTemporaryDirs(t *testing.T) {
	h := newHarness(t, setup{instances: 1})
	tmp := filepath.Join(h.cfg.DataDir, "releases", ".tmp-20261205T120000-v2-abcd")
	if err := os.MkdirAll(filepath.Join(tmp, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	closeLikeADeadDaemon(h.eng)
	if err := h.newEngine().Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("%s after Recover: got %v, want it removed", tmp, err)
	}
}

// TestRecoverLeavesDetachedChildren: an instance started a child in a
// session of its own (a detached worker), which carries the instance's
// environment and drain file and leads its own group. A daemon restart
// with state.db intact, and one that finds state.db lost, adopt the
// instance and leave the child running, as a child that leaves its
// instance's group outlives it. Before, the scan of /proc took the child
// for a second instance with a taken id and killed it at every start.
func TestRecoverLeavesDetachedChildren(t *testing.T) {
	h := newHarness(t, setup{instances: 1})
	ctx := context.Background()
	v1 := h.mustDeploy("v1", map[string]string{detachedChildFile: ""})
	pids := h.pids(v1)
	if len(pids) != 1 {
		t.Fatalf("pids of %s: got %v, want one", v1, pids)
	}
	b, err := os.ReadFile(filepath.Join(h.eng.Releases().Dir(v1), fmt.Sprintf("detached-%d", pids[0])))
	if err != nil {
		t.Fatalf("the instance did not start its detached child: %v", err)
	}
	child, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) }) //nolint:errcheck // gone already when the test failed
	if !alive(child) {
		t.Fatalf("detached child pid %d is not running", child)
	}

	for _, lose := range []bool{false, true} {
		closeLikeADeadDaemon(h.eng)
		if lose {
			h.loseState()
		}
		if err := h.newEngine().Recover(ctx); err != nil {
			t.Fatalf("recover (state lost: %v): %v", lose, err)
		}
		if !alive(child) {
			t.Fatalf("detached child pid %d was killed by Recover (state lost: %v)", child, lose)
		}
		if got := h.pids(v1); !slices.Equal(got, pids) {
			t.Errorf("pids of %s after Recover (state lost: %v): got %v, want the same process %v", v1, lose, got, pids)
		}
		h.assertServes("v1")
	}
}
