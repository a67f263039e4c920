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
			obs("deploy", deploy.Event{Type: "log", Lines: []string{"x"}})
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
