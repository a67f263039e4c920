package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cutover/cutover/internal/fleet"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/supervisor"
)

func TestDeployReplacesLiveRelease(t *testing.T) {
	h := newHarness(t, setup{instances: 2})
	v1 := h.mustDeploy("v1", nil)
	h.assertServes("v1")
	oldPIDs := h.pids(v1)
	if len(oldPIDs) != 2 {
		t.Fatalf("instances of %s: got pids %v, want 2", v1, oldPIDs)
	}

	v2 := h.mustDeploy("v2", nil)
	h.assertServes("v2")

	for _, pid := range oldPIDs {
		if alive(pid) {
			t.Errorf("instance pid %d of %s still runs after %s went live", pid, v1, v2)
		}
	}
	if got, want := h.releasesOfInstances(), []string{v2, v2}; !slices.Equal(got, want) {
		t.Errorf("releases of instances: got %q, want %q", got, want)
	}
	if got := h.active(); got != v2 {
		t.Errorf("active release: got %q, want %q", got, v2)
	}
	rels, err := h.store.Releases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]state.ReleaseStatus{}
	for _, r := range rels {
		status[r.ID] = r.Status
	}
	if diff := cmp.Diff(map[string]state.ReleaseStatus{v1: state.ReleaseRetired, v2: state.ReleaseLive}, status); diff != "" {
		t.Errorf("release statuses (-want +got):\n%s", diff)
	}
	cur, err := h.eng.Releases().Current()
	if err != nil || cur != v2 {
		t.Errorf("current: got %q (%v), want %q", cur, err, v2)
	}
	link, err := os.Readlink(h.cfg.CurrentLink())
	if err != nil || filepath.Base(link) != v2 {
		t.Errorf("current symlink: got %q (%v), want it to point at %s", link, err, v2)
	}

	ds, err := h.store.Deploys(context.Background(), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 {
		t.Fatalf("deploy history: got %d deploys, want 2", len(ds))
	}
	wantSteps := []string{"lock:ok", "prepare:ok", "check:ok", "boot:ok", "switch:ok", "drain:ok", "finish:ok"}
	for i, want := range []struct{ release, from string }{{v2, v1}, {v1, ""}} {
		d := ds[i]
		if d.State != state.DeploySucceeded || d.Release != want.release || d.FromRelease != want.from || d.Kind != "deploy" {
			t.Errorf("deploy #%d: got %s %s %q from %q, want deploy succeeded %q from %q", d.ID, d.Kind, d.State, d.Release, d.FromRelease, want.release, want.from)
		}
		if diff := cmp.Diff(wantSteps, stepNames(d.Steps)); diff != "" {
			t.Errorf("deploy #%d steps (-want +got):\n%s", d.ID, diff)
		}
	}
}

func TestBootFailureLeavesLiveReleaseUntouched(t *testing.T) {
	h := newHarness(t, setup{instances: 2})
	v1 := h.mustDeploy("v1", nil)
	before := h.pids(v1)

	live, evs, err := h.deploy(Request{Source: h.source("v2", map[string]string{"demo.env": "DEMO_FAIL_BOOT=1\n"})})
	if err == nil {
		t.Fatalf("deploy of a release that cannot boot succeeded; events:\n%s", describe(evs))
	}
	if !strings.Contains(err.Error(), "exited during boot") || KindOf(err) != "failed" {
		t.Errorf("error: got %q (kind %s), want a failed boot", err, KindOf(err))
	}
	if live != v1 {
		t.Errorf("live release after the failed deploy: got %q, want %q", live, v1)
	}
	v2 := h.releaseLabelled("v2")
	if got := h.releaseStatus(v2); got != state.ReleaseFailed {
		t.Errorf("status of %s: got %q, want %q", v2, got, state.ReleaseFailed)
	}
	if got := h.lastDeploy().State; got != state.DeployFailed {
		t.Errorf("deploy state: got %q, want %q", got, state.DeployFailed)
	}
	if after := h.pids(v1); !slices.Equal(after, before) {
		t.Errorf("pids of %s: got %v, want them untouched %v", v1, after, before)
	}
	if got, want := h.releasesOfInstances(), []string{v1, v1}; !slices.Equal(got, want) {
		t.Errorf("releases of instances: got %q, want %q", got, want)
	}
	h.assertServes("v1")

	logged := false
	for _, ev := range evs {
		if ev.Type == "log" && strings.HasPrefix(ev.Instance, v2+"-") && slices.ContainsFunc(ev.Lines, func(l string) bool {
			return strings.Contains(l, "DEMO_FAIL_BOOT=1")
		}) {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no log event with the failed instance's log tail; events:\n%s", describe(evs))
	}
}

// TestBootCrashLoopAborts: an instance that crashes a few times in its
// first second and then turns healthy is a crash loop, not a boot: the
// deploy aborts whatever order the crashes and the health checks come in.
// Here the crashing instance is healthy before the steady one is, which
// the engine once judged by a coin toss.
func TestBootCrashLoopAborts(t *testing.T) {
	h := newHarness(t, setup{instances: 2})
	v1 := h.mustDeploy("v1", nil)
	before := h.pids(v1)

	live, evs, err := h.deploy(Request{Source: h.source("v2", map[string]string{crashLoopFile: "3\n"})})
	if err == nil {
		t.Fatalf("deploy of a release whose instance crash-loops succeeded; events:\n%s", describe(evs))
	}
	if !strings.Contains(err.Error(), "exited during boot") || KindOf(err) != "failed" {
		t.Errorf("error: got %q (kind %s), want an instance that exited during boot", err, KindOf(err))
	}
	if live != v1 {
		t.Errorf("live release after the failed deploy: got %q, want %q", live, v1)
	}
	if after := h.pids(v1); !slices.Equal(after, before) {
		t.Errorf("pids of %s: got %v, want them untouched %v", v1, after, before)
	}
	if got, want := h.releasesOfInstances(), []string{v1, v1}; !slices.Equal(got, want) {
		t.Errorf("releases of instances: got %q, want %q", got, want)
	}
	v2 := h.releaseLabelled("v2")
	if n := countEvents(evs, func(ev Event) bool {
		return ev.Type == "log" && strings.HasPrefix(ev.Instance, v2+"-") && slices.ContainsFunc(ev.Lines, func(l string) bool {
			return strings.Contains(l, "crashes ("+crashLoopFile)
		})
	}); n == 0 {
		t.Errorf("no log event with the crashing instance's log tail; events:\n%s", describe(evs))
	}
	h.assertServes("v1")
}

// TestRollingBootCrashLoopRollsBack: a rolling deploy boots each batch
// the same way: a batch that crash-loops, even into health, sends the
// deploy back to the old release at full size.
func TestRollingBootCrashLoopRollsBack(t *testing.T) {
	h := newHarness(t, setup{instances: 2, deploy: []string{`strategy = "rolling"`, `batch = 1`}})
	v1 := h.mustDeploy("v1", nil)

	// Batch 1 is the steady instance; batch 2 crashes 3 times, then serves.
	live, evs, err := h.deploy(Request{Source: h.source("v2", map[string]string{crashLoopFile: "3\n"})})
	if !errors.Is(err, errRolledBack) || !strings.Contains(err.Error(), "batch 2/2 did not boot") || !strings.Contains(err.Error(), "exited during boot") {
		t.Fatalf("rolling deploy whose second batch crash-loops: got %v, want rolled back; events:\n%s", err, describe(evs))
	}
	if live != v1 {
		t.Errorf("live release: got %q, want %q", live, v1)
	}
	if got, want := h.releasesOfInstances(), []string{v1, v1}; !slices.Equal(got, want) {
		t.Errorf("releases of instances: got %q, want %q", got, want)
	}
	h.assertServes("v1")
}

// TestBootReportsWaitingInstances: a boot that waits says so every few
// seconds, per instance not healthy yet, with its latest health check,
// instead of waiting out boot_timeout in silence; a 404 says what it most
// often means.
func TestBootReportsWaitingInstances(t *testing.T) {
	h := newHarness(t, setup{instances: 2, health: []string{`interval = "50ms"`, `healthy_after = 1`, `boot_timeout = "1s"`}})
	h.eng.bootReportEvery = 200 * time.Millisecond
	h.mustDeploy("v1", nil)

	// The app serves its health check on /up; cutover asks for /healthz.
	_, evs, err := h.deploy(Request{Source: h.source("v2", map[string]string{"demo.env": "DEMO_HEALTH_PATH=/up\n"})})
	if err == nil || !strings.Contains(err.Error(), "not healthy after boot_timeout 1s (last health check: GET http://") ||
		!strings.Contains(err.Error(), "/healthz: status 404 Not Found") {
		t.Fatalf("deploy of a release without the health path: got %v, want not healthy after boot_timeout with the 404; events:\n%s", err, describe(evs))
	}
	v2 := h.releaseLabelled("v2")
	for _, n := range []string{"1", "2"} {
		id := v2 + "-" + n
		waiting := slices.DeleteFunc(slices.Clone(evs), func(ev Event) bool { return ev.Type != "waiting" || ev.Instance != id })
		if len(waiting) < 2 {
			t.Errorf("instance %s: got %d waiting events in a 1s boot reported every 200ms, want at least 2; events:\n%s", id, len(waiting), describe(evs))
			continue
		}
		ev := waiting[len(waiting)-1]
		want := `/healthz: status 404 Not Found; if this lasts, app.health.path "/healthz" is not a path the app serves (`
		if ev.Step != StepBoot || !strings.HasPrefix(ev.Message, "instance "+id+": last health check: GET http://") ||
			!strings.Contains(ev.Message, want) || !strings.HasSuffix(ev.Message, " of boot_timeout 1s)") {
			t.Errorf("waiting event of %s: got step %q message %q, want step boot saying %q and how long of boot_timeout 1s", id, ev.Step, ev.Message, want)
		}
	}
	h.assertServes("v1")
}

// TestDeployWithBrokenConfig: deploys re-read cutover.toml; a broken one
// stops the deploy before anything is touched, as a config error.
func TestDeployWithBrokenConfig(t *testing.T) {
	h := newHarness(t, setup{})
	v1 := h.mustDeploy("v1", nil)
	before := h.pids(v1)
	h.writeConfig(setup{app: []string{`log_max_size = 1`}})
	live, evs, err := h.deploy(Request{Source: h.source("v2", nil)})
	if KindOf(err) != "config" || !strings.Contains(err.Error(), "app.log_max_size") {
		t.Fatalf("deploy with a broken config: got %v (kind %s), want a config error naming app.log_max_size; events:\n%s", err, KindOf(err), describe(evs))
	}
	if live != v1 {
		t.Errorf("live release: got %q, want %q", live, v1)
	}
	if after := h.pids(v1); !slices.Equal(after, before) {
		t.Errorf("pids of %s: got %v, want them untouched %v", v1, after, before)
	}
	if got := h.lastDeploy().State; got != state.DeployFailed {
		t.Errorf("deploy state: got %q, want %q", got, state.DeployFailed)
	}
	h.assertServes("v1")
}

func TestHooks(t *testing.T) {
	h := newHarness(t, setup{})
	v1 := h.mustDeploy("v1", nil)
	before := h.pids(v1)

	t.Run("before_switch failing aborts before traffic moves", func(t *testing.T) {
		defer h.with(t)()
		h.writeConfig(setup{deploy: []string{`before_switch = "echo checking >&2; exit 3"`}})
		_, evs, err := h.deploy(Request{Source: h.source("v2", nil)})
		if err == nil {
			t.Fatalf("deploy succeeded despite a failing before_switch hook; events:\n%s", describe(evs))
		}
		for _, want := range []string{"before_switch hook failed, nothing switched", "exited with status 3"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error: got %q, want it to say %q", err, want)
			}
		}
		if n := countEvents(evs, func(ev Event) bool { return ev.Type == "step" && (ev.Step == StepSwitch || ev.Step == StepShift) }); n != 0 {
			t.Errorf("got %d switch/shift step events, want none; events:\n%s", n, describe(evs))
		}
		if got := h.active(); got != v1 {
			t.Errorf("active release: got %q, want %q", got, v1)
		}
		if got := h.px.Weights(); !cmp.Equal(got, map[string]int{v1: 100}) {
			t.Errorf("proxy weights: got %v, want all on %s", got, v1)
		}
		if got := h.releaseStatus(h.releaseLabelled("v2")); got != state.ReleaseFailed {
			t.Errorf("status of v2: got %q, want %q", got, state.ReleaseFailed)
		}
		if after := h.pids(v1); !slices.Equal(after, before) {
			t.Errorf("pids of %s: got %v, want %v", v1, after, before)
		}
		if got, want := h.releasesOfInstances(), []string{v1}; !slices.Equal(got, want) {
			t.Errorf("releases of instances: got %q, want %q", got, want)
		}
		h.assertServes("v1")
	})

	t.Run("after_switch failing is reported, the deploy goes on", func(t *testing.T) {
		defer h.with(t)()
		out := filepath.Join(h.root, "hook-env.txt")
		script := filepath.Join(h.root, "hook.sh")
		body := `printf '%s\n%s\n%s\n' "$CUTOVER_RELEASE" "$CUTOVER_RELEASE_DIR" "$CUTOVER_PREVIOUS_RELEASE" > "$1"` + "\n"
		if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		h.writeConfig(setup{deploy: []string{
			`before_switch = "sh ` + script + ` ` + out + `"`,
			`after_switch = "echo cache purge failed >&2; exit 4"`,
		}})
		live, evs, err := h.deploy(Request{Source: h.source("v3", nil)})
		if err != nil {
			t.Fatalf("deploy: %v; events:\n%s", err, describe(evs))
		}
		v3 := h.releaseLabelled("v3")
		if live != v3 {
			t.Errorf("live release: got %q, want %q", live, v3)
		}
		h.assertServes("v3")
		if !slices.ContainsFunc(evs, func(ev Event) bool {
			return ev.Type == "info" && strings.Contains(ev.Message, "after_switch hook failed") && strings.Contains(ev.Message, "cache purge failed")
		}) {
			t.Errorf("no info event reporting the after_switch failure; events:\n%s", describe(evs))
		}
		if got := h.lastDeploy().State; got != state.DeploySucceeded {
			t.Errorf("deploy state: got %q, want %q", got, state.DeploySucceeded)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatalf("before_switch hook output: %v", err)
		}
		want := []string{v3, h.eng.Releases().Dir(v3), v1}
		if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")); diff != "" {
			t.Errorf("hook env CUTOVER_RELEASE, CUTOVER_RELEASE_DIR, CUTOVER_PREVIOUS_RELEASE (-want +got):\n%s", diff)
		}
	})
}

// putRelease records a release in state with its directory on disk
// (unless gone) and returns it.
func putRelease(t *testing.T, h *harness, id string, st state.ReleaseStatus, retired time.Time, gone bool) state.Release {
	t.Helper()
	if !gone {
		if err := os.MkdirAll(h.eng.Releases().Dir(id), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	app := h.cfg.App
	app.Name = "app-of-" + id
	rec := state.Release{ID: id, CreatedAt: time.Now(), Source: "/src/" + id, Dir: h.eng.Releases().Dir(id),
		Status: st, ConfigJSON: appConfigJSON(app), RetiredAt: retired}
	if err := h.store.PutRelease(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestRollbackTarget(t *testing.T) {
	h := newHarness(t, setup{})
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const (
		older   = "20260101T000001-older"
		prev    = "20260101T000002-prev"
		dupA    = "20260101T000003-dup"
		dupB    = "20260101T000004-dup"
		failed  = "20260101T000005-broken"
		fresh   = "20260101T000006-fresh"
		pruned  = "20260101T000007-gone"
		current = "20260101T000008-live"
	)
	putRelease(t, h, current, state.ReleasePrepared, time.Time{}, false)
	if err := h.store.SetActive(ctx, current, t0.Add(8*time.Hour)); err != nil {
		t.Fatal(err)
	}
	putRelease(t, h, older, state.ReleaseRetired, t0.Add(1*time.Hour), false)
	putRelease(t, h, prev, state.ReleaseRetired, t0.Add(7*time.Hour), false) // retired last
	putRelease(t, h, dupA, state.ReleaseRetired, t0.Add(3*time.Hour), false)
	putRelease(t, h, dupB, state.ReleaseRetired, t0.Add(4*time.Hour), false)
	putRelease(t, h, failed, state.ReleaseFailed, time.Time{}, false)
	putRelease(t, h, fresh, state.ReleasePrepared, time.Time{}, false)
	putRelease(t, h, pruned, state.ReleaseRetired, t0.Add(6*time.Hour), true)

	tests := []struct {
		name    string
		want    string
		target  string // the release picked, when accepted
		refused string // part of the refusal, when refused
	}{
		{name: "default is the most recently retired", want: "", target: prev},
		{name: "full id", want: older, target: older},
		{name: "label suffix", want: "older", target: older},
		{name: "ambiguous suffix", want: "dup", refused: "matches several releases"},
		{name: "never live: failed", want: "broken", refused: "never went live (failed)"},
		{name: "never live: prepared", want: "fresh", refused: "never went live (prepared)"},
		{name: "pruned", want: "gone", refused: "no longer on disk"},
		{name: "current", want: "live", refused: "is already live"},
		{name: "unknown", want: "nope", refused: `no release "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, app, err := h.eng.rollbackTarget(ctx, tt.want, current)
			if tt.refused != "" {
				var refused *RefusedError
				if !errors.As(err, &refused) || !strings.Contains(err.Error(), tt.refused) {
					t.Fatalf("rollbackTarget(%q): got %v (%T), want a refusal saying %q", tt.want, err, err, tt.refused)
				}
				return
			}
			if err != nil {
				t.Fatalf("rollbackTarget(%q): %v", tt.want, err)
			}
			if rec.ID != tt.target {
				t.Errorf("rollbackTarget(%q): got %q, want %q", tt.want, rec.ID, tt.target)
			}
			if got, want := app.Name, "app-of-"+tt.target; got != want {
				t.Errorf("app config of the target: got name %q, want %q (the recorded one)", got, want)
			}
		})
	}
}

func TestRollbackTargetNoPrevious(t *testing.T) {
	h := newHarness(t, setup{})
	_, _, err := h.eng.rollbackTarget(context.Background(), "", "")
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "no previous release") {
		t.Errorf("rollbackTarget with no history: got %v, want a refusal saying there is no previous release", err)
	}
}

func TestRollbackRestoresRecordedConfig(t *testing.T) {
	h := newHarness(t, setup{env: []string{`GREETING = "one"`}})
	v1 := h.mustDeploy("v1", nil)
	h.writeConfig(setup{env: []string{`GREETING = "two"`}})
	v2 := h.mustDeploy("v2", nil)

	live, evs, err := h.deploy(Request{Rollback: true})
	if err != nil {
		t.Fatalf("rollback: %v; events:\n%s", err, describe(evs))
	}
	if live != v1 {
		t.Errorf("live after rollback: got %q, want %q", live, v1)
	}
	h.assertServes("v1")
	d := h.lastDeploy()
	if d.Kind != "rollback" || d.State != state.DeploySucceeded || d.FromRelease != v2 {
		t.Errorf("history: got %s %s from %q, want rollback succeeded from %q", d.Kind, d.State, d.FromRelease, v2)
	}
	rec, err := h.store.Release(context.Background(), v1)
	if err != nil {
		t.Fatal(err)
	}
	app, err := decodeAppConfig(rec.ConfigJSON)
	if err != nil {
		t.Fatal(err)
	}
	if got := app.Env["GREETING"]; got != "one" {
		t.Errorf("recorded env of %s: got GREETING=%q, want %q", v1, got, "one")
	}
	// The rolled-back release runs with its recorded env, not today's.
	for _, m := range h.eng.instancesOf(v1, false) {
		if got := m.App().Env["GREETING"]; got != "one" {
			t.Errorf("instance %s runs with GREETING=%q, want %q", m.ID(), got, "one")
		}
	}
}

// The proxy opens its connections to a new instance once the instance
// answers a first health check, while it still has checks to pass: the
// connects are done before the switch, not with it. It opens as many as
// the live release holds.
func TestWarmBeforeHealthy(t *testing.T) {
	h := newHarness(t, setup{health: []string{`interval = "100ms"`, `healthy_after = 4`}})
	h.mustDeploy("v1", nil)
	// The live instance's pool as traffic would leave it: 6 connections.
	const live = 6
	v1 := h.eng.instancesOf("", true)
	if len(v1) != 1 {
		t.Fatalf("%d instances after the first deploy, want 1", len(v1))
	}
	b1 := v1[0].(*fleet.Instance).Backend()
	b1.Warm(live)
	for deadline := time.Now().Add(waitTimeout); b1.IdleConns() < live; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("live instance: %d idle connections, want %d", b1.IdleConns(), live)
		}
	}

	done := make(chan error, 1)
	src := h.source("v2", nil)
	go func() {
		_, _, err := h.deploy(Request{Source: src})
		done <- err
	}()
	// Polled until the deploy ends: the instance is healthy from then on.
	var err error
	warmed, most, ended := false, 0, false
	for !ended {
		select {
		case err = <-done:
			ended = true
		case <-time.After(5 * time.Millisecond):
		}
		for _, m := range h.eng.instancesOf("", true) {
			b := m.(*fleet.Instance).Backend()
			if b == nil || b == b1 || b.Healthy() {
				continue
			}
			most = max(most, b.IdleConns())
			if b.IdleConns() == live {
				warmed = true
			}
		}
	}
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if !warmed || most > live {
		t.Errorf("new instance before it was healthy: at most %d idle proxy connections, want exactly %d, as the live one held", most, live)
	}
	h.assertServes("v2")
}

// TestBootNiceUntilHealthy checks that instances boot at app.boot_nice
// below the daemon's priority and serve at the daemon's.
func TestBootNiceUntilHealthy(t *testing.T) {
	if !supervisor.PriorityRestorable() {
		t.Skip("this process may not raise a priority (not root, no CAP_SYS_NICE or RLIMIT_NICE)")
	}
	base, err := supervisor.ThreadNice(0)
	if err != nil {
		t.Fatal(err)
	}
	if base+10 > 19 {
		t.Skipf("the test runs at nice %d already", base)
	}
	h := newHarness(t, setup{instances: 2})
	v1 := h.mustDeploy("v1", map[string]string{recordNiceFile: ""})
	pids := h.pids(v1)
	if len(pids) != 2 {
		t.Fatalf("instances of %s: got pids %v, want 2", v1, pids)
	}
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join(h.eng.Releases().Dir(v1), "boot-nice-"+strconv.Itoa(pid)))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != strconv.Itoa(base+10) {
			t.Errorf("instance pid %d booted at nice %s, want %d (the default boot_nice 10 below the daemon's %d)", pid, got, base+10, base)
		}
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			tid, _ := strconv.Atoi(e.Name())
			nice, err := supervisor.ThreadNice(tid)
			if err != nil {
				continue // the thread ended
			}
			if nice != base {
				t.Errorf("instance pid %d, thread %d serves at nice %d, want the daemon's %d", pid, tid, nice, base)
			}
		}
	}
}
