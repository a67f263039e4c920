package dashboard

import (
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
)

// TestHubNeverBlocksADeploy: a page that stops reading has its stream
// closed once it is subBuffer events behind, and the deploy's events go
// on; the replay of a long deploy keeps at most maxReplay events.
func TestHubNeverBlocksADeploy(t *testing.T) {
	h := NewHub()
	obs := h.Observe("shop")
	// No cancel: the Hub closes the stream of a page this far behind
	// (and a cancel would wait on a Hub that blocked).
	_, slow, _ := h.subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range maxReplay + 10 {
			obs("deploy", deploy.Event{Type: "waiting", Instance: "web-1", Message: "health check: connection refused"})
		}
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Observe blocked on a page that does not read")
	}
	n := 0
	for range slow {
		n++
	}
	if n != subBuffer {
		t.Errorf("the slow page got %d events before its stream closed, want %d", n, subBuffer)
	}
	replay, _, cancel2 := h.subscribe()
	defer cancel2()
	if len(replay) != maxReplay || replay[0].Index != 0 {
		t.Errorf("replay of %d events holds %d from index %d, want the first %d", maxReplay+10, len(replay), replay[0].Index, maxReplay)
	}
	// The result ends the deploy: the next event begins another, from 0.
	obs("deploy", deploy.Event{Type: "result", OK: true})
	obs("rollback", deploy.Event{Type: "step", Step: deploy.StepLock, Status: "start"})
	replay, _, cancel3 := h.subscribe()
	defer cancel3()
	if len(replay) != 1 || replay[0].Index != 0 || replay[0].Kind != "rollback" {
		t.Errorf("after a result, replay %+v, want the rollback's first event only", replay)
	}
}

// TestHubKeepsStepsPastLongOutput: a build that prints thousands of
// lines neither pushes the deploy's later steps and result out of the
// replay nor makes an open page fall behind: the page shows steps, not
// lines, and the Hub passes none.
func TestHubKeepsStepsPastLongOutput(t *testing.T) {
	h := NewHub()
	obs := h.Observe("shop")
	_, live, cancel := h.subscribe()
	defer cancel()
	obs("deploy", deploy.Event{Type: "step", Step: deploy.StepPrepare, Status: "start"})
	for range 2 * maxReplay {
		obs("deploy", deploy.Event{Type: "output", Step: deploy.StepPrepare, Instance: "stdout", Lines: []string{"compiling"}})
	}
	obs("deploy", deploy.Event{Type: "log", Instance: "web-1", Lines: []string{"listening"}})
	obs("deploy", deploy.Event{Type: "step", Step: deploy.StepPrepare, Status: "ok"})
	obs("deploy", deploy.Event{Type: "result", OK: true, Release: "r2"})
	var got []deployEvent
	for len(got) < 3 {
		ev, ok := <-live
		if !ok {
			t.Fatalf("the open page's stream was closed after %d events: it fell behind on the build's output", len(got))
		}
		got = append(got, ev)
	}
	if got[2].Event.Type != "result" || got[2].Index != 2 {
		t.Errorf("live events %+v, want the two steps then the result at index 2", got)
	}
	replay, _, cancel2 := h.subscribe()
	defer cancel2()
	if n := len(replay); n != 3 || replay[n-1].Event.Type != "result" {
		t.Fatalf("replay of %d events, want 3 ending with the result: %+v", n, replay[max(0, n-3):])
	}
}
