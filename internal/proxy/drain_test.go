package proxy

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// slowBackend starts a backend that reports each request on entered and
// answers "done" only once finish is closed.
func slowBackend(t *testing.T) (addr string, entered <-chan struct{}, finish chan struct{}) {
	t.Helper()
	in := make(chan struct{}, 4)
	finish = make(chan struct{})
	_, addr = startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		in <- struct{}{}
		select {
		case <-finish:
			io.WriteString(w, "done")
		case <-r.Context().Done():
		}
	})
	return addr, in, finish
}

func TestDrainWaitsForInFlight(t *testing.T) {
	addr, entered, finish := slowBackend(t)
	p, url := startProxy(t, Options{})
	addHealthy(p, "old", "r1", addr)
	addHealthy(p, "new", "r2", nameBackend(t, "new"))
	p.SetActive("r1")

	type result struct {
		status int
		body   string
	}
	results := make(chan result, 1)
	go func() {
		status, body := get(t, newClient(t), url)
		results <- result{status, body}
	}()
	recv(t, entered, "request to reach the old backend")
	p.SetActive("r2")
	if got := p.Stats()["r1"].InFlight; got != 1 {
		t.Errorf("r1 in flight: got %d, want 1", got)
	}

	drained := make(chan DrainResult, 1)
	go func() { drained <- p.Drain(context.Background(), "r1", 0) }()
	waitDraining(t, p, "r1")
	select {
	case res := <-drained:
		t.Fatalf("drain returned %+v with a request in flight", res)
	case r := <-results:
		t.Fatalf("request answered %d %q before the backend finished", r.status, r.body)
	default:
	}
	close(finish)
	if res := recv(t, drained, "drain"); res != (DrainResult{Finished: 1}) {
		t.Errorf("drain: got %+v, want %+v", res, DrainResult{Finished: 1})
	}
	if r := recv(t, results, "request"); r.status != http.StatusOK || r.body != "done" {
		t.Errorf("drained request: got %d %q, want %d %q", r.status, r.body, http.StatusOK, "done")
	}
	if got := p.Stats()["r1"].InFlight; got != 0 {
		t.Errorf("r1 in flight after drain: got %d, want 0", got)
	}
}

func TestDrainCutsRequestAtDeadline(t *testing.T) {
	addr, entered, _ := slowBackend(t)
	p, url := startProxy(t, Options{App: "shop", HoldTimeout: 50 * time.Millisecond})
	addHealthy(p, "old", "r1", addr)
	p.SetActive("r1")

	statuses := make(chan int, 1)
	go func() {
		status, _ := get(t, newClient(t), url)
		statuses <- status
	}()
	recv(t, entered, "request to reach the backend")
	p.SetActive("")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if res := p.Drain(ctx, "r1", 0); res != (DrainResult{Cut: 1}) {
		t.Errorf("drain: got %+v, want %+v", res, DrainResult{Cut: 1})
	}
	// The backend connection was cut before any response byte: the GET
	// may be sent again, and waits for a release to go to; there is none.
	if got := recv(t, statuses, "cut request"); got != http.StatusServiceUnavailable {
		t.Errorf("cut request status: got %d, want %d", got, http.StatusServiceUnavailable)
	}
}

func TestDrainUnknownRelease(t *testing.T) {
	p := New(Options{})
	if res := p.Drain(context.Background(), "nope", 0); res != (DrainResult{}) {
		t.Errorf("drain: got %+v, want %+v", res, DrainResult{})
	}
}

func TestDrainIdleRelease(t *testing.T) {
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", nameBackend(t, "a"))
	p.SetActive("r1")
	if status, _ := get(t, newClient(t), url); status != http.StatusOK {
		t.Fatalf("status: got %d, want %d", status, http.StatusOK)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	// The proxy may still be finishing the request when the client has the
	// whole answer, so Finished is 0 or 1.
	if res := p.Drain(ctx, "r1", 0); res.Cut != 0 || res.Finished > 1 {
		t.Errorf("drain: got %+v, want nothing cut and at most 1 finished", res)
	}
	if got := p.Stats()["r1"].InFlight; got != 0 {
		t.Errorf("in flight after drain: got %d, want 0", got)
	}
}

// waitDraining returns once a Drain of release is waiting.
func waitDraining(t *testing.T, p *Proxy, release string) {
	t.Helper()
	r := p.lookupRelease(release)
	deadline := time.Now().Add(waitLimit)
	for r.waiters.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for Drain(%q) to wait", release)
		}
		runtime.Gosched()
	}
}
