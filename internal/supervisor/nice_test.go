package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// threadNices returns the nice value of every thread of pid, from /proc.
func threadNices(t *testing.T, pid int) map[int]int {
	t.Helper()
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int]int)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "stat"))
		if err != nil {
			continue // the thread ended
		}
		// After "pid (comm) ", the fields from the third on: nice is the
		// 19th (proc(5)).
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		n, err := strconv.Atoi(f[19-3])
		if err != nil {
			t.Fatalf("%s/%s/stat: %v", dir, e.Name(), err)
		}
		tid, _ := strconv.Atoi(e.Name())
		out[tid] = n
	}
	return out
}

// wantNice checks that every thread of every pid runs at nice want.
func wantNice(t *testing.T, what string, want int, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		for tid, n := range threadNices(t, pid) {
			if n != want {
				t.Errorf("%s: pid %d thread %d at nice %d, want %d", what, pid, tid, n, want)
			}
		}
	}
}

// bootBase returns the test's own nice value, skipping the test when a
// boot priority 3 below it cannot be set and undone.
func bootBase(t *testing.T) int {
	t.Helper()
	if !PriorityRestorable() {
		t.Skip("this process may not raise a priority (not root, no CAP_SYS_NICE or RLIMIT_NICE)")
	}
	base, err := ThreadNice(0)
	if err != nil {
		t.Fatal(err)
	}
	if base+3 > maxNice {
		t.Skipf("the test runs at nice %d already", base)
	}
	return base
}

func TestBootNice(t *testing.T) {
	base := bootBase(t)
	n := newNotifier(t)
	s, _ := newSupervisor(t, Options{})
	spec := childSpec(t, "stubborn", n)
	spec.StopTimeout = 100 * time.Millisecond
	spec.BootNice = 3
	inst, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	// The instance and the child it started, every thread of each.
	pids := n.ready(t)
	wantNice(t, "booting", base+3, pids...)
	inst.EndBoot()
	wantNice(t, "after EndBoot", base, pids...)
	inst.EndBoot()
	wantNice(t, "after a second EndBoot", base, pids...)
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestBootNiceAgainAfterCrash(t *testing.T) {
	base := bootBase(t)
	n := newNotifier(t)
	s, rec := newSupervisor(t, Options{BackoffMin: 10 * time.Millisecond})
	spec := childSpec(t, "http", n)
	spec.BootNice = 3
	inst, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	first := n.ready(t)[0]
	inst.EndBoot()
	wantNice(t, "healthy", base, first)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	up := rec.waitFor(t, "running again", func(s Status) bool { return s.State == Running && s.PID != first })
	n.ready(t)
	wantNice(t, "restarted after a crash", base+3, up.PID)
	inst.EndBoot()
	wantNice(t, "restarted and healthy", base, up.PID)
}

func TestNoBootNice(t *testing.T) {
	base, err := ThreadNice(0)
	if err != nil {
		t.Fatal(err)
	}
	n := newNotifier(t)
	s, _ := newSupervisor(t, Options{})
	inst, err := s.Start(childSpec(t, "http", n))
	if err != nil {
		t.Fatal(err)
	}
	pid := n.ready(t)[0]
	wantNice(t, "BootNice 0", base, pid)
	inst.EndBoot() // nothing to undo
	wantNice(t, "after EndBoot", base, pid)
}

func TestBootNiceProblem(t *testing.T) {
	yes := func() bool { return true }
	no := func() bool { return false }
	cases := []struct {
		name       string
		bootNice   int
		base       int
		baseErr    error
		restorable func() bool
		want       string // a part of the answer; "" for none
	}{
		{"off", 0, 0, nil, no, ""},
		{"works", 10, 0, nil, yes, ""},
		{"works from nice 18", 10, 18, nil, yes, ""},
		{"daemon at nice 19", 10, 19, nil, yes, "lowest priority (nice 19)"},
		{"daemon at nice 19, not restorable either", 10, 19, nil, no, "lowest priority (nice 19)"},
		{"not restorable", 10, 0, nil, no, "CAP_SYS_NICE"},
		{"nice unknown, not restorable", 10, 0, errors.New("no"), no, "CAP_SYS_NICE"},
	}
	for _, c := range cases {
		got := bootNiceProblem(c.bootNice, c.base, c.baseErr, c.restorable)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want one saying %q", c.name, got, c.want)
		}
	}
}
