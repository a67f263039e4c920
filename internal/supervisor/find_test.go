package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// execStat is the /proc/<pid>/stat of an unrecorded instance that a
// daemon's scan skipped, left running, on a busy machine: caught in
// execve (its `/bin/sh -c` execing the app) with the environment's bounds
// (fields 50 and 51) still 0. Its environ read empty; read again a moment
// later, it held the instance's 1799 bytes, CUTOVER_APP included.
const execStat = "15048 (deploy.test) R 13885 15048 10417 0 -1 4194304 68 0 0 0 0 0 0 0 30 10 1 0 2967890 63590400 0 18446744073709551615 0 0 140721352026319 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 140721352026319 0 0 0 0\n"

// doneStat is the same process once execve has written the environment.
const doneStat = "15048 (deploy.test) S 13885 15048 10417 0 -1 4194304 168 0 0 0 0 0 0 0 30 10 5 0 2967890 1263590400 3000 18446744073709551615 4194304 9000000 140721352026319 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 11000000 11100000 12000000 140721352026300 140721352026399 140721352026400 140721352028199 0\n"

// statOf is a /proc/<pid>/stat line with the fields Find reads.
func statOf(pid int, state byte, pgrp int, start, envStart, envEnd uint64) string {
	return fmt.Sprintf("%d (app) %c 1 %d %d 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 %d 1000 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 %d %d 0\n",
		pid, state, pgrp, pgrp, start, envStart, envEnd)
}

// scriptedProc is a /proc whose files each read as the next entry of a
// script (the last entry repeats): what the kernel showed, read by read.
type scriptedProc struct {
	files map[string][]string // "<pid>/<name>" to its successive contents
	reads map[string]int      // "<pid>/<name>" to how often it was read
	slept time.Duration
}

func (s *scriptedProc) fs() procFS {
	s.reads = map[string]int{}
	return procFS{
		pids: func() ([]int, error) {
			seen := map[int]bool{}
			var pids []int
			for k := range s.files {
				var pid int
				if _, err := fmt.Sscanf(k, "%d/", &pid); err == nil && !seen[pid] {
					seen[pid] = true
					pids = append(pids, pid)
				}
			}
			return pids, nil
		},
		read: func(pid int, name string) ([]byte, error) {
			k := fmt.Sprintf("%d/%s", pid, name)
			script, ok := s.files[k]
			if !ok {
				return nil, &os.PathError{Op: "open", Path: "/proc/" + k, Err: syscall.ENOENT}
			}
			i := min(s.reads[k], len(script)-1)
			s.reads[k]++
			return []byte(script[i]), nil
		},
		readlink: func(pid int, name string) (string, error) { return "/srv/app/releases/v2", nil },
		sleep:    func(d time.Duration) { s.slept += d },
	}
}

func environ(kv ...string) string { return strings.Join(kv, "\x00") + "\x00" }

// TestFindWaitsForExec replays, read by read, what /proc showed of
// processes caught in execve, and checks what Find decides of each:
// an instance of the app is found once its environment is written, and
// nothing else is taken for one, whatever the timing.
func TestFindWaitsForExec(t *testing.T) {
	ours := environ("CUTOVER_APP=web", "CUTOVER_RELEASE=v2", "PORT=4001")
	other := environ("CUTOVER_APP=shop", "CUTOVER_RELEASE=v9", "PORT=4101")
	for _, tc := range []struct {
		name      string
		files     map[string][]string
		wantPID   int // 0: not found
		wantStart uint64
		wantErr   string // in Find's error; "" for none
		maxSleep  time.Duration
	}{{
		// The unrecorded instance a daemon's start left running.
		name: "instance in execve",
		files: map[string][]string{
			"15048/stat":    {execStat, execStat, doneStat},
			"15048/environ": {"", "", ours},
		},
		wantPID: 15048, wantStart: 2967890, maxSleep: 10 * time.Millisecond,
	}, {
		// environ opened before execve, read after it released the
		// old memory: empty, though the new environment is written.
		name: "environ opened before execve",
		files: map[string][]string{
			"15048/stat":    {doneStat},
			"15048/environ": {"", ours},
		},
		wantPID: 15048, wantStart: 2967890, maxSleep: 10 * time.Millisecond,
	}, {
		name: "instance of another app in execve",
		files: map[string][]string{
			"200/stat":    {statOf(200, 'R', 200, 500, 0, 0), statOf(200, 'S', 200, 500, 1000, 2000)},
			"200/environ": {"", other},
		},
		maxSleep: 10 * time.Millisecond,
	}, {
		// A child that inherited CUTOVER_APP, in its parent's group.
		name: "child in its instance's group",
		files: map[string][]string{
			"301/stat":    {statOf(301, 'R', 300, 500, 1000, 2000)},
			"301/environ": {ours},
		},
	}, {
		// The pid of an instance that exited between the reads of
		// stat and environ was taken by a group leader of another app:
		// the environment read was the instance's, the process the
		// other app's.
		name: "pid reused between the reads",
		files: map[string][]string{
			"400/stat":    {statOf(400, 'S', 400, 500, 1000, 2000), statOf(400, 'S', 400, 900, 1000, 2000)},
			"400/environ": {ours, other},
		},
	}, {
		// An instance that exited in execve, its pid taken at once by
		// an instance of this app (read again, found as what it is).
		name: "pid reused in execve",
		files: map[string][]string{
			"800/stat":    {statOf(800, 'R', 800, 500, 0, 0), statOf(800, 'S', 800, 900, 1000, 2000)},
			"800/environ": {"", ours},
		},
		wantPID: 800, wantStart: 900, maxSleep: 10 * time.Millisecond,
	}, {
		name: "empty environment",
		files: map[string][]string{
			"500/stat":    {statOf(500, 'S', 500, 500, 1000, 1000)},
			"500/environ": {""},
		},
		maxSleep: 0,
	}, {
		name: "exits in execve",
		files: map[string][]string{
			"600/stat":    {statOf(600, 'R', 600, 500, 0, 0), statOf(600, 'Z', 600, 500, 0, 0)},
			"600/environ": {""},
		},
		maxSleep: 10 * time.Millisecond,
	}, {
		name: "stuck in execve",
		files: map[string][]string{
			"700/stat":    {statOf(700, 'D', 700, 500, 0, 0)},
			"700/environ": {""},
		},
		wantErr: "pid 700: still starting a program", maxSleep: execWait + 100*time.Millisecond,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scriptedProc{files: tc.files}
			got, err := s.fs().find("CUTOVER_APP", "web")
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error: got %v, want one with %q", err, tc.wantErr)
			}
			var want []int
			if tc.wantPID != 0 {
				want = []int{tc.wantPID}
			}
			var pids []int
			for _, f := range got {
				pids = append(pids, f.PID)
				if f.StartTime != tc.wantStart || f.Env["CUTOVER_RELEASE"] != "v2" {
					t.Errorf("found pid %d started at %d with release %q, want start %d, release v2", f.PID, f.StartTime, f.Env["CUTOVER_RELEASE"], tc.wantStart)
				}
			}
			if fmt.Sprint(pids) != fmt.Sprint(want) {
				t.Errorf("found %v, want %v", pids, want)
			}
			if s.slept > tc.maxSleep {
				t.Errorf("waited %v, want at most %v", s.slept, tc.maxSleep)
			}
		})
	}
}

// TestFindCatchesExecLoop scans /proc again and again while a group
// leader with the wanted environment execs itself in a loop, as an
// instance's shell execs the app: every scan must find it. Before Find
// waited for execve, a scan that read its environ mid-exec read nothing
// and skipped it.
func TestFindCatchesExecLoop(t *testing.T) {
	script := filepath.Join(t.TempDir(), "loop.sh")
	// Each round execs /bin/sh anew, keeping the environment.
	if err := os.WriteFile(script, []byte("exec /bin/sh \"$0\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", script)
	cmd.Env = []string{"CUTOVER_APP=exec-loop-" + fmt.Sprint(os.Getpid()), "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck // killed: its exit status says nothing
	key, value, _ := strings.Cut(cmd.Env[0], "=")
	missed := 0
	const scans = 200
	for range scans {
		got, err := Find(key, value)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].PID != cmd.Process.Pid {
			missed++
		}
	}
	if missed > 0 {
		t.Errorf("%d of %d scans missed pid %d, a group leader with %s=%s that execs itself in a loop", missed, scans, cmd.Process.Pid, key, value)
	}
}

// TestFindStuckOnlyIsAScan: a scan that found no instance but could not
// check a process stuck in execve returns an empty list, not nil, with
// its error: nil is for a scan that could not list /proc at all, and the
// daemon (fleet.Find) only logs that one, while it reports the stuck
// process in `cutover status` (rebuilt:) — the case of an app's only
// unrecorded instance caught in its exec.
func TestFindStuckOnlyIsAScan(t *testing.T) {
	s := &scriptedProc{files: map[string][]string{
		"700/stat":    {statOf(700, 'D', 700, 500, 0, 0)},
		"700/environ": {""},
	}}
	got, err := s.fs().find("CUTOVER_APP", "web")
	if err == nil || got == nil || len(got) != 0 {
		t.Errorf("scan with only a process stuck in execve: got %#v, %v; want an empty list and its error", got, err)
	}
	s = &scriptedProc{files: map[string][]string{}}
	fs := s.fs()
	fs.pids = func() ([]int, error) { return nil, os.ErrPermission }
	if got, err := fs.find("CUTOVER_APP", "web"); got != nil || err == nil {
		t.Errorf("scan that cannot list /proc: got %#v, %v; want nil and an error", got, err)
	}
}

// TestFindStuckErrorOneLine: the error of a scan that could not check
// several processes is one line naming each (cutover status prints it
// on its "rebuilt:" line).
func TestFindStuckErrorOneLine(t *testing.T) {
	s := &scriptedProc{files: map[string][]string{
		"700/stat":    {statOf(700, 'D', 700, 500, 0, 0)},
		"700/environ": {""},
		"701/stat":    {statOf(701, 'D', 701, 500, 0, 0)},
		"701/environ": {""},
	}}
	_, err := s.fs().find("CUTOVER_APP", "web")
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "pid 700") || !strings.Contains(err.Error(), "pid 701") {
		t.Errorf("error %q, want one line naming pids 700 and 701", err)
	}
}
