package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
	"github.com/cutover/cutover/internal/state"
)

// slowMigration takes a few seconds of SQLite's time, so that a kill -9
// lands while it runs. Its CREATE TABLE fails if it ever runs twice.
var slowMigration = [2]string{
	"CREATE TABLE slow AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 6000000) SELECT count(*) AS n FROM c;\n",
	"DROP TABLE slow;\n",
}

// chaosCase is one step of a deploy in which the daemon is killed.
type chaosCase struct {
	name string
	// extra is appended to the config ([release], [deploy], [database]).
	extra        string
	drainTimeout string
	// v1 builds the request of the first deploy (nil: a plain v1); v2 the
	// deploy that is interrupted; v3 the next one, which must succeed.
	v1, v2, v3 func(e *env) deploy.Request
	// The kill comes delay after the event of step at status ("start" or
	// "ok").
	step   deploy.Step
	status string
	delay  time.Duration
	// nth: the kill follows the nth such event (0 = the first).
	nth int
	// long is requested once, through the proxy, just before the deploy:
	// a long request the daemon carries when it is killed.
	long string
	// live is the version that must serve after the restart: "v1" when
	// the kill came before the switch was recorded, "v2" after it, ""
	// when either may (the kill races the switch).
	live string
	// mayEnd: the step is short enough (finish: a symlink and a prune)
	// that the deploy may end before the kill lands; then it is recorded
	// succeeded, and the client saw it succeed.
	mayEnd bool
}

// TestDaemonKilledInEachDeployStep: kill -9 of the daemon (the keeper's
// child) in each step of a deploy, under load. The keeper holds the proxy
// socket, so no connection is refused; only the requests the daemon
// carried at the kill instant may fail. The new daemon ends with exactly
// one live release, the same in `cutover status`, the `current` symlink
// and the proxy's answers; no process of the interrupted deploy is left
// running; the deploy is recorded as interrupted; the next deploy
// succeeds with no failed request.
func TestDaemonKilledInEachDeployStep(t *testing.T) {
	plain := func(v string) func(e *env) deploy.Request {
		return func(e *env) deploy.Request { return deploy.Request{Source: e.release(v, "")} }
	}
	cases := []chaosCase{{
		// A git deploy whose test command takes 20 s: the kill lands in
		// prepare, with the test running in a scratch checkout.
		name:  "prepare",
		extra: "[release]\nrepo = \"REPO\"\ntest = \"sleep 20\"\n",
		v2: func(e *env) deploy.Request {
			gitRepo(e.t, e.dir)
			return deploy.Request{Git: "v2"}
		},
		v3:   plain("v3"),
		step: deploy.StepPrepare, status: "start", delay: time.Second,
		live: "v1",
	}, {
		// A migration that runs for seconds on SQLite (in the schema
		// preview or for real: both are the expand step's).
		name:  "expand",
		extra: "[database]\nurl = \"sqlite://DIR/app.db\"\n",
		v1: func(e *env) deploy.Request {
			return deploy.Request{Source: e.releaseWithMigrations("v1", map[string][2]string{"1-create-users": createUsers})}
		},
		v2: func(e *env) deploy.Request {
			return deploy.Request{Source: e.releaseWithMigrations("v2", map[string][2]string{"1-create-users": createUsers, "2-slow": slowMigration})}
		},
		v3: func(e *env) deploy.Request {
			return deploy.Request{Source: e.releaseWithMigrations("v3", map[string][2]string{"1-create-users": createUsers, "2-slow": slowMigration})}
		},
		step: deploy.StepExpand, status: "start", delay: 500 * time.Millisecond,
		live: "v1",
	}, {
		// New instances that take 6 s to listen.
		name: "boot",
		v2: func(e *env) deploy.Request {
			return deploy.Request{Source: e.release("v2", "DEMO_BOOT_DELAY=6s\n")}
		},
		v3:   plain("v3"),
		step: deploy.StepBoot, status: "start", delay: 1500 * time.Millisecond,
		live: "v1",
	}, {
		// A before_switch hook that sleeps: v2 is healthy and booted,
		// nothing has switched.
		name:  "before_switch hook",
		extra: "[deploy]\nbefore_switch = \"if [ -f slow-hook ]; then sleep 20; fi\"\n",
		v2: func(e *env) deploy.Request {
			d := e.release("v2", "")
			os.WriteFile(filepath.Join(d, "slow-hook"), nil, 0o644)
			return deploy.Request{Source: d}
		},
		v3:   plain("v3"),
		step: deploy.StepHook, status: "start", delay: time.Second,
		live: "v1",
	}, {
		// Right after a quick hook: the kill races the switch.
		name:  "switch",
		extra: "[deploy]\nbefore_switch = \"true\"\n",
		v2:    plain("v2"),
		v3:    plain("v3"),
		step:  deploy.StepHook, status: "ok",
		live: "",
	}, {
		// A 25 s request on v1 keeps the drain open.
		name:         "drain",
		drainTimeout: "40s",
		v2:           plain("v2"),
		v3:           plain("v3"),
		long:         "/slow?d=25s",
		step:         deploy.StepDrain, status: "start", delay: time.Second,
		live: "v2",
	}, {
		// The last step: current and pruning.
		name: "finish",
		v2:   plain("v2"),
		v3:   plain("v3"),
		step: deploy.StepFinish, status: "start",
		live:   "v2",
		mayEnd: true,
	}, {
		// A rolling deploy, one instance a batch, killed while its second
		// batch boots: one old instance is gone, the new one carries half
		// the traffic, nothing is recorded as switched.
		name:  "rolling: second batch",
		extra: "[deploy]\nstrategy = \"rolling\"\nbatch = 1\n",
		v2: func(e *env) deploy.Request {
			return deploy.Request{Source: e.release("v2", "DEMO_BOOT_DELAY=2s\n")}
		},
		v3:   plain("v3"),
		step: deploy.StepBoot, status: "start", nth: 2, delay: time.Second,
		live: "v1",
	}, {
		// A canary deploy killed at its 50% step.
		name:  "canary: 50% step",
		extra: "[deploy]\nstrategy = \"canary\"\nsteps = [\"50%\"]\nstep_time = \"2s\"\nmin_requests = 10\n",
		v2:    plain("v2"),
		v3:    plain("v3"),
		step:  deploy.StepShift, status: "start", delay: time.Second,
		live: "v1",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { testDaemonKilledIn(t, c) })
	}
}

func testDaemonKilledIn(t *testing.T, c chaosCase) {
	e := newEnv(t, settings{instances: 2, drainTimeout: c.drainTimeout})
	extra := strings.ReplaceAll(c.extra, "REPO", filepath.Join(e.dir, "repo"))
	extra = strings.ReplaceAll(extra, "DIR", e.dir)
	cfg, _ := os.ReadFile(e.cfg)
	if err := os.WriteFile(e.cfg, append(cfg, "\n"+extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	v1 := deploy.Request{}
	if c.v1 != nil {
		v1 = c.v1(e)
	} else {
		v1.Source = e.release("v1", "")
	}
	req2 := c.v2(e)
	e.serve()
	if _, _, err := e.deploy(v1); err != nil {
		t.Fatalf("deploy v1: %v", err)
	}

	gen := load.Start(load.Options{URL: e.url("/"), Rate: 300, FreshShare: 0.25, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "deploy v2")
	stopped := false
	defer func() {
		if !stopped {
			gen.Stop()
		}
	}()
	long := make(chan string, 1)
	if c.long != "" {
		go func() {
			start := time.Now()
			code, v, _, err := get(e.url(c.long))
			long <- fmt.Sprintf("GET %s: %d from %q after %s, %v", c.long, code, v, time.Since(start).Round(time.Millisecond), err)
		}()
		time.Sleep(200 * time.Millisecond)
	}
	hit := make(chan struct{})
	deployDone := make(chan error, 1)
	go func() {
		seen := 0
		_, err := e.client.Deploy(context.Background(), req2, func(ev deploy.Event) {
			if ev.Type == "step" && ev.Step == c.step && ev.Status == c.status {
				if seen++; seen == max(c.nth, 1) {
					close(hit)
				}
			}
		})
		deployDone <- err
	}()
	select {
	case <-hit:
	case err := <-deployDone:
		t.Fatalf("the deploy of v2 ended (%v) before step %s %s", err, c.step, c.status)
	case <-time.After(30 * time.Second):
		t.Fatalf("step %s %s not reached within 30s", c.step, c.status)
	}
	time.Sleep(c.delay)
	gen.Mark("kill -9")
	killAt := time.Now()
	old := e.killDaemon()
	// A request started before the daemon was dead may have been accepted
	// by it: in flight at the kill. One started after must not fail.
	deadAt := time.Now()
	pid := e.waitNewDaemon(old)
	back := time.Since(killAt)
	gen.Mark("daemon back")
	ended := false // the deploy ended before the kill landed (mayEnd)
	select {
	case err := <-deployDone:
		// What `cutover deploy` prints: it must not say the deploy goes on.
		if err == nil && c.mayEnd {
			ended = true
			t.Logf("the deploy ended before the kill landed")
		} else if err == nil || !strings.Contains(err.Error(), "interrupted") || strings.Contains(err.Error(), "goes on") {
			t.Errorf("the deploy client saw: %v; want it told the deploy was interrupted", err)
		} else {
			t.Logf("the deploy client saw: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the deploy client still waits 10s after its daemon was killed")
	}
	time.Sleep(500 * time.Millisecond)

	// One live release, the same everywhere; nothing of the other left.
	live := checkOneLive(t, e, c.live)
	ds, err := e.client.Deploys(context.Background(), 1)
	want := state.DeployInterrupted
	if ended {
		want = state.DeploySucceeded
	}
	if err != nil || len(ds) != 1 || ds[0].State != want {
		t.Errorf("the killed deploy is recorded as %+v (%v); want state %q", ds, err, want)
	}

	gen.Mark("next deploy")
	if _, _, err := e.deploy(c.v3(e)); err != nil {
		t.Fatalf("the deploy after the restart failed: %v\nlog:\n%s", err, tail(e.daemonLog(), 30))
	}
	time.Sleep(300 * time.Millisecond)
	rep := gen.Stop()
	stopped = true
	checkOneLive(t, e, "v3")
	if tmp, _ := filepath.Glob(filepath.Join(e.dir, "data", "releases", ".tmp-*")); len(tmp) != 0 {
		t.Errorf("the next deploy left the interrupted prepare's scratch directory: %v", tmp)
	}

	var sb strings.Builder
	rep.Print(&sb)
	inFlight, after := 0, 0
	for _, r := range rep.Results {
		if !r.Failed() {
			continue
		}
		if r.Start.Before(deadAt) {
			inFlight++
		} else {
			after++
			t.Errorf("a request sent %s after the daemon died failed: %s", r.Start.Sub(deadAt).Round(time.Millisecond), r.Err)
		}
		if strings.Contains(r.Err, "refused") {
			t.Errorf("a connection was refused (%s): the socket did not outlive the daemon", r.Err)
		}
	}
	t.Logf("step %s: daemon %d killed, %d served %s later (live %s); %d failed request(s) in flight at the kill, %d after; load:\n%s",
		c.step, old, pid, back.Round(time.Millisecond), live, inFlight, after, sb.String())
	if c.long != "" {
		select {
		case l := <-long:
			t.Logf("the long request the daemon carried at the kill: %s", l)
		case <-time.After(time.Second):
			t.Logf("the long request %s is still waiting", c.long)
		}
	}
	// Only what the daemon carried at that instant: at 300 req/s of ~1 ms
	// each, a handful.
	if inFlight > 10 {
		t.Errorf("%d requests in flight at the kill failed; want only the few the daemon carried", inFlight)
	}
	if f := rep.Phases[len(rep.Phases)-1].Failed; f != 0 {
		t.Errorf("the next deploy failed %d request(s): %v", f, rep.Phases[len(rep.Phases)-1].Errors)
	}
}

// checkOneLive checks that exactly one release is live and that status,
// the current symlink, the instances and the proxy's answers agree on it,
// and that no process of another release or of an unfinished deploy step
// runs. want is the app version it must serve ("" for any). It returns
// the live release id.
func checkOneLive(t *testing.T, e *env, want string) string {
	t.Helper()
	st := e.status()
	if st.Active == "" {
		t.Fatalf("no live release after the restart")
	}
	if st.Deploy != nil {
		t.Errorf("a deploy is still in flight after the restart: %+v", st.Deploy)
	}
	cur, err := os.Readlink(filepath.Join(e.dir, "data", "current"))
	if err != nil || filepath.Base(cur) != st.Active {
		t.Errorf("current → %q (%v); status says %s is live", cur, err, st.Active)
	}
	if len(st.Instances) != 2 {
		t.Errorf("%d instances, want 2: %+v", len(st.Instances), st.Instances)
	}
	for _, in := range st.Instances {
		if in.Release != st.Active {
			t.Errorf("instance %s of release %s runs beside the live %s", in.ID, in.Release, st.Active)
		}
	}
	if want != "" && !strings.HasSuffix(st.Active, "-"+want) {
		t.Errorf("live release %s, want the %s one", st.Active, want)
	}
	for i := 0; i < 10; i++ {
		resp, err := http.Get(e.url("/"))
		if err != nil {
			t.Errorf("GET / after the restart: %v", err)
			continue
		}
		resp.Body.Close()
		if r := resp.Header.Get("X-Cutover-Release"); resp.StatusCode != http.StatusOK || r != st.Active {
			t.Errorf("GET / answered %d by release %q; status says %s is live", resp.StatusCode, r, st.Active)
		}
		if v := resp.Header.Get("X-App-Version"); !strings.HasSuffix(st.Active, "-"+v) {
			t.Errorf("GET / answered by app version %q; %s is live", v, st.Active)
		}
	}
	for _, s := range strays(e, st) {
		t.Errorf("orphan: %s", s)
	}
	return st.Active
}

// strays lists the processes running in the data directory (instances,
// hooks, test and build commands) that belong to no instance of st: each
// must be in the process group of one.
func strays(e *env, st deploy.Status) []string {
	groups := map[int]bool{}
	for _, in := range st.Instances {
		groups[in.PID] = true
	}
	data := filepath.Join(e.dir, "data") + "/"
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cwd")
	for _, p := range procs {
		cwd, err := os.Readlink(p)
		if err != nil || !strings.HasPrefix(cwd+"/", data) {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(p, "/proc/"), "/cwd"))
		pgrp, state, cmd := procGroup(pid)
		if state == "" || state == "Z" || groups[pgrp] {
			continue
		}
		out = append(out, fmt.Sprintf("pid %d (%s) in group %d runs in %s", pid, cmd, pgrp, cwd))
	}
	return out
}

// procGroup returns the process group, state and command line of pid.
func procGroup(pid int) (pgrp int, state, cmd string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return 0, "", ""
	}
	pgrp, _ = strconv.Atoi(f[2])
	c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return pgrp, f[0], strings.TrimSpace(strings.ReplaceAll(string(c), "\x00", " "))
}

// mountSmallDisk mounts a tmpfs of size on the env's data directory, so
// that a deploy can fill it. It must run before serve; the daemon is
// stopped and the disk unmounted when the test ends. It skips the test
// when mounting is not possible (not root, no tmpfs) — never under CI.
func mountSmallDisk(t *testing.T, e *env, size string) string {
	t.Helper()
	data := filepath.Join(e.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", data).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a %s tmpfs on %s to fill (%v: %s); run as root", size, data, err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		// The daemon holds files on the disk: stop it first (the env's
		// own cleanup, which runs after this one, then finds it stopped).
		e.stopServe()
		killStrays(t, data)
		if out, err := exec.Command("umount", data).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", data, err, out)
		}
	})
	return data
}

// fill writes a file at path until the disk is full, and returns its size.
func fill(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("fill the disk: %v", err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill the disk: %v", err)
			}
			return n
		}
	}
}

// TestDeployOnFullDisk: the data directory's disk fills up during a
// deploy — a release bigger than the space left (prepare), or the disk
// filled while the new instances boot. The deploy fails with an error
// that says the disk is full and where; the live release serves on with
// no failed request; no release is left recorded half-made; the daemon
// keeps running; once space is freed, the next deploy works.
func TestDeployOnFullDisk(t *testing.T) {
	for _, c := range []struct {
		name string
		// v2 makes the release that does not fit; during is called once
		// the deploy of v2 reaches step.
		v2     func(e *env) string
		step   deploy.Step
		during func(t *testing.T, data string)
	}{{
		name: "prepare",
		v2: func(e *env) string {
			d := e.release("v2", "")
			big := bytes.Repeat([]byte("x"), 1<<20)
			f, err := os.Create(filepath.Join(d, "assets.bin"))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 40; i++ { // 40 MiB on a 24 MiB disk
				f.Write(big)
			}
			f.Close()
			return d
		},
	}, {
		name: "boot",
		v2:   func(e *env) string { return e.release("v2", "DEMO_BOOT_DELAY=2s\n") },
		step: deploy.StepBoot,
		during: func(t *testing.T, data string) {
			fill(t, filepath.Join(data, "filler"))
		},
	}} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, settings{instances: 2})
			data := mountSmallDisk(t, e, "24m")
			v1 := e.release("v1", "")
			e.serve()
			if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
				t.Fatalf("deploy v1: %v", err)
			}
			pid := e.daemonPID()
			v2 := c.v2(e)
			gen := load.Start(load.Options{URL: e.url("/"), Rate: 300, FreshShare: 0.25, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "deploy v2 on a full disk")
			var msgs []string
			filled := false
			res, err := e.client.Deploy(context.Background(), deploy.Request{Source: v2}, func(ev deploy.Event) {
				if ev.Message != "" {
					msgs = append(msgs, fmt.Sprintf("%s %s %s: %s", ev.Type, ev.Step, ev.Status, ev.Message))
				}
				if c.during != nil && !filled && ev.Type == "step" && ev.Step == c.step && ev.Status == "start" {
					filled = true
					c.during(t, data)
				}
			})
			time.Sleep(300 * time.Millisecond)
			gen.Mark("after the failed deploy")
			time.Sleep(500 * time.Millisecond)
			t.Logf("deploy of v2: %+v, %v; events:\n%s", res, err, strings.Join(msgs, "\n"))
			if err == nil {
				t.Errorf("the deploy of v2 succeeded on a full disk")
			} else if !strings.Contains(err.Error(), "the disk of "+data+" is full") {
				t.Errorf("the deploy's error does not say the disk of %s is full: %v", data, err)
			}
			if got := e.daemonPID(); got != pid {
				t.Errorf("the daemon changed (pid %d → %d): it exited on the full disk\nlog:\n%s", pid, got, tail(e.daemonLog(), 30))
			}
			live := checkOneLive(t, e, "v1")
			rels, err := e.client.Releases(context.Background())
			if err != nil {
				t.Fatalf("releases: %v", err)
			}
			for _, r := range rels {
				if r.ID == live {
					continue
				}
				// On a full disk even "failed" may not be recordable: a
				// release that never went live is fine, if it is whole.
				_, serr := os.Stat(filepath.Join(data, "releases", r.ID, ".cutover-release.json"))
				if serr != nil || (r.Status != string(state.ReleaseFailed) && r.Status != string(state.ReleasePrepared)) {
					t.Errorf("release %s recorded as %s, its metadata file: %v; want none, or a whole one that never went live", r.ID, r.Status, serr)
				}
			}
			if tmp, _ := filepath.Glob(filepath.Join(data, "releases", ".tmp-*")); len(tmp) != 0 {
				t.Errorf("the failed prepare left %v", tmp)
			}

			os.Remove(filepath.Join(data, "filler"))
			gen.Mark("next deploy, space freed")
			if _, _, err := e.deploy(deploy.Request{Source: e.release("v3", "")}); err != nil {
				t.Errorf("the deploy once space was freed: %v\nlog:\n%s", err, tail(e.daemonLog(), 30))
			}
			time.Sleep(300 * time.Millisecond)
			rep := gen.Stop()
			var sb strings.Builder
			rep.Print(&sb)
			t.Logf("load:\n%s", sb.String())
			if rep.Total.Failed != 0 {
				t.Errorf("%d of %d requests failed: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
			}
			checkOneLive(t, e, "v3")
		})
	}
}
