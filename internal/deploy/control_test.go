package deploy

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/state"
)

// TestControlTableComplete: every step has a rule for every action but
// resume (the same everywhere), so no action goes unanswered.
func TestControlTableComplete(t *testing.T) {
	for s := StepLock; int(s) < len(stepText); s++ {
		for _, a := range []Action{ActionPromote, ActionAbort, ActionPause} {
			r, ok := controlTable[s][a]
			if !ok || r.say == "" {
				t.Errorf("no rule for %s in step %s", a, s)
			}
		}
	}
}

// TestControlDecide walks the table through the situations a run can be
// in, without a run: what is honoured, what is refused, and the words.
func TestControlDecide(t *testing.T) {
	type want struct {
		a      Action
		refuse bool
		say    string // a part of the acknowledgement or of the refusal
	}
	for _, tc := range []struct {
		name  string
		setup func(c *control)
		wants []want
	}{
		{"blue-green boot", func(c *control) { c.step = StepBoot }, []want{
			{ActionPromote, true, "a blue-green deploy switches as soon as its instances are healthy; nothing to promote"},
			{ActionResume, true, "not paused"},
			{ActionPause, false, "pause: the deploy holds when the instances of r2 are healthy, before traffic moves"},
			{ActionPause, true, "already paused"},
			{ActionResume, false, "resume: the deploy goes on"},
			{ActionAbort, false, "abort: stopping the booting instances of r2; the live release r1 keeps serving"},
			{ActionPause, true, "already on its way out (aborted by the operator)"},
		}},
		{"canary before its steps", func(c *control) { c.step, c.strategy = StepBoot, "canary" }, []want{
			{ActionPromote, true, "nothing to promote yet: the canary steps begin once r2 has booted"},
		}},
		{"expand", func(c *control) { c.step = StepExpand }, []want{
			{ActionAbort, false, "a migration is never cut in half"},
		}},
		{"preview", func(c *control) { c.step, c.preview = StepPreview, true }, []want{
			{ActionPause, false, "preview's clock"},
			{ActionPromote, false, "promote: traffic moves to r2 (bluegreen)"},
		}},
		{"switch", func(c *control) { c.step = StepSwitch }, []want{
			{ActionAbort, true, "once the deploy ends, `cutover rollback` goes back"},
			{ActionPause, true, "nothing left to hold"},
		}},
		{"after the switch", func(c *control) { c.step, c.switched = StepHook, true }, []want{
			{ActionAbort, true, "the new release r2 is live; `cutover rollback` goes back"},
			{ActionPromote, true, "live already"},
		}},
		{"watch", func(c *control) { c.step, c.switched = StepWatch, true }, []want{
			{ActionPromote, false, "promote: the watch ends now and r1 is drained and stopped"},
			{ActionAbort, false, "all traffic goes back to r1"},
		}},
		{"drain", func(c *control) { c.step, c.switched = StepDrain, true }, []want{
			{ActionAbort, true, "`cutover rollback` goes back"},
		}},
		{"paused before the switch", func(c *control) { c.step, c.paused, c.held = StepSwitch, true, true }, []want{
			{ActionPause, true, "already paused before switch"},
			{ActionPromote, true, "a blue-green deploy switches"},
			{ActionAbort, false, "abort: the paused deploy stops before switch; r1 keeps serving"},
		}},
		{"held switch: hold", func(c *control) { c.step, c.strategy = StepHold, "stop-first" }, []want{
			{ActionPause, true, "a held switch does not pause"},
			{ActionPromote, true, "a held switch moves the held requests to r2 as soon as it is healthy"},
			{ActionAbort, false, "abort: the hold ends and r1 serves the held requests"},
		}},
		{"held switch: release phase", func(c *control) { c.step, c.strategy = StepReleasePhase, "stop-first" }, []want{
			{ActionAbort, true, "never cut in half"},
		}},
		{"held switch: boot", func(c *control) { c.step, c.strategy = StepHeldBoot, "stop-first" }, []want{
			{ActionAbort, false, "r1 starts again and serves the held requests"},
		}},
		{"held switch: restore", func(c *control) { c.step, c.strategy = StepRestore, "stop-first" }, []want{
			{ActionAbort, true, "r1 is starting again"},
		}},
		{"first deploy", func(c *control) { c.step, c.live = StepBoot, "" }, []want{
			{ActionAbort, false, "abort: stopping the booting instances of r2; no release was live"},
		}},
	} {
		c := newControl("r1")
		c.deployID, c.release, c.strategy = 7, "r2", "bluegreen"
		tc.setup(c)
		for _, w := range tc.wants {
			got, err := c.decide(w.a)
			var refused *ControlRefusedError
			switch {
			case w.refuse && !errors.As(err, &refused):
				t.Errorf("%s: %s: got %q, %v; want refused", tc.name, w.a, got, err)
			case w.refuse && (!strings.Contains(err.Error(), w.say) || KindOf(err) != "refused"):
				t.Errorf("%s: %s: got %q (kind %s), want a refusal saying %q", tc.name, w.a, err, KindOf(err), w.say)
			case !w.refuse && err != nil:
				t.Errorf("%s: %s: got %v, want honoured", tc.name, w.a, err)
			case !w.refuse && !strings.Contains(got, w.say):
				t.Errorf("%s: %s: got %q, want it to say %q", tc.name, w.a, got, w.say)
			}
		}
	}
	err := (&ControlRefusedError{Action: ActionAbort, Step: StepDrain, DeployID: 3, Reason: "why"}).Error()
	if want := "abort refused (deploy #3, step drain): why"; err != want {
		t.Errorf("ControlRefusedError: got %q, want %q", err, want)
	}
}

// startAndWait starts a deploy of source and waits for the event match.
func (h *harness) startAndWait(req Request, match func(Event) bool) (*Run, int) {
	h.t.Helper()
	r, err := h.eng.Start(req)
	if err != nil {
		h.t.Fatalf("start: %v", err)
	}
	i := 0
	waitEvent(h.t, r, &i, match)
	return r, i
}

// finish waits for r's end.
func (h *harness) finish(r *Run) (string, error) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return r.Wait(ctx)
}

// TestAbortDuringBlueGreenBoot: an abort while the new instances boot
// stops them at once, not after their boot (or boot_timeout), and the live
// release serves on untouched. It was once taken and ignored: the deploy
// completed and reported success.
func TestAbortDuringBlueGreenBoot(t *testing.T) {
	h := newHarness(t, setup{instances: 2})
	v1 := h.mustDeploy("v1", nil)
	before := h.pids(v1)

	r, _ := h.startAndWait(Request{Source: h.source("v2", map[string]string{"demo.env": "DEMO_BOOT_DELAY=8s\n"})},
		isStep(StepBoot, "start"))
	v2 := h.releaseLabelled("v2")
	asked := time.Now()
	ans, err := h.eng.Control(ActionAbort)
	if err != nil {
		t.Fatalf("abort during boot: %v", err)
	}
	if want := "abort: stopping the booting instances of " + v2 + "; the live release " + v1 + " keeps serving"; ans.Message != want {
		t.Errorf("abort's answer: got %q, want %q", ans.Message, want)
	}
	live, err := h.finish(r)
	took := time.Since(asked)
	if !errors.Is(err, ErrAborted) || KindOf(err) != "aborted" || !strings.Contains(err.Error(), "aborted by the operator during boot") {
		t.Fatalf("deploy aborted during boot: got %v (kind %s), want an operator abort during boot", err, KindOf(err))
	}
	// The instances take 8s to boot and boot_timeout is 10s; the abort
	// must not wait for either.
	if took > 3*time.Second {
		t.Errorf("the abort took %s to end the deploy, want well under the 8s boot", took)
	}
	if live != v1 {
		t.Errorf("live release: got %q, want %q", live, v1)
	}
	if after := h.pids(v1); !slices.Equal(after, before) {
		t.Errorf("pids of %s: got %v, want them untouched %v", v1, after, before)
	}
	if got, want := h.releasesOfInstances(), []string{v1, v1}; !slices.Equal(got, want) {
		t.Errorf("releases of instances: got %q, want %q", got, want)
	}
	if left := processesIn(h.eng.Releases().Dir(v2)); len(left) > 0 {
		t.Errorf("processes of %s still running: %v", v2, left)
	}
	if got := h.lastDeploy().State; got != state.DeployAborted {
		t.Errorf("deploy state: got %q, want %q", got, state.DeployAborted)
	}
	h.assertServes("v1")
}

// TestPauseHoldsBlueGreenBeforeSwitch: a pause during a blue-green boot
// lets the boot end and holds the deploy before the switch; promote is
// refused with why, resume switches.
func TestPauseHoldsBlueGreenBeforeSwitch(t *testing.T) {
	h := newHarness(t, setup{})
	v1 := h.mustDeploy("v1", nil)

	r, i := h.startAndWait(Request{Source: h.source("v2", map[string]string{"demo.env": "DEMO_BOOT_DELAY=500ms\n"})},
		isStep(StepBoot, "start"))
	v2 := h.releaseLabelled("v2")
	ans, err := h.eng.Control(ActionPause)
	if err != nil || !strings.HasPrefix(ans.Message, "pause: the deploy holds when the instances of "+v2+" are healthy, before traffic moves") {
		t.Fatalf("pause during boot: got %q, %v; want it honoured at the boot's end", ans.Message, err)
	}
	waitEvent(t, r, &i, isStep(StepBoot, "ok"))
	waitEvent(t, r, &i, func(ev Event) bool {
		return ev.Type == "info" && strings.HasPrefix(ev.Message, "paused before the switch step")
	})
	if p := h.eng.Progress(); p == nil || !p.Paused || p.Step != StepSwitch.String() {
		t.Errorf("progress while held: got %+v, want paused at step switch", p)
	}
	if a := h.active(); a != v1 {
		t.Errorf("live release while held: got %q, want %q", a, v1)
	}
	h.assertServes("v1")

	_, err = h.eng.Control(ActionPromote)
	var refused *ControlRefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "a blue-green deploy switches as soon as its instances are healthy; nothing to promote") {
		t.Errorf("promote while held: got %v, want refused with why", err)
	}
	if _, err := h.eng.Control(ActionPause); !errors.As(err, &refused) || !strings.Contains(err.Error(), "already paused") {
		t.Errorf("a second pause: got %v, want refused: already paused", err)
	}
	if ans, err := h.eng.Control(ActionResume); err != nil || ans.Message != "resume: the deploy goes on with the switch step" {
		t.Fatalf("resume: got %q, %v", ans.Message, err)
	}
	live, err := h.finish(r)
	if err != nil || live != v2 {
		t.Fatalf("resumed deploy: got %q, %v; want %s live", live, err, v2)
	}
	h.assertServes("v2")
}

// TestAbortStopsBeforeSwitchHook: an abort during the before_switch hook
// stops the hook at once; nothing switched.
func TestAbortStopsBeforeSwitchHook(t *testing.T) {
	h := newHarness(t, setup{})
	v1 := h.mustDeploy("v1", nil)
	h.writeConfig(setup{deploy: []string{`before_switch = "sleep 30"`}})

	r, _ := h.startAndWait(Request{Source: h.source("v2", nil)}, isStep(StepHook, "start"))
	asked := time.Now()
	if ans, err := h.eng.Control(ActionAbort); err != nil || !strings.HasPrefix(ans.Message, "abort: stopping the before_switch hook") {
		t.Fatalf("abort during the hook: got %q, %v", ans.Message, err)
	}
	live, err := h.finish(r)
	if !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "during the before_switch hook, which was stopped; nothing switched") {
		t.Fatalf("deploy aborted during the hook: got %v, want an operator abort", err)
	}
	if took := time.Since(asked); took > 5*time.Second {
		t.Errorf("the abort took %s, want the 30s hook stopped at once", took)
	}
	if live != v1 {
		t.Errorf("live release: got %q, want %q", live, v1)
	}
	if got, want := h.releasesOfInstances(), []string{v1}; !slices.Equal(got, want) {
		t.Errorf("releases of instances: got %q, want %q", got, want)
	}
	h.assertServes("v1")
}

// TestControlRefusedAfterSwitch: once traffic moved for good, abort, pause
// and promote are refused with why and what to do; the deploy goes on.
func TestControlRefusedAfterSwitch(t *testing.T) {
	h := newHarness(t, setup{})
	h.mustDeploy("v1", nil)
	gate := filepath.Join(h.root, "go-on")
	h.writeConfig(setup{deploy: []string{`after_switch = "while [ ! -e '` + gate + `' ]; do sleep 0.05; done"`}})

	r, _ := h.startAndWait(Request{Source: h.source("v2", nil)}, isStep(StepHook, "start"))
	v2 := h.releaseLabelled("v2")
	for _, tc := range []struct {
		a   Action
		why string
	}{
		{ActionAbort, "the new release " + v2 + " is live; `cutover rollback` goes back"},
		{ActionPause, "traffic has moved to " + v2 + " for good; there is nothing left to hold"},
		{ActionPromote, "the new release " + v2 + " is live already; nothing to promote"},
		{ActionResume, "not paused"},
	} {
		_, err := h.eng.Control(tc.a)
		var refused *ControlRefusedError
		if !errors.As(err, &refused) || refused.Action != tc.a || refused.Step != StepHook || refused.Reason != tc.why || KindOf(err) != "refused" {
			t.Errorf("%s after the switch: got %v (kind %s), want refused: %q", tc.a, err, KindOf(err), tc.why)
		}
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if live, err := h.finish(r); err != nil || live != v2 {
		t.Fatalf("deploy after the refusals: got %q, %v; want %s live", live, err, v2)
	}
	h.assertServes("v2")
}

// TestAbortDuringRollingBoot: an abort while a later batch of a rolling
// deploy boots stops it at once and brings everything back to the old
// release, which kept serving.
func TestAbortDuringRollingBoot(t *testing.T) {
	h := newHarness(t, setup{instances: 2, deploy: []string{`strategy = "rolling"`, `batch = 1`}})
	v1 := h.mustDeploy("v1", nil)

	r, i := h.startAndWait(Request{Source: h.source("v2", map[string]string{slowAfterFile: "1 8s\n"})}, isStep(StepShift, "ok"))
	waitEvent(t, r, &i, isStep(StepBoot, "start")) // batch 2/2, 8 s to boot
	v2 := h.releaseLabelled("v2")
	asked := time.Now()
	if ans, err := h.eng.Control(ActionAbort); err != nil || ans.Message != "abort: stopping the booting instances of "+v2+"; the live release "+v1+" keeps serving" {
		t.Fatalf("abort during batch 2's boot: got %q, %v", ans.Message, err)
	}
	live, err := h.finish(r)
	if !errors.Is(err, errRolledBack) || !strings.Contains(err.Error(), "aborted by the operator after batch 1/2 (batch 2 was booting)") {
		t.Fatalf("rolling deploy aborted during a boot: got %v, want rolled back after batch 1/2", err)
	}
	if took := time.Since(asked); took > 5*time.Second {
		t.Errorf("the abort took %s, want the 8s boot stopped at once", took)
	}
	if live != v1 {
		t.Errorf("live release: got %q, want %q", live, v1)
	}
	if got, want := h.releasesOfInstances(), []string{v1, v1}; !slices.Equal(got, want) {
		t.Errorf("releases of instances: got %q, want %q", got, want)
	}
	if got := h.lastDeploy().State; got != state.DeployRolledBack {
		t.Errorf("deploy state: got %q, want %q", got, state.DeployRolledBack)
	}
	h.assertServes("v1")
}

// TestAbortDuringGitPrepare: an abort while a git deploy runs its tests
// stops them at once and leaves nothing behind.
func TestAbortDuringGitPrepare(t *testing.T) {
	h := newHarness(t, setup{})
	v1 := h.mustDeploy("v1", nil)
	repo := filepath.Join(h.root, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "VERSION"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "VERSION"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "v2"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	h.writeConfig(setup{release: []string{`repo = "` + repo + `"`, `test = "echo testing; sleep 30"`}})

	r, _ := h.startAndWait(Request{Git: "main"}, func(ev Event) bool {
		return ev.Type == "output" && slices.Contains(ev.Lines, "testing")
	})
	asked := time.Now()
	if ans, err := h.eng.Control(ActionAbort); err != nil || !strings.HasPrefix(ans.Message, "abort: the deploy of the new release stops now") {
		t.Fatalf("abort during prepare: got %q, %v", ans.Message, err)
	}
	live, err := h.finish(r)
	if !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "during prepare: the checkout, test and build of main were stopped") {
		t.Fatalf("git deploy aborted during its tests: got %v, want an operator abort", err)
	}
	if took := time.Since(asked); took > 5*time.Second {
		t.Errorf("the abort took %s, want the 30s test stopped at once", took)
	}
	if live != v1 {
		t.Errorf("live release: got %q, want %q", live, v1)
	}
	ents, err := os.ReadDir(filepath.Join(h.cfg.DataDir, "releases"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != v1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("releases on disk after the abort: got %q, want only %s", names, v1)
	}
	if got := h.lastDeploy().State; got != state.DeployAborted {
		t.Errorf("deploy state: got %q, want %q", got, state.DeployAborted)
	}
	h.assertServes("v1")
}
