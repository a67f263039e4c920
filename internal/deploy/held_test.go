package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cutover/cutover/internal/state"
)

// stopFirst is a harness whose app, the demo app on one lock file, cannot
// run two copies at once, shipped with strategy "stop-first".
func stopFirst(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, setup{deploy: []string{`strategy = "stop-first"`}})
	h.writeConfig(setup{
		deploy: []string{`strategy = "stop-first"`},
		env:    []string{fmt.Sprintf("DEMO_LOCK_FILE = %q", filepath.Join(h.root, "app.lock"))},
	})
	return h
}

// loadResult is what a load loop saw.
type loadResult struct {
	ok, failed int
	errs       []string // the first few failures
	longest    time.Duration
}

// load sends GETs through the proxy from 4 clients, one after the other
// each, until the returned stop is called (at most a minute), and reports
// what they got.
func (h *harness) load() (stop func() loadResult) {
	var mu sync.Mutex
	var res loadResult
	done := make(chan struct{})
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Minute)
	for range 4 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{}, Timeout: waitTimeout}
			defer client.CloseIdleConnections()
			for time.Now().Before(deadline) {
				select {
				case <-done:
					return
				default:
				}
				start := time.Now()
				resp, err := client.Get(h.url + "/")
				d := time.Since(start)
				why := ""
				if err != nil {
					why = err.Error()
				} else {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						why = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
					}
				}
				mu.Lock()
				res.longest = max(res.longest, d)
				if why == "" {
					res.ok++
				} else {
					res.failed++
					if len(res.errs) < 5 {
						res.errs = append(res.errs, why)
					}
				}
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	return func() loadResult {
		close(done)
		wg.Wait()
		return res
	}
}

// assertNoFailures fails the test if the load saw a failed request.
func assertNoFailures(t *testing.T, res loadResult) {
	t.Helper()
	t.Logf("load: %d ok, %d failed, longest %s", res.ok, res.failed, res.longest.Round(time.Millisecond))
	if res.failed > 0 || res.ok == 0 {
		t.Errorf("load: %d failed of %d (want 0 failed, some served): %q", res.failed, res.ok+res.failed, res.errs)
	}
}

// stepsOf returns the step names of the step-end events, in order.
func stepsOf(evs []Event) []string {
	var out []string
	for _, ev := range evs {
		if ev.Type == "step" && ev.Status != "start" {
			out = append(out, ev.Step.String()+":"+ev.Status)
		}
	}
	return out
}

// TestStopFirstDeploysUnderLoad: with strategy "stop-first", an app that
// cannot run two copies at once (the lock file) is deployed twice and
// rolled back under load without a failed request: the old release stops
// before the new one boots, and requests wait meanwhile.
func TestStopFirstDeploysUnderLoad(t *testing.T) {
	h := stopFirst(t)
	h.mustDeploy("v1", nil)
	stop := h.load()
	var v2 string
	for _, name := range []string{"v2", "v3"} {
		old := h.pids(h.active())
		live, evs, err := h.deploy(Request{Source: h.source(name, nil)})
		if err != nil {
			t.Fatalf("deploy %s: %v\nevents:\n%s", name, err, describe(evs))
		}
		want := []string{"lock:ok", "prepare:ok", "check:ok", "hold:ok", "stop:ok", "held_boot:ok", "switch:ok", "drain:ok", "finish:ok"}
		if got := stepsOf(evs); !slices.Equal(got, want) {
			t.Errorf("deploy %s: steps %q, want %q", name, got, want)
		}
		for _, ev := range evs {
			if ev.Type == "step" && ev.Step == StepSwitch && ev.Status == "ok" && !strings.Contains(ev.Message, "held ") {
				t.Errorf("switch step: %q, want the hold's report", ev.Message)
			}
		}
		for _, pid := range old {
			if alive(pid) {
				t.Errorf("pid %d of the old release alive after the deploy of %s", pid, name)
			}
		}
		if name == "v2" {
			v2 = live
		}
	}
	live, evs, err := h.deploy(Request{Rollback: true})
	if err != nil || live != v2 {
		t.Fatalf("rollback: got %q, %v, want %s\nevents:\n%s", live, err, v2, describe(evs))
	}
	if !slices.Contains(stepsOf(evs), "hold:ok") {
		t.Errorf("rollback of a stop-first app: steps %q, want a held switch", stepsOf(evs))
	}
	assertNoFailures(t, stop())
	h.assertServes("v2")
}

// TestStopFirstBootFailsRestoresOld: a new release that fails to boot in
// a held switch leaves the old one serving again — started anew, since it
// was stopped — and the held requests get its answers, none an error.
func TestStopFirstBootFailsRestoresOld(t *testing.T) {
	h := stopFirst(t)
	v1 := h.mustDeploy("v1", nil)
	before := h.pids(v1)
	stop := h.load()
	live, evs, err := h.deploy(Request{Source: h.source("v2", map[string]string{"demo.env": "DEMO_FAIL_BOOT=1\n"})})
	res := stop()
	if err == nil || !strings.Contains(err.Error(), "exited during boot") {
		t.Fatalf("deploy of a release that fails to boot: got %v, want its boot failure\nevents:\n%s", err, describe(evs))
	}
	if live != v1 || h.active() != v1 {
		t.Errorf("live release: got %q (state.db %q), want %q", live, h.active(), v1)
	}
	if !slices.Contains(stepsOf(evs), "restore:ok") {
		t.Errorf("steps %q, want restore:ok", stepsOf(evs))
	}
	if countEvents(evs, func(ev Event) bool { return ev.Type == "log" }) == 0 {
		t.Errorf("no log tail of the failed release in the events:\n%s", describe(evs))
	}
	after := h.pids(v1)
	if len(after) != 1 || slices.Equal(after, before) {
		t.Errorf("pids of %s: got %v, want one new instance (was %v)", v1, after, before)
	}
	if st := h.releaseStatus(h.releaseLabelled("v2")); st != state.ReleaseFailed {
		t.Errorf("status of v2: got %q, want %q", st, state.ReleaseFailed)
	}
	assertNoFailures(t, res)
	h.assertServes("v1")
}

// TestHeldSwitchReleasePhaseFails: a release phase that fails leaves the
// database unchanged, so the old release comes back and serves the held
// requests.
func TestHeldSwitchReleasePhaseFails(t *testing.T) {
	h := stopFirst(t)
	v1 := h.mustDeploy("v1", nil)
	h.eng.during = func(ctx context.Context) (string, error) {
		time.Sleep(100 * time.Millisecond)
		return "", errors.New("migration 0042 failed: column in use")
	}
	stop := h.load()
	_, evs, err := h.deploy(Request{Source: h.source("v2", nil)})
	res := stop()
	if err == nil || !strings.Contains(err.Error(), "the database still suits "+v1+": migration 0042 failed") {
		t.Fatalf("deploy: got %v, want the release phase's failure\nevents:\n%s", err, describe(evs))
	}
	want := []string{"lock:ok", "prepare:ok", "check:ok", "hold:ok", "stop:ok", "release_phase:failed", "restore:ok"}
	if got := stepsOf(evs); !slices.Equal(got, want) {
		t.Errorf("steps %q, want %q", got, want)
	}
	assertNoFailures(t, res)
	h.assertServes("v1")
}

// TestHeldSwitchBootFailsAfterReleasePhase: once the release phase has
// changed the database, a new release that cannot boot does not send the
// held requests to the old code: they, and new ones, get 503 at once with
// what happened, until the next deploy.
func TestHeldSwitchBootFailsAfterReleasePhase(t *testing.T) {
	h := stopFirst(t)
	v1 := h.mustDeploy("v1", nil)
	h.eng.during = func(ctx context.Context) (string, error) { return "column dropped", nil }
	_, evs, err := h.deploy(Request{Source: h.source("v2", map[string]string{"demo.env": "DEMO_FAIL_BOOT=1\n"})})
	if !errors.Is(err, errHeldFailed) || !strings.Contains(err.Error(), "changed the database") || !strings.Contains(err.Error(), "Fix the release and deploy it") {
		t.Fatalf("deploy: got %v, want a held switch failed after the release phase\nevents:\n%s", err, describe(evs))
	}
	start := time.Now()
	code, body := h.get("", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "changed the database") {
		t.Errorf("request after the failure: got %d %q, want 503 saying the database changed", code, body)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the 503 took %s; want it at once, not after hold_timeout", d)
	}
	if left := h.pids(v1); len(left) != 0 {
		t.Errorf("instances of %s: %v, want none (stopped, not started again on a changed database)", v1, left)
	}
	h.eng.during = nil
	h.mustDeploy("v3", nil)
	h.assertServes("v3")
}

// TestHeldSwitchReleasePhaseFailsHalfway: a release phase that fails
// after it changed the schema in a way the old release cannot work with
// (errSchemaChanged) does not bring the old release back: requests get
// 503 at once, and the next deploy serves again.
func TestHeldSwitchReleasePhaseFailsHalfway(t *testing.T) {
	h := stopFirst(t)
	v1 := h.mustDeploy("v1", nil)
	h.eng.during = func(ctx context.Context) (string, error) {
		return "", fmt.Errorf("migration 0043 failed; it had already changed column public.items.note (%w)", errSchemaChanged)
	}
	_, evs, err := h.deploy(Request{Source: h.source("v2", nil)})
	if !errors.Is(err, errHeldFailed) || !strings.Contains(err.Error(), "failed half-way") || !strings.Contains(err.Error(), "public.items.note") {
		t.Fatalf("deploy: got %v, want a held switch failed half-way\nevents:\n%s", err, describe(evs))
	}
	if code, body := h.get("", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "half-way") {
		t.Errorf("request after the failure: got %d %q, want 503 saying the release phase failed half-way", code, body)
	}
	if left := h.pids(v1); len(left) != 0 {
		t.Errorf("instances of %s: %v, want none", v1, left)
	}
	h.eng.during = nil
	h.mustDeploy("v3", nil)
	h.assertServes("v3")
}

// TestAbortDuringHeldBoot: an abort while the new release boots in a held
// switch stops it at once and starts the old one again; pause is refused
// there, since it would hold the clients longer.
func TestAbortDuringHeldBoot(t *testing.T) {
	h := stopFirst(t)
	v1 := h.mustDeploy("v1", nil)
	stop := h.load()
	r, _ := h.startAndWait(Request{Source: h.source("v2", map[string]string{"demo.env": "DEMO_BOOT_DELAY=8s\n"})},
		isStep(StepHeldBoot, "start"))
	var refused *ControlRefusedError
	if _, err := h.eng.Control(ActionPause); !errors.As(err, &refused) || !strings.Contains(err.Error(), "does not pause") {
		t.Errorf("pause during the held boot: got %v, want it refused", err)
	}
	ans, err := h.eng.Control(ActionAbort)
	if err != nil || !strings.Contains(ans.Message, v1+" starts again and serves the held requests") {
		t.Fatalf("abort during the held boot: got %q, %v", ans.Message, err)
	}
	asked := time.Now()
	live, err := h.finish(r)
	took := time.Since(asked)
	res := stop()
	if !errors.Is(err, ErrAborted) || live != v1 {
		t.Fatalf("deploy aborted during the held boot: got %q, %v; want %s, aborted", live, err, v1)
	}
	if took > 5*time.Second {
		t.Errorf("the abort took %s, want well under the 8s boot", took)
	}
	assertNoFailures(t, res)
	h.assertServes("v1")
}

// TestStopFirstRefusesPreview: a preview needs two copies at once.
func TestStopFirstRefusesPreview(t *testing.T) {
	h := stopFirst(t)
	h.mustDeploy("v1", nil)
	_, _, err := h.deploy(Request{Source: h.source("v2", nil), Preview: true})
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "stop-first") {
		t.Errorf("preview deploy of a stop-first app: got %v, want refused", err)
	}
}

// TestStopFirstDoesNotWaitForWebsockets: a websocket open on the old
// release does not keep everyone held until proxy.drain_timeout (2s here)
// and drain_pace: it is closed with "going away" at the stop, and the
// hold lasts about the new release's boot.
func TestStopFirstDoesNotWaitForWebsockets(t *testing.T) {
	h := stopFirst(t)
	h.mustDeploy("v1", nil)
	var conns []*websocket.Conn
	for range 3 {
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.url, "http")+"/ws", nil)
		if err != nil {
			t.Fatalf("open a websocket through the proxy: %v", err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	_, evs, err := h.deploy(Request{Source: h.source("v2", nil)})
	if err != nil {
		t.Fatalf("deploy v2: %v\nevents:\n%s", err, describe(evs))
	}
	var held float64
	for _, ev := range evs {
		if ev.Type == "step" && ev.Status == "ok" && (ev.Step == StepHold || ev.Step == StepStop) {
			held += ev.DurationMS
			if ev.Step == StepHold && !strings.Contains(ev.Message, "3 websocket(s) open") {
				t.Errorf("hold step: %q, want it to name the 3 open websockets", ev.Message)
			}
		}
	}
	if held > 1000 {
		t.Errorf("hold and stop steps took %.0f ms with 3 websockets open; want well under drain_timeout (2s)", held)
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("websocket of the old release: got %v, want a close 1001 going away", err)
		}
	}
	h.assertServes("v2")
}
