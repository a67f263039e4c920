package deploy

import (
	"sync"
	"testing"
	"time"
)

// TestObserveAndShiftProgress: Options.Observe gets every step's end and
// the result, with the run's kind, and Progress says where a rolling
// shift is (its batch of how many) and its strategy.
func TestObserveAndShiftProgress(t *testing.T) {
	h := newHarness(t, setup{instances: 3, deploy: []string{`strategy = "rolling"`, `batch = 1`}})
	h.mustDeploy("v1", nil)
	first := len(h.observations())

	var mu sync.Mutex
	seen := map[[2]int]string{}
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if p := h.eng.Progress(); p != nil && p.ShiftSteps > 0 {
				mu.Lock()
				seen[[2]int{p.ShiftStep, p.ShiftSteps}] = p.Strategy
				mu.Unlock()
			}
		}
	}()
	_, evs, err := h.deploy(Request{Source: h.source("v2", nil)})
	close(stop)
	<-polled
	if err != nil {
		t.Fatalf("rolling deploy: %v; events:\n%s", err, describe(evs))
	}
	mu.Lock()
	for k, strategy := range seen {
		if k[1] != 3 || k[0] < 1 || k[0] > 3 || strategy != "rolling" {
			t.Errorf("progress during the shift: step %d of %d, strategy %q; want 1-3 of 3, rolling", k[0], k[1], strategy)
		}
	}
	if len(seen) == 0 {
		t.Errorf("progress never showed the shift's step")
	}
	mu.Unlock()

	obs := h.observations()[first:]
	var shifts, results int
	for _, o := range obs {
		if o.kind != "deploy" {
			t.Errorf("observed kind %q, want deploy", o.kind)
		}
		switch {
		case o.ev.Type == "step" && o.ev.Step == StepShift && o.ev.Status == "ok":
			shifts++
			if o.ev.DurationMS <= 0 {
				t.Errorf("shift step observed without its duration: %+v", o.ev)
			}
		case o.ev.Type == "result":
			results++
			if !o.ev.OK {
				t.Errorf("result observed: %+v, want ok", o.ev)
			}
		}
	}
	if shifts != 3 || results != 1 {
		t.Errorf("observed %d shift steps and %d results, want 3 and 1", shifts, results)
	}
	if p := h.eng.Progress(); p != nil {
		t.Errorf("progress after the deploy: %+v, want nil", p)
	}
}
