package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartGivesPortEnvAndDir(t *testing.T) {
	t.Setenv("CUTOVER_TEST_NOT_INHERITED", "1")
	n := newNotifier(t)
	s, rec := newSupervisor(t, Options{})
	spec := childSpec(t, "http", n)
	inst, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	pid := n.ready(t)[0]
	st := inst.Status()
	if st.PID != pid || st.State != Running || st.Adopted || st.Port == 0 || st.Port != inst.Spec().Port {
		t.Fatalf("got status %+v, want running pid %d on the spec's port %d", st, pid, inst.Spec().Port)
	}
	if want, err := ProcStartTime(pid); err != nil || st.StartTime != want {
		t.Errorf("got start time %d, want %d (%v)", st.StartTime, want, err)
	}
	rec.waitFor(t, "running", func(s Status) bool { return s.State == Running && s.PID == pid })

	info := get(t, st.Port, "/")
	if info.PID != pid {
		t.Errorf("got pid %d, want %d: the shell did not exec the command", info.PID, pid)
	}
	if info.Port != strconv.Itoa(st.Port) {
		t.Errorf("got PORT %q, want %q", info.Port, strconv.Itoa(st.Port))
	}
	if info.Greeting != "hello from cutover" {
		t.Errorf("got greeting %q, want %q", info.Greeting, "hello from cutover")
	}
	wantDir, _ := filepath.EvalSymlinks(spec.Dir)
	if gotDir, _ := filepath.EvalSymlinks(info.Dir); gotDir != wantDir {
		t.Errorf("got working directory %q, want %q", gotDir, wantDir)
	}
	for _, kv := range info.Env {
		if strings.HasPrefix(kv, "CUTOVER_TEST_NOT_INHERITED=") {
			t.Errorf("got %q in the instance's environment, want only Spec.Env and PORT", kv)
		}
	}
	if st, err := procGroup(pid); err != nil || st != pid {
		t.Errorf("got process group %d (%v), want its own, %d", st, err, pid)
	}

	if _, err := s.Start(spec); err == nil {
		t.Errorf("second Start with instance id %q: got no error, want one", spec.Instance)
	}
	if got := s.Instances(); len(got) != 1 || got[0] != inst {
		t.Errorf("got %d instances, want the one started", len(got))
	}
}

func procGroup(pid int) (int, error) {
	st, err := readProcStat(pid)
	return st.pgrp, err
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestCrashRestartsWithBackoff(t *testing.T) {
	const backoff = 200 * time.Millisecond
	n := newNotifier(t)
	s, rec := newSupervisor(t, Options{BackoffMin: backoff})
	inst, err := s.Start(childSpec(t, "http", n))
	if err != nil {
		t.Fatal(err)
	}
	first := n.ready(t)[0]
	port := inst.Spec().Port

	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crash := rec.waitFor(t, "backoff", func(s Status) bool { return s.State == Backoff })
	if crash.Restarts != 1 || crash.LastExit != "signal: killed" {
		t.Errorf("got restarts %d, last exit %q, want 1, %q", crash.Restarts, crash.LastExit, "signal: killed")
	}
	up := rec.waitFor(t, "running again", func(s Status) bool { return s.State == Running })
	if up.PID == first || up.Port != port {
		t.Errorf("got pid %d on port %d, want a new pid (not %d) on the same port %d", up.PID, up.Port, first, port)
	}
	if waited := up.StartedAt.Sub(crash.LastExitAt); waited < backoff {
		t.Errorf("got restart %v after the crash, want at least the backoff %v", waited, backoff)
	}
	if second := n.ready(t)[0]; second != up.PID {
		t.Errorf("got ready from pid %d, want %d", second, up.PID)
	}
	if got := get(t, port, "/"); got.PID != up.PID {
		t.Errorf("got answer from pid %d, want %d", got.PID, up.PID)
	}
	if st := inst.Status(); st.Restarts != 1 || st.LastExit != "signal: killed" || st.State != Running {
		t.Errorf("got status %+v, want running after 1 restart", st)
	}
}

func TestCommandThatFailsIsRestarted(t *testing.T) {
	n := newNotifier(t)
	s, rec := newSupervisor(t, Options{})
	spec := childSpec(t, "http", n)
	spec.Command = "false"
	if _, err := s.Start(spec); err != nil {
		t.Fatal(err)
	}
	st := rec.waitFor(t, "second crash", func(s Status) bool { return s.State == Backoff && s.Restarts == 2 })
	if st.LastExit != "exit status 1" {
		t.Errorf("got last exit %q, want %q", st.LastExit, "exit status 1")
	}
}

func TestStopGraceful(t *testing.T) {
	n := newNotifier(t)
	s, rec := newSupervisor(t, Options{})
	spec := childSpec(t, "http", n)
	inst, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	pid := n.ready(t)[0]
	fd := pidfdOf(t, pid)

	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !exitsWithin(fd, 0) {
		t.Fatalf("pid %d still runs after Stop returned", pid)
	}
	st := inst.Status()
	if st.State != Stopped || st.LastExit != "exit status 0" || st.Restarts != 0 {
		t.Errorf("got state %v, last exit %q, restarts %d; want stopped, %q, 0", st.State, st.LastExit, st.Restarts, "exit status 0")
	}
	if b, _ := os.ReadFile(spec.LogPath); !strings.Contains(string(b), "got TERM") {
		t.Errorf("got log %q, want the instance to have handled SIGTERM", b)
	}
	states := statesOf(rec)
	if want := []State{Running, Stopping, Stopped}; !slices.Equal(states, want) {
		t.Errorf("got states %v, want %v", states, want)
	}
	if got := s.Instances(); len(got) != 0 {
		t.Errorf("got %d instances after Stop, want 0", len(got))
	}
	if err := inst.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func statesOf(rec *recorder) []State {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []State
	for _, s := range rec.list {
		out = append(out, s.State)
	}
	return out
}

func TestStopForcedKillsWholeGroup(t *testing.T) {
	n := newNotifier(t)
	s, _ := newSupervisor(t, Options{})
	spec := childSpec(t, "stubborn", n)
	spec.StopTimeout = 300 * time.Millisecond
	inst, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	pids := n.ready(t)
	if len(pids) != 2 {
		t.Fatalf("got pids %v, want the instance's and its child's", pids)
	}
	leader, grandchild := pidfdOf(t, pids[0]), pidfdOf(t, pids[1])

	start := time.Now()
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < spec.StopTimeout {
		t.Errorf("Stop returned after %v, want it to wait StopTimeout %v for the ignored SIGTERM", took, spec.StopTimeout)
	}
	if !exitsWithin(leader, 0) {
		t.Fatalf("pid %d still runs after Stop returned", pids[0])
	}
	if got := inst.Status().LastExit; got != "signal: killed" {
		t.Errorf("got last exit %q, want %q", got, "signal: killed")
	}
	if !exitsWithin(grandchild, waitTimeout) {
		t.Errorf("the instance's own child, pid %d, outlived it", pids[1])
	}
}

func TestStopDuringBackoff(t *testing.T) {
	n := newNotifier(t)
	s, rec := newSupervisor(t, Options{BackoffMin: time.Hour})
	inst, err := s.Start(childSpec(t, "http", n))
	if err != nil {
		t.Fatal(err)
	}
	inst.Kill()
	rec.waitFor(t, "backoff", func(s Status) bool { return s.State == Backoff })
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := inst.Status(); st.State != Stopped || st.Restarts != 1 {
		t.Errorf("got state %v after %d restarts, want stopped after 1", st.State, st.Restarts)
	}
}

func TestStopContextDoneKillsAtOnce(t *testing.T) {
	n := newNotifier(t)
	s, _ := newSupervisor(t, Options{})
	inst, err := s.Start(childSpec(t, "stubborn", n)) // StopTimeout is waitTimeout
	if err != nil {
		t.Fatal(err)
	}
	pids := n.ready(t)
	leader := pidfdOf(t, pids[0])
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := inst.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got error %v, want context.Canceled", err)
	}
	if !exitsWithin(leader, waitTimeout/2) {
		t.Fatalf("pid %d still runs after Stop with a done context", pids[0])
	}
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := inst.Status(); st.State != Stopped || st.Restarts != 0 {
		t.Errorf("got state %v after %d restarts, want stopped after none", st.State, st.Restarts)
	}
}

func TestStartRefusesBadSpec(t *testing.T) {
	s := New(Options{})
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"no instance", Spec{Dir: dir, Command: "true"}},
		{"no command", Spec{Instance: "a", Dir: dir, Command: " "}},
		{"no dir", Spec{Instance: "a", Command: "true"}},
		{"missing dir", Spec{Instance: "a", Dir: filepath.Join(dir, "nope"), Command: "true"}},
		{"bad port", Spec{Instance: "a", Dir: dir, Command: "true", Port: 70000}},
	} {
		if _, err := s.Start(tc.spec); err == nil {
			t.Errorf("%s: got no error, want one", tc.name)
		}
	}
	if got := s.Instances(); len(got) != 0 {
		t.Errorf("got %d instances, want 0", len(got))
	}
}

func TestNextBackoff(t *testing.T) {
	opts := Options{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second, BackoffReset: 10 * time.Second}
	for _, tc := range []struct {
		prev, ran, want time.Duration
	}{
		{0, 0, 100 * time.Millisecond},
		{100 * time.Millisecond, time.Second, 200 * time.Millisecond},
		{400 * time.Millisecond, 0, 800 * time.Millisecond},
		{800 * time.Millisecond, 0, time.Second},
		{time.Second, 0, time.Second},
		{time.Second, 10 * time.Second, 100 * time.Millisecond},
	} {
		if got := nextBackoff(tc.prev, tc.ran, opts); got != tc.want {
			t.Errorf("nextBackoff(%v, %v): got %v, want %v", tc.prev, tc.ran, got, tc.want)
		}
	}
}

func TestStateString(t *testing.T) {
	for st, want := range map[State]string{
		Starting: "starting", Running: "running", Backoff: "backoff",
		Stopping: "stopping", Stopped: "stopped", State(42): "State(42)",
	} {
		if got := st.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// A crash of the leader takes the rest of its group with it: the restarted
// instance must not find a half of the old one still running.
func TestCrashKillsRestOfGroup(t *testing.T) {
	n := newNotifier(t)
	s, rec := newSupervisor(t, Options{BackoffMin: time.Hour})
	if _, err := s.Start(childSpec(t, "stubborn", n)); err != nil {
		t.Fatal(err)
	}
	pids := n.ready(t)
	grandchild := pidfdOf(t, pids[1])
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "backoff", func(s Status) bool { return s.State == Backoff })
	if !exitsWithin(grandchild, waitTimeout) {
		t.Errorf("group member %d outlived the crash of its leader", pids[1])
	}
}

// The same for an adopted process, started here without a Supervisor so
// that only the adopting one can sweep the group.
func TestAdoptedCrashKillsRestOfGroup(t *testing.T) {
	cmd, child := startGroup(t)
	childFD := pidfdOf(t, child)
	st, err := ProcStartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	s, rec := newSupervisor(t, Options{BackoffMin: time.Hour})
	spec := Spec{Instance: "adopted", Dir: t.TempDir(), Command: "sleep 300", Port: 1}
	if _, err := s.Adopt(spec, cmd.Process.Pid, st, History{}); err != nil {
		t.Fatal(err)
	}
	if exitsWithin(childFD, 0) {
		t.Fatal("the group member died on adoption")
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "backoff", func(s Status) bool { return s.State == Backoff })
	if !exitsWithin(childFD, waitTimeout) {
		t.Errorf("group member %d outlived the crash of its adopted leader", child)
	}
}

// TestRestartKillsStoppedProcess: Restart ends a process that is stopped
// (SIGSTOP: a hung instance), records the reason given as its last exit,
// counts the restart and starts a new process on the same port.
func TestRestartKillsStoppedProcess(t *testing.T) {
	n := newNotifier(t)
	s, rec := newSupervisor(t, Options{})
	inst, err := s.Start(childSpec(t, "http", n))
	if err != nil {
		t.Fatal(err)
	}
	first := n.ready(t)[0]
	port := inst.Spec().Port
	if err := syscall.Kill(first, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	const reason = "hung: 3 health checks failed"
	if !inst.Restart(reason) {
		t.Fatal("Restart of a running instance returned false")
	}
	crash := rec.waitFor(t, "backoff", func(s Status) bool { return s.State == Backoff })
	if crash.Restarts != 1 || crash.LastExit != reason {
		t.Errorf("got restarts %d, last exit %q, want 1, %q", crash.Restarts, crash.LastExit, reason)
	}
	up := rec.waitFor(t, "running again", func(s Status) bool { return s.State == Running })
	if up.PID == first || up.Port != port {
		t.Errorf("got pid %d on port %d, want a new pid (not %d) on the same port %d", up.PID, up.Port, first, port)
	}
	if second := n.ready(t)[0]; second != up.PID {
		t.Errorf("got ready from pid %d, want %d", second, up.PID)
	}
	if got := get(t, port, "/"); got.PID != up.PID {
		t.Errorf("got answer from pid %d, want %d", got.PID, up.PID)
	}
	// A crash afterwards is told as a crash, not with the old reason.
	if err := syscall.Kill(up.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	again := rec.waitFor(t, "second backoff", func(s Status) bool { return s.State == Backoff && s.Restarts == 2 })
	if again.LastExit != "signal: killed" {
		t.Errorf("got last exit %q after a kill -9, want %q", again.LastExit, "signal: killed")
	}
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if inst.Restart(reason) {
		t.Error("Restart of a stopped instance returned true")
	}
}
