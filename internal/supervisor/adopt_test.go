package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAdoptAfterDetach plays a daemon restart: one Supervisor starts an
// instance and detaches, a second adopts it, and restarts it when it
// crashes.
func TestAdoptAfterDetach(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pidfd bool
	}{{"pidfd", true}, {"proc polling", false}} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNotifier(t)
			old, _ := newSupervisor(t, Options{})
			first, err := old.Start(childSpec(t, "http", n))
			if err != nil {
				t.Fatal(err)
			}
			pid := n.ready(t)[0]
			recorded := first.Status()
			old.Detach()

			if err := first.Stop(context.Background()); !errors.Is(err, ErrDetached) {
				t.Errorf("Stop after Detach: got %v, want ErrDetached", err)
			}
			if _, err := old.Start(first.Spec()); !errors.Is(err, ErrDetached) {
				t.Errorf("Start after Detach: got %v, want ErrDetached", err)
			}
			if got := get(t, recorded.Port, "/"); got.PID != pid {
				t.Fatalf("got answer from pid %d after Detach, want %d still serving", got.PID, pid)
			}

			s, rec := newSupervisor(t, Options{})
			if !tc.pidfd {
				s.os.pidfdOpen = func(int, int) (int, error) { return -1, unix.ENOSYS }
				s.os.procPollInterval = 10 * time.Millisecond
			}
			inst, err := s.Adopt(first.Spec(), recorded.PID, recorded.StartTime, History{})
			if err != nil {
				t.Fatal(err)
			}
			st := inst.Status()
			if !st.Adopted || st.State != Running || st.PID != pid || st.Port != recorded.Port {
				t.Errorf("got status %+v, want adopted, running, pid %d, port %d", st, pid, recorded.Port)
			}
			if d := st.StartedAt.Sub(recorded.StartedAt).Abs(); d > 2*time.Second {
				t.Errorf("got started at %v, want about %v", st.StartedAt, recorded.StartedAt)
			}

			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			crash := rec.waitFor(t, "backoff", func(s Status) bool { return s.State == Backoff })
			if crash.LastExit != adoptedExit || crash.Restarts != 1 {
				t.Errorf("got last exit %q after %d restarts, want %q after 1", crash.LastExit, crash.Restarts, adoptedExit)
			}
			up := rec.waitFor(t, "running again", func(s Status) bool { return s.State == Running })
			if up.Adopted || up.PID == pid || up.Port != recorded.Port {
				t.Errorf("got status %+v, want a new, started process on port %d", up, recorded.Port)
			}
			if got := n.ready(t)[0]; got != up.PID {
				t.Errorf("got ready from pid %d, want %d", got, up.PID)
			}
			if got := get(t, up.Port, "/"); got.PID != up.PID {
				t.Errorf("got answer from pid %d, want %d", got.PID, up.PID)
			}
		})
	}
}

func TestAdoptedStop(t *testing.T) {
	n := newNotifier(t)
	old, _ := newSupervisor(t, Options{})
	first, err := old.Start(childSpec(t, "stubborn", n))
	if err != nil {
		t.Fatal(err)
	}
	pids := n.ready(t)
	leader, grandchild := pidfdOf(t, pids[0]), pidfdOf(t, pids[1])
	old.Detach()

	s, _ := newSupervisor(t, Options{})
	spec := first.Spec()
	spec.StopTimeout = 100 * time.Millisecond
	st := first.Status()
	inst, err := s.Adopt(spec, st.PID, st.StartTime, History{})
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !exitsWithin(leader, 0) {
		t.Fatalf("pid %d still runs after Stop returned", pids[0])
	}
	if !exitsWithin(grandchild, waitTimeout) {
		t.Errorf("the adopted instance's child, pid %d, outlived it", pids[1])
	}
	if got := inst.Status(); got.State != Stopped || got.Restarts != 0 {
		t.Errorf("got state %v after %d restarts, want stopped after none", got.State, got.Restarts)
	}
}

func TestAdoptRefusesAnotherProcess(t *testing.T) {
	n := newNotifier(t)
	old, _ := newSupervisor(t, Options{})
	first, err := old.Start(childSpec(t, "http", n))
	if err != nil {
		t.Fatal(err)
	}
	n.ready(t)
	old.Detach()
	st := first.Status()
	spec := first.Spec()

	s, _ := newSupervisor(t, Options{})
	if _, err := s.Adopt(spec, st.PID, st.StartTime+1, History{}); !errors.Is(err, ErrGone) {
		t.Errorf("Adopt with another start time: got %v, want ErrGone", err)
	}

	// A process that does not lead its own group is no instance.
	sleeper := exec.Command("sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sleeper.Process.Kill() // clean-up; Wait reports the kill
		_ = sleeper.Wait()
	})
	sst, err := ProcStartTime(sleeper.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Adopt(spec, sleeper.Process.Pid, sst, History{}); !errors.Is(err, ErrGone) {
		t.Errorf("Adopt of a process outside its own group: got %v, want ErrGone", err)
	}

	// A process that has exited.
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Adopt(spec, done.Process.Pid, 1, History{}); !errors.Is(err, ErrGone) {
		t.Errorf("Adopt of an exited process: got %v, want ErrGone", err)
	}

	if got := s.Instances(); len(got) != 0 {
		t.Errorf("got %d instances after refused adoptions, want 0", len(got))
	}
	// The refusals left the real one alone, and it can still be adopted.
	inst, err := s.Adopt(spec, st.PID, st.StartTime, History{})
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSurvivesDaemonKill starts an instance from another process playing
// the daemon, kills that process with SIGKILL, and checks that the
// instance goes on serving and is adopted by the next daemon (this test).
func TestSurvivesDaemonKill(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fromDaemon, fromInstance := newNotifier(t), newNotifier(t)
	spec := childSpec(t, "http", fromInstance)
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	daemon := exec.Command(exe)
	daemon.Env = []string{childModeEnv + "=daemon", notifyEnv + "=" + fromDaemon.addr, specEnv + "=" + string(js)}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = daemon.Process.Kill() // clean-up of a failed test; Wait reports it
		_ = daemon.Wait()
	})
	got := fromDaemon.ready(t)
	pid, startTime, port := got[0], uint64(got[1]), got[2]
	t.Cleanup(func() { killAll(map[int]uint64{pid: startTime}) })
	fromInstance.ready(t)

	if err := daemon.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := daemon.Wait(); err == nil || err.Error() != "signal: killed" {
		t.Fatalf("got daemon exit %v, want signal: killed", err)
	}
	// Still serving, and writing its log, with the daemon gone.
	get(t, port, "/write?text=after-daemon-death&n=1")
	if got := get(t, port, "/"); got.PID != pid {
		t.Fatalf("got answer from pid %d, want %d", got.PID, pid)
	}
	// Through the log writer the daemon started, which outlives it too.
	waitLog(t, spec.LogPath, "after-daemon-death")

	s, rec := newSupervisor(t, Options{})
	spec.Port = port
	inst, err := s.Adopt(spec, pid, startTime, History{})
	if err != nil {
		t.Fatal(err)
	}
	if st := inst.Status(); !st.Adopted || st.PID != pid {
		t.Fatalf("got status %+v, want pid %d adopted", st, pid)
	}
	inst.Kill()
	up := rec.waitFor(t, "running again", func(s Status) bool { return s.State == Running && s.PID != pid })
	if got := fromInstance.ready(t)[0]; got != up.PID {
		t.Errorf("got ready from pid %d, want %d", got, up.PID)
	}
	if got := get(t, port, "/"); got.PID != up.PID {
		t.Errorf("got answer from pid %d, want %d", got.PID, up.PID)
	}
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}
