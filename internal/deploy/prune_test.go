package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cutover/cutover/internal/state"
)

// TestPruneProtectsLiveAndRollbackTarget: with keep = 2 and four releases,
// the two removed are the oldest that are neither live nor the rollback
// target, even though those two are the oldest of all.
func TestPruneProtectsLiveAndRollbackTarget(t *testing.T) {
	h := newHarness(t, setup{release: []string{`keep = 2`}})
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const (
		target = "20260101T000001-target" // oldest, retired most recently
		older  = "20260101T000002-older"  // retired before target
		live   = "20260101T000003-live"
		failed = "20260101T000004-failed"
	)
	putRelease(t, h, live, state.ReleasePrepared, time.Time{}, false)
	if err := h.store.SetActive(ctx, live, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	putRelease(t, h, target, state.ReleaseRetired, t0.Add(3*time.Hour), false)
	putRelease(t, h, older, state.ReleaseRetired, t0.Add(2*time.Hour), false)
	putRelease(t, h, failed, state.ReleaseFailed, time.Time{}, false)

	removed, err := h.eng.Prune(ctx)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	if diff := cmp.Diff([]string{failed, older}, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	for id, wantOnDisk := range map[string]bool{target: true, older: false, live: true, failed: false} {
		_, err := os.Stat(h.eng.Releases().Dir(id))
		if onDisk := err == nil; onDisk != wantOnDisk {
			t.Errorf("%s on disk: got %v, want %v", id, onDisk, wantOnDisk)
		}
	}
	for id, want := range map[string]state.ReleaseStatus{target: state.ReleaseRetired, older: state.ReleasePruned,
		live: state.ReleaseLive, failed: state.ReleasePruned} {
		if got := h.releaseStatus(id); got != want {
			t.Errorf("status of %s: got %q, want %q", id, got, want)
		}
	}

	again, err := h.eng.Prune(ctx)
	if err != nil || len(again) != 0 {
		t.Errorf("second prune: got %v, %v; want nothing removed", again, err)
	}
}

func TestPruneRefusedDuringDeploy(t *testing.T) {
	h := newHarness(t, setup{})
	h.mustDeploy("v1", nil)
	r, err := h.eng.Start(Request{Source: h.source("v2", nil), Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	waitEvent(t, r, &i, func(ev Event) bool { return ev.Type == "preview" })
	_, err = h.eng.Prune(context.Background())
	var busy *BusyError
	if !errors.As(err, &busy) {
		t.Errorf("prune during a deploy: got %v, want *BusyError", err)
	}
	if _, err := h.eng.Control(ActionAbort); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := r.Wait(ctx); !errors.Is(err, ErrAborted) {
		t.Errorf("aborted preview: got %v, want ErrAborted", err)
	}
}

// TestPruneRemovesNeverLiveFirst: after a run of failed deploys, keep = 5
// keeps the five releases that went live, not the failed ones: before,
// three failed releases took three places and every earlier good release
// but the rollback target was pruned, so no rollback could reach them.
func TestPruneRemovesNeverLiveFirst(t *testing.T) {
	h := newHarness(t, setup{release: []string{`keep = 5`}})
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var good []string
	for i := 1; i <= 5; i++ {
		id := fmt.Sprintf("20260101T00000%d-good%d", i, i)
		putRelease(t, h, id, state.ReleaseRetired, t0.Add(time.Duration(i)*time.Hour), false)
		good = append(good, id)
	}
	live := "20260101T000006-live"
	putRelease(t, h, live, state.ReleasePrepared, time.Time{}, false)
	if err := h.store.SetActive(ctx, live, t0.Add(6*time.Hour)); err != nil {
		t.Fatal(err)
	}
	failed := []string{"20260101T000007-bad1", "20260101T000008-bad2", "20260101T000009-bad3"}
	for _, id := range failed {
		putRelease(t, h, id, state.ReleaseFailed, time.Time{}, false)
	}
	leftover := "20260101T000010-prepared" // a deploy interrupted after prepare
	putRelease(t, h, leftover, state.ReleasePrepared, time.Time{}, false)

	removed, err := h.eng.Prune(ctx)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	want := append(append([]string(nil), failed...), leftover, good[0])
	if diff := cmp.Diff(want, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	for _, id := range append(good[1:], live) {
		if _, err := os.Stat(h.eng.Releases().Dir(id)); err != nil {
			t.Errorf("%s (went live) was pruned: %v", id, err)
		}
	}
	// Room left by fewer good releases is used by the newest never-live ones.
	h2 := newHarness(t, setup{release: []string{`keep = 3`}})
	putRelease(t, h2, good[0], state.ReleaseRetired, t0, false)
	putRelease(t, h2, live, state.ReleasePrepared, time.Time{}, false)
	if err := h2.store.SetActive(ctx, live, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, id := range failed {
		putRelease(t, h2, id, state.ReleaseFailed, time.Time{}, false)
	}
	removed, err = h2.eng.Prune(ctx)
	if diff := cmp.Diff(failed[:2], removed); err != nil || diff != "" {
		t.Errorf("keep = 3 with two good releases: removed (-want +got):\n%s%v", diff, err)
	}
}

// logDirs lists the release directories of logs/.
func logDirs(t *testing.T, h *harness) []string {
	t.Helper()
	ents, err := os.ReadDir(h.cfg.LogsDir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestPruneRemovesLogs: a pruned release's logs go with it, and so do
// those an older cutover left of releases it had pruned: logs/ holds the
// logs of the releases on disk, no more (before, 12 log folders were found
// for 5 releases).
func TestPruneRemovesLogs(t *testing.T) {
	h := newHarness(t, setup{release: []string{`keep = 2`}})
	gone := filepath.Join(h.cfg.LogsDir(), "20250101T000000-gone")
	if err := os.MkdirAll(gone, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gone, "20250101T000000-gone-1.log"), []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range []string{"v1", "v2", "v3", "v4"} {
		ids = append(ids, h.mustDeploy(v, nil))
	}
	onDisk, err := h.eng.Releases().List()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids[2:], onDisk); diff != "" {
		t.Fatalf("releases on disk (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(onDisk, logDirs(t, h)); diff != "" {
		t.Errorf("log folders (-releases on disk +logs/):\n%s", diff)
	}
}

// TestTrimLogsHoldsTotalCap: past app.logs_max_total, the least recently
// written log files go — never the files running instances write to.
func TestTrimLogsHoldsTotalCap(t *testing.T) {
	h := newHarness(t, setup{app: []string{`log_max_size = 65536`, `logs_max_total = 262144`}})
	live := h.mustDeploy("v1", nil)
	old := filepath.Join(h.cfg.LogsDir(), live, "stopped-instance.log")
	if err := os.WriteFile(old, make([]byte, 200<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(h.cfg.LogsDir(), live, "other-instance.log")
	if err := os.WriteFile(newer, make([]byte, 100<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	// The running instance's own file, made large by hand.
	running := filepath.Join(h.cfg.LogsDir(), live, h.eng.instancesOf("", true)[0].ID()+".log")
	f, err := os.OpenFile(running, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 64<<10))
	f.Close()
	if err := os.Chtimes(running, past.Add(-time.Hour), past.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}

	h.eng.fleet.TrimLogs()
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the oldest log (%s) was kept: %v", old, err)
	}
	for _, p := range []string{newer, running} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v; want it kept (under the cap once the oldest is gone, or written to)", p, err)
		}
	}
}
