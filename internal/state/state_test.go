package state

import (
	"context"
	"errors"
	"path/filepath"
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
