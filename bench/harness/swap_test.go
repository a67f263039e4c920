package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestSwapper(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts bench/backend")
	}
	bin := filepath.Join(t.TempDir(), "backend")
	if out, err := exec.Command("go", "build", "-o", bin, "../backend").CombinedOutput(); err != nil {
		t.Fatalf("build bench/backend: %v\n%s", err, out)
	}
	s := &swapper{Bin: bin, Interval: 20 * time.Millisecond, HealthyAfter: 2}
	ctx := context.Background()

	w, err := s.swap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Two passing checks, Interval apart, at the least.
	if d := w.End.Sub(w.Start); d < s.Interval {
		t.Errorf("first swap took %v, want at least one interval (%v)", d, s.Interval)
	}
	first := s.prev
	if _, err := s.swap(ctx); err != nil {
		t.Fatal(err)
	}
	if first.ProcessState == nil {
		t.Errorf("pid %d of the first swap still runs after the second swap", first.Process.Pid)
	}
	second := s.prev
	if second == first || second.ProcessState != nil {
		t.Fatalf("second swap: want a new running copy, got %+v", second)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if second.ProcessState == nil || !second.ProcessState.Exited() {
		t.Errorf("pid %d still runs after close", second.Process.Pid)
	}
	if err := s.close(); err != nil {
		t.Errorf("second close: %v, want nil", err)
	}

	bad := &swapper{Bin: filepath.Join(t.TempDir(), "missing"), Interval: 10 * time.Millisecond, HealthyAfter: 1}
	if _, err := bad.swap(ctx); err == nil {
		t.Error("swap of a missing binary: got no error, want one")
	}
}
