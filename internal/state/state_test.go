package state

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSetActiveRetiresPrevious(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	t0 := time.UnixMilli(1_700_000_000_000)
	for _, id := range []string{"r1", "r2"} {
		if err := s.PutRelease(ctx, Release{ID: id, CreatedAt: t0, Source: "/src", Dir: "/d/" + id, Status: ReleasePrepared}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetActive(ctx, "r1", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetActive(ctx, "r2", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Active(ctx)
	if err != nil || got != "r2" {
		t.Fatalf("Active() = %q, %v; want %q", got, err, "r2")
	}
	r1, err := s.Release(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if r1.Status != ReleaseRetired || !r1.RetiredAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("r1 = %v retired %v; want retired at %v", r1.Status, r1.RetiredAt, t0.Add(time.Minute))
	}
	if err := s.SetActive(ctx, "nope", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetActive(nope) = %v; want ErrNotFound", err)
	}
	if a, _ := s.Active(ctx); a != "r2" {
		t.Errorf("failed SetActive changed the active release to %q", a)
	}
}

func TestInstancesRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	in := Instance{ID: "r1-1", Release: "r1", PID: 42, StartTime: 1 << 40, Port: 9000, State: "running", Restarts: 2, LastExit: "signal: killed", UpdatedAt: time.UnixMilli(5)}
	if err := s.PutInstance(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.Instances(ctx)
	if err != nil || len(got) != 1 || got[0] != in {
		t.Fatalf("Instances() = %+v, %v; want [%+v]", got, err, in)
	}
	if err := s.DeleteInstance(ctx, "r1-1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Instances(ctx); len(got) != 0 {
		t.Errorf("after delete: %+v", got)
	}
}

func TestDeployHistory(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	id, err := s.BeginDeploy(ctx, Deploy{Kind: "deploy", Release: "r2", FromRelease: "r1", StartedAt: time.UnixMilli(1)})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"prepare", "boot"} {
		if err := s.AddStep(ctx, id, Step{Name: name, Status: "ok", StartedAt: time.UnixMilli(1), FinishedAt: time.UnixMilli(2)}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.InterruptRunning(ctx, time.UnixMilli(3))
	if err != nil || len(ds) != 1 {
		t.Fatalf("InterruptRunning = %v, %v", ds, err)
	}
	d, err := s.Deploy(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != DeployInterrupted || len(d.Steps) != 2 || d.Steps[1].Name != "boot" {
		t.Errorf("deploy = %+v; want interrupted with steps prepare, boot", d)
	}
}

func TestLastRetired(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.LastRetired(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LastRetired on an empty history = %v; want ErrNotFound", err)
	}
	t0 := time.UnixMilli(1_700_000_000_000)
	for i, id := range []string{"r1", "r2", "r3", "r4"} {
		if err := s.PutRelease(ctx, Release{ID: id, CreatedAt: t0.Add(time.Duration(i) * time.Second), Source: "/src", Dir: "/d/" + id, Status: ReleasePrepared}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetActive(ctx, "r1", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LastRetired(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LastRetired with only a live release = %v; want ErrNotFound", err)
	}
	for i, id := range []string{"r2", "r3"} {
		if err := s.SetActive(ctx, id, t0.Add(time.Duration(i+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.LastRetired(ctx)
	if err != nil || got.ID != "r2" || got.Status != ReleaseRetired {
		t.Fatalf("LastRetired = %s (%s), %v; want r2, retired", got.ID, got.Status, err)
	}
	// A release pruned since does not count, whatever its retirement time.
	if err := s.SetReleaseStatus(ctx, "r2", ReleasePruned); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LastRetired(ctx); err != nil || got.ID != "r1" {
		t.Fatalf("LastRetired after pruning r2 = %s, %v; want r1", got.ID, err)
	}
	// Retired at the same millisecond: the older release wins.
	r4 := Release{ID: "r4", CreatedAt: t0.Add(3 * time.Second), Source: "/src", Dir: "/d/r4", Status: ReleaseRetired, RetiredAt: time.UnixMilli(1_800_000_000_000)}
	r0 := Release{ID: "r0", CreatedAt: t0.Add(-time.Second), Source: "/src", Dir: "/d/r0", Status: ReleaseRetired, RetiredAt: r4.RetiredAt}
	for _, r := range []Release{r4, r0} {
		if err := s.PutRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.LastRetired(ctx); err != nil || got.ID != "r0" {
		t.Fatalf("LastRetired with a tie = %s, %v; want r0 (created first)", got.ID, err)
	}
}

// BenchmarkPreviousRelease finds the release retired last in a history of
// 1,000 deploys, as every deploy's retention does: by reading every release
// (as before) and with LastRetired.
func BenchmarkPreviousRelease(b *testing.B) {
	ctx := context.Background()
	s, err := Open(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t0 := time.UnixMilli(1_700_000_000_000)
	meta := strings.Repeat("x", 600) // the size of a typical meta_json and config_json
	for i := range 1000 {
		id := fmt.Sprintf("r%04d", i)
		if err := s.PutRelease(ctx, Release{ID: id, CreatedAt: t0.Add(time.Duration(i) * time.Minute), Source: "/src", Dir: "/d/" + id,
			Status: ReleasePrepared, ConfigJSON: meta, MetaJSON: meta}); err != nil {
			b.Fatal(err)
		}
		if err := s.SetActive(ctx, id, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			b.Fatal(err)
		}
		// Retention pruned all but the last few.
		if i > 0 && i < 990 {
			if err := s.SetReleaseStatus(ctx, fmt.Sprintf("r%04d", i-1), ReleasePruned); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("read every release", func(b *testing.B) {
		for b.Loop() {
			rels, err := s.Releases(ctx)
			if err != nil {
				b.Fatal(err)
			}
			var prev *Release
			for i := range rels {
				if rels[i].Status == ReleaseRetired && (prev == nil || rels[i].RetiredAt.After(prev.RetiredAt)) {
					prev = &rels[i]
				}
			}
			if prev == nil || prev.ID != "r0998" {
				b.Fatalf("previous release: got %v, want r0998", prev)
			}
		}
	})
	b.Run("LastRetired", func(b *testing.B) {
		for b.Loop() {
			r, err := s.LastRetired(ctx)
			if err != nil || r.ID != "r0998" {
				b.Fatalf("LastRetired = %s, %v; want r0998", r.ID, err)
			}
		}
	})
}

// BenchmarkPutInstance is one small write, as a deploy makes a dozen of.
func BenchmarkPutInstance(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	in := Instance{ID: "r-1", Release: "r", PID: 10, StartTime: 5, Port: 4001, State: "running", UpdatedAt: time.Now()}
	for b.Loop() {
		if err := s.PutInstance(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	t0 := time.UnixMilli(1_700_000_000_000)
	done := make(chan error, 4)
	for w := range 4 {
		go func() {
			for i := range 20 {
				id := fmt.Sprintf("w%d-r%d", w, i)
				if err := s.PutRelease(ctx, Release{ID: id, CreatedAt: t0, Source: "/src", Dir: "/d/" + id, Status: ReleasePrepared}); err != nil {
					done <- err
					return
				}
				if err := s.SetActive(ctx, id, t0.Add(time.Duration(i)*time.Second)); err != nil {
					done <- err
					return
				}
				if _, err := s.Releases(ctx); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	rels, err := s.Releases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, r := range rels {
		if r.Status == ReleaseLive {
			live++
		}
	}
	if len(rels) != 80 || live != 1 {
		t.Errorf("got %d releases, %d live; want 80, 1", len(rels), live)
	}
}
