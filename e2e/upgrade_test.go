package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// instancePIDs returns the pids of the app's instances, sorted.
func (e *env) instancePIDs() []int {
	e.t.Helper()
	var pids []int
	for _, in := range e.status().Instances {
		pids = append(pids, in.PID)
	}
	slices.Sort(pids)
	return pids
}

// checkLoad fails the test for any failed request of rep, naming refused
// connections apart.
func checkLoad(t *testing.T, rep load.Report) {
	t.Helper()
	var sb strings.Builder
	rep.Print(&sb)
	t.Logf("load report:\n%s", sb.String())
	for _, p := range rep.Phases {
		if p.Failed != 0 {
			t.Errorf("%s: %d of %d requests failed: %v", p.Name, p.Failed, p.Requests, p.Errors)
		}
	}
}

// TestUpgradeTwiceUnderLoad: `cutover upgrade`, twice, under 500 req/s:
// no failed request, the app's processes untouched (same pids), a new
// daemon each time, and the CLI names old and new.
func TestUpgradeTwiceUnderLoad(t *testing.T) {
	e := newEnv(t, settings{instances: 2})
	v1 := e.release("v1", "")
	exe := e.ownBinary()
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	pids := e.instancePIDs()
	keeper := e.daemon.Process.Pid
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 500, FreshShare: 0.25, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "before")
	time.Sleep(300 * time.Millisecond)
	for i, name := range []string{"first upgrade", "second upgrade"} {
		old := e.daemonPID()
		installBinary(t, bin, exe) // a new file at the same path
		gen.Mark(name)
		out, errOut, code := e.run("upgrade")
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", name, code, out, errOut)
		}
		now := e.daemonPID()
		if now == old || ppid(now) != keeper {
			t.Errorf("%s: daemon pid %d → %d (parent %d); want a new child of the keeper %d", name, old, now, ppid(now), keeper)
		}
		if want := "pid " + itoa(old) + " (dev) → pid " + itoa(now) + " (dev)"; !strings.Contains(out, want) {
			t.Errorf("%s: output %q does not say %q", name, out, want)
		}
		if got := e.instancePIDs(); !slices.Equal(got, pids) {
			t.Errorf("%s: instance pids %v → %v; want the same processes", name, pids, got)
		}
		waitExit(t, old)
		t.Logf("upgrade %d: %s", i+1, strings.TrimSpace(out))
		time.Sleep(500 * time.Millisecond)
	}
	gen.Mark("after")
	time.Sleep(300 * time.Millisecond)
	checkLoad(t, gen.Stop())
}

// TestUpgradeToBrokenBinary: an upgrade to a binary that cannot start
// leaves the old daemon serving and supervising, loses no request, and
// says why (exit 1); once a good binary is back, the upgrade works.
func TestUpgradeToBrokenBinary(t *testing.T) {
	e := newEnv(t, settings{instances: 2})
	v1 := e.release("v1", "")
	exe := e.ownBinary()
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	pids := e.instancePIDs()
	old := e.daemonPID()
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 500, FreshShare: 0.25, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "before")
	time.Sleep(300 * time.Millisecond)

	gen.Mark("broken upgrade")
	broken := filepath.Join(e.dir, "broken")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'cutover: this build cannot start' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	installBinary(t, broken, exe)
	out, errOut, code := e.run("upgrade")
	if code != 1 || !strings.Contains(errOut, "upgrade failed") || !strings.Contains(errOut, "exit status 1") {
		t.Errorf("upgrade to a broken binary: exit %d, stderr %q; want exit 1 saying the new daemon exited", code, errOut)
	}
	if out != "" {
		t.Errorf("upgrade to a broken binary printed %q on stdout", out)
	}
	if now := e.daemonPID(); now != old {
		t.Errorf("daemon pid %d → %d; want the old daemon serving on", old, now)
	}
	time.Sleep(300 * time.Millisecond)

	// The old daemon still supervises: it restarts a killed instance.
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := e.instancePIDs()
		if len(got) == 2 && !slices.Contains(got, pids[0]) && !slices.Contains(got, 0) {
			pids = got
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %d killed after the failed upgrade was not restarted: pids %v", pids[0], got)
		}
		time.Sleep(20 * time.Millisecond)
	}

	gen.Mark("good upgrade")
	installBinary(t, bin, exe)
	out, errOut, code = e.run("upgrade")
	if code != 0 {
		t.Fatalf("upgrade to a good binary after the broken one: exit %d\n%s%s", code, out, errOut)
	}
	if got := e.instancePIDs(); !slices.Equal(got, pids) {
		t.Errorf("instance pids %v → %v; want the same processes", pids, got)
	}
	time.Sleep(300 * time.Millisecond)
	checkLoad(t, gen.Stop())
}

// TestUpgradeRefusedDuringDeploy: an upgrade while a deploy waits in
// preview is refused with the reason, exit 1; the daemon stays.
func TestUpgradeRefusedDuringDeploy(t *testing.T) {
	e := newEnv(t, settings{instances: 1})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	old := e.daemonPID()
	done := make(chan error, 1)
	go func() {
		_, _, err := e.deploy(deploy.Request{Source: v2, Preview: true})
		done <- err
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st := e.status(); st.Deploy != nil && st.Deploy.Detail == "preview" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no deploy waiting in preview after 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, errOut, code := e.run("upgrade")
	if code != 1 || !strings.Contains(errOut, "refused") || !strings.Contains(errOut, "in progress") {
		t.Errorf("upgrade during a deploy: exit %d, stderr %q; want exit 1, refused: a deploy is in progress", code, errOut)
	}
	if now := e.daemonPID(); now != old {
		t.Errorf("daemon pid %d → %d after a refused upgrade", old, now)
	}
	if _, _, code := e.run("promote"); code != 0 {
		t.Errorf("promote after the refused upgrade: exit %d", code)
	}
	if err := <-done; err != nil {
		t.Errorf("deploy: %v", err)
	}
}

// waitExit waits until pid is gone (a drained daemon exits within its
// shutdown bound of 10 s).
func waitExit(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for ppid(pid) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("old daemon %d still runs 15s after the upgrade", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStopIsNotUndoneByTheKeeper: `cutover stop` takes the app and the
// daemon down, and the keeper, seeing its daemon exit 0, exits 0 too
// instead of starting it again.
func TestStopIsNotUndoneByTheKeeper(t *testing.T) {
	e := newEnv(t, settings{instances: 1})
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: e.release("v1", "")}); err != nil {
		t.Fatal(err)
	}
	pids := e.instancePIDs()
	daemon := e.daemonPID()
	if out, errOut, code := e.run("stop"); code != 0 {
		t.Fatalf("stop: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case err := <-e.daemonW:
		e.daemon = nil
		if err != nil {
			t.Errorf("cutover serve after stop: %v; want exit 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("cutover serve still runs 15s after stop; log:\n%s", tail(e.daemonLog(), 20))
	}
	for _, pid := range append(pids, daemon) {
		if ppid(pid) != 0 {
			t.Errorf("pid %d still runs after stop", pid)
		}
	}
	if e.daemonPID() != daemon {
		t.Errorf("daemon.lock names pid %d after stop, want the stopped %d: a daemon was started again", e.daemonPID(), daemon)
	}
	if _, _, _, err := get(e.url("/")); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("GET after stop: %v; want the port closed", err)
	}
}

// TestUpgradeBySIGHUP: SIGHUP to the keeper (systemd's ExecReload)
// upgrades as `cutover upgrade` does; a config whose data_dir changed
// since `cutover serve` started is refused by the new daemon, which would
// find neither the old daemon's lock nor its instances there: the old
// daemon serves on and the keeper logs why.
func TestUpgradeBySIGHUP(t *testing.T) {
	e := newEnv(t, settings{instances: 1})
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: e.release("v1", "")}); err != nil {
		t.Fatal(err)
	}
	pids := e.instancePIDs()
	old := e.daemonPID()
	if err := e.daemon.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	now := e.waitNewDaemon(old)
	if got := e.instancePIDs(); !slices.Equal(got, pids) {
		t.Errorf("after SIGHUP: instance pids %v → %v; want the same processes", pids, got)
	}
	waitExit(t, old)

	b, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(string(b), `data_dir = "data"`, `data_dir = "data2"`, 1)
	if err := os.WriteFile(e.cfg, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.WriteFile(e.cfg, b, 0o644)
	if err := e.daemon.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(e.daemonLog(), "upgrade failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed upgrade logged 20s after SIGHUP; log:\n%s", tail(e.daemonLog(), 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if log := e.daemonLog(); !strings.Contains(log, "restart `cutover serve` to move the data directory") {
		t.Errorf("the keeper's log does not say why:\n%s", tail(log, 10))
	}
	if e.daemonPID() != now {
		t.Errorf("daemon pid %d → %d after a refused upgrade", now, e.daemonPID())
	}
	if _, err := os.Stat(filepath.Join(e.dir, "data2", "daemon.lock")); err == nil {
		t.Errorf("the refused daemon took a lock in the new data_dir")
	}
	if got := e.instancePIDs(); !slices.Equal(got, pids) {
		t.Errorf("after the refused upgrade: instance pids %v → %v", pids, got)
	}
}
