package deploy

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cutover/cutover/internal/state"
)

func TestPreview(t *testing.T) {
	h := newHarness(t, setup{})
	v1 := h.mustDeploy("v1", nil)

	t.Run("abort", func(t *testing.T) {
		defer h.with(t)()
		r, err := h.eng.Start(Request{Source: h.source("v2", nil), Preview: true})
		if err != nil {
			t.Fatalf("start preview: %v", err)
		}
		i := 0
		ev := waitEvent(t, r, &i, func(ev Event) bool { return ev.Type == "preview" })
		v2 := h.releaseLabelled("v2")
		if ev.Release != v2 {
			t.Errorf("preview event release: got %q, want %q", ev.Release, v2)
		}
		if p := h.eng.Progress(); p == nil || p.Step != StepPreview.String() || p.Detail != "preview" {
			t.Errorf("progress during preview: got %+v, want step %q detail %q", p, StepPreview, "preview")
		}
		if len(ev.PreviewToken) < 22 || len(ev.PreviewLinks) != 1 || !strings.HasSuffix(ev.PreviewLinks[0], "/?cutover_preview="+ev.PreviewToken) {
			t.Errorf("preview event: token %q, links %q; want a token and a link carrying it", ev.PreviewToken, ev.PreviewLinks)
		}
		if p := h.eng.Progress(); p == nil || p.PreviewToken != ev.PreviewToken {
			t.Errorf("progress during preview: got %+v, want the token %q", p, ev.PreviewToken)
		}
		// Only requests with the token reach the release; its name, which
		// every response shows, does not.
		h.assertServes("v1")
		if code, got := h.get(h.cfg.Proxy.VersionHeader, v2); code != http.StatusOK || got != "v1" {
			t.Errorf("GET / with %s: %s: got %d %q, want 200 from the live %q", h.cfg.Proxy.VersionHeader, v2, code, got, "v1")
		}
		if code, got := h.get("X-Cutover-Preview", ev.PreviewToken); code != http.StatusOK || got != "v2" {
			t.Errorf("GET / with the preview token: got %d %q, want 200 %q", code, got, "v2")
		}

		if _, err := h.eng.Control(ActionAbort); err != nil {
			t.Fatalf("abort: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		live, err := r.Wait(ctx)
		if !errors.Is(err, ErrAborted) || KindOf(err) != "aborted" || !strings.Contains(err.Error(), "aborted by the operator") {
			t.Fatalf("aborted preview: got %v (kind %s), want an operator abort", err, KindOf(err))
		}
		if live != v1 {
			t.Errorf("live release: got %q, want %q", live, v1)
		}
		if got, want := h.releasesOfInstances(), []string{v1}; !slices.Equal(got, want) {
			t.Errorf("releases of instances: got %q, want %q", got, want)
		}
		if got := h.lastDeploy().State; got != state.DeployAborted {
			t.Errorf("deploy state: got %q, want %q", got, state.DeployAborted)
		}
		if got := h.px.Preview(); got != "" {
			t.Errorf("proxy preview after the abort: got %q, want none", got)
		}
		h.assertServes("v1")
	})

	t.Run("expires", func(t *testing.T) {
		defer h.with(t)()
		h.writeConfig(setup{deploy: []string{`preview_timeout = "300ms"`}})
		r, err := h.eng.Start(Request{Source: h.source("v3", nil), Preview: true})
		if err != nil {
			t.Fatalf("start preview: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		i := 0
		waitEvent(t, r, &i, func(ev Event) bool { return ev.Type == "preview" })
		live, err := r.Wait(ctx)
		if !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "expired after deploy.preview_timeout") {
			t.Fatalf("unattended preview: got %v, want it expired", err)
		}
		if live != v1 {
			t.Errorf("live release: got %q, want %q", live, v1)
		}
		if got, want := h.releasesOfInstances(), []string{v1}; !slices.Equal(got, want) {
			t.Errorf("releases of instances: got %q, want %q", got, want)
		}
		h.assertServes("v1")
	})
}

func TestRolling(t *testing.T) {
	h := newHarness(t, setup{instances: 3, deploy: []string{`strategy = "rolling"`, `batch = 1`}})
	h.mustDeploy("v1", nil)

	live, evs, err := h.deploy(Request{Source: h.source("v2", nil)})
	if err != nil {
		t.Fatalf("rolling deploy: %v; events:\n%s", err, describe(evs))
	}
	v2 := h.releaseLabelled("v2")
	if live != v2 {
		t.Errorf("live release: got %q, want %q", live, v2)
	}
	if n := countEvents(evs, isStep(StepShift, "ok")); n != 3 {
		t.Errorf("shift steps: got %d, want 3 (one per instance); events:\n%s", n, describe(evs))
	}
	if n := countEvents(evs, isStep(StepBoot, "ok")); n != 3 {
		t.Errorf("boot steps: got %d, want 3 (one per batch)", n)
	}
	if got, want := h.releasesOfInstances(), []string{v2, v2, v2}; !slices.Equal(got, want) {
		t.Errorf("releases of instances: got %q, want %q", got, want)
	}
	if got := h.px.Weights(); !cmp.Equal(got, map[string]int{v2: 100}) {
		t.Errorf("weights: got %v, want all on %s", got, v2)
	}

	t.Run("second batch fails to boot", func(t *testing.T) {
		defer h.with(t)()
		// The first instance of v3 boots; the second does not.
		live, evs, err := h.deploy(Request{Source: h.source("v3", map[string]string{failAfterFile: "1\n"})})
		if !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "batch 2/3 did not boot") {
			t.Fatalf("rolling deploy with a failing second batch: got %v, want it rolled back; events:\n%s", err, describe(evs))
		}
		if live != v2 {
			t.Errorf("live release: got %q, want %q", live, v2)
		}
		if n := countEvents(evs, isStep(StepShift, "ok")); n != 1 {
			t.Errorf("shift steps done: got %d, want 1; events:\n%s", n, describe(evs))
		}
		if got := h.lastDeploy().State; got != state.DeployRolledBack {
			t.Errorf("deploy state: got %q, want %q", got, state.DeployRolledBack)
		}
		if got, want := h.releasesOfInstances(), []string{v2, v2, v2}; !slices.Equal(got, want) {
			t.Errorf("releases of instances: got %q, want %q (the old release back to full size)", got, want)
		}
		if got := h.px.Weights(); !cmp.Equal(got, map[string]int{v2: 100}) {
			t.Errorf("weights: got %v, want all on %s", got, v2)
		}
		if got := h.active(); got != v2 {
			t.Errorf("active release: got %q, want %q", got, v2)
		}
		if got := h.releaseStatus(h.releaseLabelled("v3")); got != state.ReleaseFailed {
			t.Errorf("status of v3: got %q, want %q", got, state.ReleaseFailed)
		}
		h.assertServes("v2")
	})

	t.Run("first batch fails to boot", func(t *testing.T) {
		defer h.with(t)()
		before := h.pids(v2)
		live, evs, err := h.deploy(Request{Source: h.source("v4", map[string]string{failAfterFile: "0\n"})})
		if err == nil || errors.Is(err, ErrAborted) || KindOf(err) != "failed" {
			t.Fatalf("rolling deploy whose first batch fails: got %v, want a plain failure; events:\n%s", err, describe(evs))
		}
		if live != v2 {
			t.Errorf("live release: got %q, want %q", live, v2)
		}
		if n := countEvents(evs, func(ev Event) bool { return ev.Type == "step" && ev.Step == StepShift }); n != 0 {
			t.Errorf("shift step events: got %d, want none", n)
		}
		if got := h.lastDeploy().State; got != state.DeployFailed {
			t.Errorf("deploy state: got %q, want %q", got, state.DeployFailed)
		}
		if after := h.pids(v2); !slices.Equal(after, before) {
			t.Errorf("pids of %s: got %v, want them untouched %v", v2, after, before)
		}
		h.assertServes("v2")

		t.Run("release recorded failed", func(t *testing.T) {
			defer h.with(t)()
			if got := h.releaseStatus(h.releaseLabelled("v4")); got != state.ReleaseFailed {
				t.Errorf("status of v4: got %q, want %q", got, state.ReleaseFailed)
			}
		})
	})
}

// TestCanaryBadStepRollsBack: a new release that fails its requests is
// judged during its first step and all traffic goes back by itself, long
// before step_time ends.
func TestCanaryBadStepRollsBack(t *testing.T) {
	h := newHarness(t, setup{deploy: []string{`strategy = "canary"`, `steps = ["50%"]`, `step_time = "30s"`, `min_requests = 5`}})
	v1 := h.mustDeploy("v1", nil)

	r, err := h.eng.Start(Request{Source: h.source("v2", map[string]string{"demo.env": "DEMO_ERROR_RATE=1\n"})})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	waitEvent(t, r, &i, isStep(StepShift, "start"))

	// Traffic for the judge, until the deploy ends.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		for ctx.Err() == nil {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url+"/", nil)
			if err != nil {
				return
			}
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	live, err := r.Wait(ctx)
	cancel()
	<-loadDone

	if !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "canary 50%") {
		t.Fatalf("canary of a failing release: got %v, want it rolled back at 50%%", err)
	}
	if live != v1 {
		t.Errorf("live release: got %q, want %q", live, v1)
	}
	if got := h.lastDeploy().State; got != state.DeployRolledBack {
		t.Errorf("deploy state: got %q, want %q", got, state.DeployRolledBack)
	}
	if got := h.px.Weights(); !cmp.Equal(got, map[string]int{v1: 100}) {
		t.Errorf("weights: got %v, want all on %s", got, v1)
	}
	if got, want := h.releasesOfInstances(), []string{v1}; !slices.Equal(got, want) {
		t.Errorf("releases of instances: got %q, want %q", got, want)
	}
	if got := h.releaseStatus(h.releaseLabelled("v2")); got != state.ReleaseFailed {
		t.Errorf("status of v2: got %q, want %q", got, state.ReleaseFailed)
	}
	h.assertServes("v1")
}
