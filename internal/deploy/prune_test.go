package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
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
