package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// The daemon's start-up when what it keeps on disk is lost or broken:
// each case stops the keeper (SIGSTOP: the proxy socket stays open, so
// requests wait in its backlog), kills the daemon with SIGKILL, breaks
// something, and lets the keeper start a new daemon. Under 300 requests/s
// the new daemon must serve with no failed request, track every process
// of the app (or have stopped it), and accept the next deploy.

// downDaemon kills the daemon while the keeper is stopped, runs damage
// while no daemon runs, then lets the keeper start a new one and waits
// until it answers.
func (e *env) downDaemon(damage func()) {
	e.t.Helper()
	keeper := e.daemon.Process.Pid
	if err := syscall.Kill(keeper, syscall.SIGSTOP); err != nil {
		e.t.Fatal(err)
	}
	cont := func() { syscall.Kill(keeper, syscall.SIGCONT) }
	defer cont()
	old := e.killDaemon() // returns once it is a zombie: the keeper is stopped
	damage()
	cont()
	e.waitNewDaemon(old)
}

// procState is field 3 of /proc/<pid>/stat; 0 if there is no such process.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// appProcesses returns the pids of the process group leaders whose
// environment says they are an instance of this env's app: CUTOVER_APP of
// the test app and a drain file under this env's directory.
func (e *env) appProcesses() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + ent.Name() + "/environ")
		if err != nil {
			continue
		}
		var app, drain bool
		for _, kv := range bytes.Split(raw, []byte{0}) {
			s := string(kv)
			app = app || s == "CUTOVER_APP=e2e"
			drain = drain || strings.HasPrefix(s, "CUTOVER_DRAIN_FILE="+e.dir+"/")
		}
		if !app || !drain || procState(pid) == 'Z' {
			continue
		}
		if pg, err := syscall.Getpgid(pid); err != nil || pg != pid {
			continue
		}
		out = append(out, pid)
	}
	slices.Sort(out)
	return out
}

// assertNoOrphans checks that every process of the app is an instance
// `cutover status` lists.
func (e *env) assertNoOrphans(when string) {
	e.t.Helper()
	tracked := map[int]bool{}
	for _, in := range e.status().Instances {
		tracked[in.PID] = true
	}
	for _, pid := range e.appProcesses() {
		if !tracked[pid] {
			e.t.Errorf("%s: pid %d is an instance of the app that `cutover status` does not list (orphan): %+v", when, pid, e.status().Instances)
		}
	}
}

// underLoad runs 300 req/s around fn and fails the test for any request
// that failed once the new daemon served.
func (e *env) underLoad(what string, fn func()) {
	e.t.Helper()
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 300, FreshShare: 0.25, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "before")
	time.Sleep(300 * time.Millisecond)
	gen.Mark(what)
	// A request counts in the phase it started in: give those of
	// "before" still in flight time to finish, so that one the kill cuts
	// is counted where failures are allowed (on a loaded machine a
	// request can take 100 ms and more; at the kill, two "before"
	// requests in flight were cut and failed the test).
	time.Sleep(250 * time.Millisecond)
	fn()
	gen.Mark("daemon back")
	time.Sleep(time.Second)
	rep := gen.Stop()
	var sb strings.Builder
	rep.Print(&sb)
	e.t.Logf("%s; load report:\n%s", what, sb.String())
	if f := rep.Phases[0].Failed + rep.Phases[2].Failed; f != 0 {
		e.t.Errorf("%s: %d requests failed before the kill or after the new daemon served: %v %v", what, f, rep.Phases[0].Errors, rep.Phases[2].Errors)
	}
	// Only what the killed daemon carried can fail (a request takes about
	// a millisecond at this rate).
	if f := rep.Phases[1].Failed; f > 5 {
		e.t.Errorf("%s: %d of %d requests failed while the daemon was down: %v", what, f, rep.Phases[1].Requests, rep.Phases[1].Errors)
	}
}

func (e *env) statusText() string {
	out, _, _ := e.run("status")
	return out
}

// TestLostStateUnderLoad: state.db deleted, truncated to nothing, restored
// without its -wal, or garbled. Before, the new daemon started with no live
// release (every request a 503 until the next deploy) and the instances
// ran on untracked; a garbled file stopped it.
func TestLostStateUnderLoad(t *testing.T) {
	cases := []struct {
		name   string
		damage func(db string) error
		says   string // in `cutover status`
	}{
		{"deleted", func(db string) error {
			for _, ext := range []string{"", "-wal", "-shm"} {
				if err := os.Remove(db + ext); err != nil && !os.IsNotExist(err) {
					return err
				}
			}
			return nil
		}, "`current` points at"},
		{"truncated", func(db string) error {
			os.Remove(db + "-wal")
			os.Remove(db + "-shm")
			return os.Truncate(db, 0)
		}, "`current` points at"},
		{"without-wal", func(db string) error {
			os.Remove(db + "-shm")
			return os.Remove(db + "-wal")
		}, "rebuilt:"},
		{"garbled", func(db string) error {
			os.Remove(db + "-wal")
			os.Remove(db + "-shm")
			return os.WriteFile(db, bytes.Repeat([]byte("not a database "), 512), 0o600)
		}, ".corrupt-"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, settings{instances: 2})
			v1, v2, v3 := e.release("v1", ""), e.release("v2", ""), e.release("v3", "")
			e.serve()
			for _, v := range []string{v1, v2} {
				if _, _, err := e.deploy(deploy.Request{Source: v}); err != nil {
					t.Fatal(err)
				}
			}
			before := e.status()
			db := filepath.Join(e.dir, "data", "state.db")
			e.underLoad("state.db "+c.name, func() {
				e.downDaemon(func() {
					if err := c.damage(db); err != nil {
						t.Error(err)
					}
				})
			})
			after := e.status()
			if after.Active != before.Active {
				t.Errorf("live release after the daemon came back: got %q, want %q", after.Active, before.Active)
			}
			var pb, pa []int
			for _, in := range before.Instances {
				pb = append(pb, in.PID)
			}
			for _, in := range after.Instances {
				pa = append(pa, in.PID)
			}
			slices.Sort(pb)
			slices.Sort(pa)
			if !slices.Equal(pa, pb) {
				t.Errorf("instances after the daemon came back: pids %v, want the same processes %v", pa, pb)
			}
			if st := e.statusText(); !strings.Contains(st, c.says) {
				t.Errorf("`cutover status` does not say what was rebuilt (%q):\n%s", c.says, st)
			}
			e.assertNoOrphans("after the restart")
			if _, _, err := e.deploy(deploy.Request{Source: v3}); err != nil {
				t.Fatalf("the next deploy: %v", err)
			}
			e.assertNoOrphans("after the next deploy")
			for _, pid := range pb {
				if procState(pid) != 0 && procState(pid) != 'Z' {
					t.Errorf("pid %d of the old release still runs after the next deploy", pid)
				}
			}
		})
	}
}

// TestReleasesDeletedUnderLoad: releases/ deleted and one instance killed
// while no daemon ran. Before, the new daemon exited ("recover: start
// instance … no such file or directory") and every request was refused;
// now it adopts the survivor, serves, says what it could not do, and the
// next deploy restores both instances.
func TestReleasesDeletedUnderLoad(t *testing.T) {
	e := newEnv(t, settings{instances: 2})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	victim := e.status().Instances[0]
	e.underLoad("releases/ deleted", func() {
		e.downDaemon(func() {
			if err := os.RemoveAll(filepath.Join(e.dir, "data", "releases")); err != nil {
				t.Error(err)
			}
			syscall.Kill(victim.PID, syscall.SIGKILL)
		})
	})
	if st := e.statusText(); !strings.Contains(st, "could not start instance") {
		t.Errorf("`cutover status` does not say an instance could not start:\n%s", st)
	}
	e.assertNoOrphans("after the restart")
	if _, _, err := e.deploy(deploy.Request{Source: v2}); err != nil {
		t.Fatalf("the next deploy: %v", err)
	}
	if n := len(e.status().Instances); n != 2 {
		t.Errorf("instances after the next deploy: %d, want 2", n)
	}
	e.assertNoOrphans("after the next deploy")
}

// TestFullDiskUnderLoad: the data dir is a small tmpfs, filled while no
// daemon runs, and one instance is killed meanwhile. Before, the new
// daemon exited ("database or disk is full") and the instance it had
// restarted was never recorded. Now it serves, refuses deploys with the
// reason, tracks the instance it started in memory (a second daemon
// restart still finds it), and once space is freed writes it and deploys.
func TestFullDiskUnderLoad(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("mounting a tmpfs needs root; run this test as root")
	}
	e := newEnv(t, settings{instances: 2})
	data := filepath.Join(e.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v: %s", data, err, out)
	}
	// Registered after newEnv's cleanup, so it runs first: the app is
	// stopped before its data dir goes away.
	t.Cleanup(func() {
		e.cleanup()
		e.daemon = nil // stopped: newEnv's own cleanup has nothing left to stop
		if out, err := exec.Command("umount", "-l", data).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", data, err, out)
		}
	})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(data, "filler")
	victim := e.status().Instances[0]
	e.underLoad("data disk full", func() {
		e.downDaemon(func() {
			fill(t, filler)
			syscall.Kill(victim.PID, syscall.SIGKILL)
		})
	})
	st := e.statusText()
	if !strings.Contains(st, "DEGRADED") || !strings.Contains(st, "state.db cannot be written") {
		t.Errorf("`cutover status` does not say deploys are refused and why:\n%s", st)
	}
	if n := len(e.status().Instances); n != 2 {
		t.Errorf("instances after the restart: %d, want 2: %+v", n, e.status().Instances)
	}
	e.assertNoOrphans("after the restart on a full disk")
	if _, _, err := e.deploy(deploy.Request{Source: v2}); err == nil || !strings.Contains(err.Error(), "cannot be written") {
		t.Errorf("a deploy on a full disk: got %v, want it refused with the reason", err)
	}

	// The instance started on a full disk is in no state.db: a second
	// daemon restart must still find it.
	e.underLoad("daemon killed again on a full disk", func() { e.downDaemon(func() {}) })
	if n := len(e.status().Instances); n != 2 {
		t.Errorf("instances after a second restart: %d, want 2: %+v", n, e.status().Instances)
	}
	e.assertNoOrphans("after a second restart on a full disk")

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.deploy(deploy.Request{Source: v2}); err != nil {
		t.Fatalf("the deploy once space is free: %v", err)
	}
	e.assertNoOrphans("after the deploy")
	if st := e.statusText(); strings.Contains(st, "DEGRADED") {
		t.Errorf("`cutover status` still degraded after a deploy succeeded:\n%s", st)
	}
}

// TestDeployCutByDaemonDeath: the daemon is killed while `cutover deploy`
// streams the boot of a new release. The keeper starts a new daemon, which
// records the deploy as interrupted and stops the new release's
// instances; the CLI must say so and exit 1. Before, it said "the deploy
// goes on in the daemon", which was not true.
func TestDeployCutByDaemonDeath(t *testing.T) {
	e := newEnv(t, settings{instances: 1})
	v1, v2 := e.release("v1", ""), e.release("v2", "DEMO_BOOT_DELAY=30s\n")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		stdout, stderr string
		code           int
	}
	done := make(chan result, 1)
	go func() {
		o, er, code := e.run("deploy", v2)
		done <- result{o, er, code}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if d := e.status().Deploy; d != nil && d.Step == "boot" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deploy did not reach its boot step within 15s: %+v", e.status().Deploy)
		}
		time.Sleep(20 * time.Millisecond)
	}
	old := e.killDaemon()
	e.waitNewDaemon(old)
	var r result
	select {
	case r = <-done:
	case <-time.After(40 * time.Second):
		t.Fatal("`cutover deploy` did not return within 40s of the daemon's death")
	}
	t.Logf("cutover deploy exit %d; stderr:\n%s", r.code, r.stderr)
	if r.code != 1 {
		t.Errorf("exit code: got %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "interrupted") || !strings.Contains(r.stderr, "is live") || strings.Contains(r.stderr, "goes on in the daemon") {
		t.Errorf("stderr does not say the deploy was interrupted and what is live:\n%s", r.stderr)
	}
	if st := e.status(); st.Active == "" || st.Deploy != nil || len(st.Instances) != 1 || !strings.HasSuffix(st.Instances[0].Release, "v1") {
		t.Errorf("after the interrupted deploy: active %q, deploy %+v, instances %+v; want v1 alone, no deploy", st.Active, st.Deploy, st.Instances)
	}
	e.assertNoOrphans("after the interrupted deploy")
}
