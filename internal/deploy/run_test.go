package deploy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/state"
)

func TestControlWhenIdle(t *testing.T) {
	h := newHarness(t, setup{})
	if _, err := h.eng.Control(ActionPause); !errors.Is(err, ErrNoDeploy) {
		t.Errorf("Control with no deploy in flight: got %v, want ErrNoDeploy", err)
	}
	if r := h.eng.Current(); r != nil {
		t.Errorf("Current with no deploy in flight: got a run, want nil")
	}
}

func TestPauseHoldsCanaryStep(t *testing.T) {
	const stepTime = 300 * time.Millisecond
	h := newHarness(t, setup{deploy: []string{`strategy = "canary"`, `steps = ["50%"]`, `step_time = "300ms"`}})
	v1 := h.mustDeploy("v1", nil)

	r, err := h.eng.Start(Request{Source: h.source("v2", nil)})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	i := 0
	waitEvent(t, r, &i, isStep(StepShift, "start"))

	t.Run("a second deploy is refused", func(t *testing.T) {
		defer h.with(t)()
		_, err := h.eng.Start(Request{Source: h.source("v3", nil)})
		var busy *BusyError
		if !errors.As(err, &busy) || !errors.Is(err, ErrBusy) || KindOf(err) != "busy" {
			t.Fatalf("Start during a deploy: got %v (%T), want *BusyError", err, err)
		}
		if busy.Running.Step != StepShift.String() || busy.Running.From != v1 {
			t.Errorf("busy error's running deploy: got %+v, want step %q from %q", busy.Running, StepShift, v1)
		}
	})

	if _, err := ParseAction("dance"); err == nil || !strings.Contains(err.Error(), `unknown action "dance"`) {
		t.Errorf("ParseAction(%q): got %v, want an unknown action error", "dance", err)
	}
	if _, err := h.eng.Control(ActionPause); err != nil {
		t.Fatalf("pause: %v", err)
	}
	waitEvent(t, r, &i, func(ev Event) bool { return ev.Type == "info" && strings.HasPrefix(ev.Message, "paused") })
	if p := h.eng.Progress(); p == nil || !p.Paused || p.Step != StepShift.String() || p.Detail != "canary 50%" {
		t.Fatalf("progress while paused: got %+v, want paused at step %q detail %q", p, StepShift, "canary 50%")
	}

	// Unpaused, the step would report its lack of traffic after one
	// step_time and end after two. Paused, nothing may happen for longer.
	ctx, cancel := context.WithTimeout(context.Background(), 3*stepTime)
	evs, _, err := r.Next(ctx, i)
	cancel()
	if err == nil {
		t.Fatalf("the paused deploy went on; events:\n%s", describe(evs))
	}
	if p := h.eng.Progress(); p == nil || p.Detail != "canary 50%" {
		t.Fatalf("progress after %s paused: got %+v, want still at canary 50%%", 3*stepTime, p)
	}

	if _, err := h.eng.Control(ActionResume); err != nil {
		t.Fatalf("resume: %v", err)
	}
	waitEvent(t, r, &i, func(ev Event) bool { return ev.Type == "info" && ev.Message == "resumed" })
	ctx, cancel = context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	live, err := r.Wait(ctx)
	if err != nil {
		t.Fatalf("resumed deploy: %v", err)
	}
	v2 := h.releaseLabelled("v2")
	if live != v2 {
		t.Errorf("live release: got %q, want %q", live, v2)
	}
	if got := h.lastDeploy().State; got != state.DeploySucceeded {
		t.Errorf("deploy state: got %q, want %q", got, state.DeploySucceeded)
	}
	if p := h.eng.Progress(); p != nil {
		t.Errorf("progress after the deploy: got %+v, want nil", p)
	}
	h.assertServes("v2")
}

func TestPauseBetweenRollingBatches(t *testing.T) {
	h := newHarness(t, setup{instances: 2, deploy: []string{`strategy = "rolling"`, `batch = 1`}})
	v1 := h.mustDeploy("v1", nil)

	r, err := h.eng.Start(Request{Source: h.source("v2", nil)})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	// Asked once the first batch moved: the deploy holds before its next
	// step (the second batch's boot, or its shift if that boot began).
	i := 0
	waitEvent(t, r, &i, isStep(StepShift, "ok"))
	if _, err := h.eng.Control(ActionPause); err != nil {
		t.Fatalf("pause: %v", err)
	}
	waitEvent(t, r, &i, func(ev Event) bool { return ev.Type == "info" && strings.HasPrefix(ev.Message, "paused") })
	v2 := h.releaseLabelled("v2")
	if got := h.px.Weights(); got[v1] != 1 || got[v2] != 1 {
		t.Errorf("weights while paused after batch 1/2: got %v, want %s:1 %s:1", got, v1, v2)
	}

	if _, err := h.eng.Control(ActionAbort); err != nil {
		t.Fatalf("abort: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	live, err := r.Wait(ctx)
	if !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "aborted by the operator after batch 1/2") {
		t.Fatalf("aborted rolling deploy: got %v, want an operator abort after batch 1/2", err)
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
