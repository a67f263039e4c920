package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

	// A copy that exits at once is started again, then reported with its
	// stderr.
	dir := t.TempDir()
	script := filepath.Join(dir, "exits")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho started >> "+filepath.Join(dir, "count")+"\necho 'listen: address already in use' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	exits := &swapper{Bin: script, Interval: 10 * time.Millisecond, HealthyAfter: 1}
	_, err = exits.swap(ctx)
	if err == nil || !errors.Is(err, errExited) || !strings.Contains(err.Error(), "listen: address already in use") {
		t.Errorf("swap of a copy that exits: got %v, want an error saying it exited, with its stderr", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "count")); strings.Count(string(b), "started") != 3 {
		t.Errorf("copy started %d times, want 3", strings.Count(string(b), "started"))
	}
}
