package proxy

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sendGETs sends n GETs, each from its own goroutine, and returns the
// channel their answers arrive on.
func sendGETs(t *testing.T, c *http.Client, url string, n int, edit func(*http.Request)) <-chan answer {
	t.Helper()
	answers := make(chan answer, n)
	for range n {
		go func() {
			resp, body := send(t, c, url, edit)
			answers <- answer{http.MethodGet, resp.StatusCode, body}
		}()
	}
	return answers
}

// noAnswer fails the test if an answer arrives within d.
func noAnswer(t *testing.T, answers <-chan answer, d time.Duration, why string) {
	t.Helper()
	select {
	case a := <-answers:
		t.Fatalf("answered %d %q %s; want it held", a.status, a.body, why)
	case <-time.After(d):
	}
}

// TestHoldThenUnholdToNewRelease: requests that come while held reach no
// backend, the old release's included, and go to the new release, all
// of them, at Unhold; the report counts them and their longest wait.
func TestHoldThenUnholdToNewRelease(t *testing.T) {
	p, url := twoReleases(t, Options{HoldTimeout: waitLimit})
	p.SetActive("r1")
	c := newClient(t)
	if _, body := send(t, c, url, nil); body != "r1" {
		t.Fatalf("before the hold: got %q, want %q", body, "r1")
	}
	p.Hold()
	if !p.Holding() {
		t.Errorf("Holding after Hold: got false, want true")
	}
	const n = 6
	answers := sendGETs(t, c, url, n, nil)
	noAnswer(t, answers, 150*time.Millisecond, "while held")
	rep := p.Unhold("r2")
	for range n {
		if a := recv(t, answers, "held request"); a.status != http.StatusOK || a.body != "r2" {
			t.Errorf("held request: got %d %q, want 200 %q", a.status, a.body, "r2")
		}
	}
	if rep.Held != n {
		t.Errorf("report: held %d, want %d", rep.Held, n)
	}
	if rep.Longest < 100*time.Millisecond || rep.Longest > rep.Duration {
		t.Errorf("report: longest %v, want ≥ 100ms and ≤ the hold's %v", rep.Longest, rep.Duration)
	}
	if rep.TimedOut != 0 {
		t.Errorf("report: %d timed out, want 0", rep.TimedOut)
	}
	if p.Holding() || p.Active() != "r2" {
		t.Errorf("after Unhold: holding %v, active %q; want false, %q", p.Holding(), p.Active(), "r2")
	}
	if _, body := send(t, c, url, nil); body != "r2" {
		t.Errorf("after the hold: got %q, want %q", body, "r2")
	}
}

// TestHoldHoldsPinsAndPreview: while held, neither a version pin nor the
// preview token reaches a backend.
func TestHoldHoldsPinsAndPreview(t *testing.T) {
	p, url := twoReleases(t, Options{HoldTimeout: waitLimit, Sticky: true})
	p.SetWeights(map[string]int{"r1": 50, "r2": 50})
	token := NewPreviewToken()
	p.Hold()
	c := newClient(t)
	pinned := sendGETs(t, c, url, 2, withCookie("r2"))
	noAnswer(t, pinned, 100*time.Millisecond, "to a pinned request while held")
	p.SetPreview("r2", token)
	previewed := sendGETs(t, c, url, 2, withPreviewHeader(token))
	noAnswer(t, previewed, 100*time.Millisecond, "to a preview request while held")
	p.Unhold("")
	for range 2 {
		if a := recv(t, previewed, "preview request"); a.body != "r2" {
			t.Errorf("preview request after the hold: got %d %q, want %q", a.status, a.body, "r2")
		}
		if a := recv(t, pinned, "pinned request"); a.status != http.StatusOK {
			t.Errorf("pinned request after the hold: got %d %q, want 200", a.status, a.body)
		}
	}
}

// TestWaitRequestsDoesNotCut: WaitRequests waits for a request in flight
// without cutting it, reports it still running when its context ends
// first, and does not wait for an open websocket.
func TestWaitRequestsDoesNotCut(t *testing.T) {
	addr, entered, finish := slowBackend(t)
	p, url := startProxy(t, Options{HoldTimeout: waitLimit})
	addHealthy(p, "old", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)
	got := make(chan string, 1)
	go func() {
		_, body := get(t, c, url)
		got <- body
	}()
	recv(t, entered, "request to reach the backend")
	p.Hold()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	res := p.WaitRequests(ctx, "r1")
	cancel()
	if res != (InFlight{Requests: 1}) {
		t.Errorf("WaitRequests until its deadline: got %+v, want 1 request in flight", res)
	}
	time.AfterFunc(50*time.Millisecond, func() { close(finish) })
	if res := p.WaitRequests(context.Background(), "r1"); res != (InFlight{Finished: 1}) {
		t.Errorf("WaitRequests: got %+v, want 1 finished, nothing in flight", res)
	}
	if body := recv(t, got, "the request in flight"); body != "done" {
		t.Errorf("request in flight: got %q, want %q (not cut)", body, "done")
	}
	p.Unhold("")
}

// TestWaitRequestsSkipsWebsockets: an open websocket does not hold up
// WaitRequests; it is reported.
func TestWaitRequestsSkipsWebsockets(t *testing.T) {
	wsAddr, _ := echoBackend(t, "ws")
	p, url := startProxy(t, Options{HoldTimeout: waitLimit})
	addHealthy(p, "ws", "r1", wsAddr)
	p.SetActive("r1")
	conn, _ := dialWS(t, url)
	if got := echo(t, conn, "hi"); got != "ws:hi" {
		t.Fatalf("echo: got %q, want %q", got, "ws:hi")
	}
	p.Hold()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	start := time.Now()
	res := p.WaitRequests(ctx, "r1")
	if res != (InFlight{Websockets: 1}) || time.Since(start) > waitLimit/2 {
		t.Errorf("WaitRequests with a websocket open: got %+v after %s, want 1 websocket at once", res, time.Since(start))
	}
	p.Unhold("")
}

// TestHoldTimeoutLoggedOnce: requests held past HoldTimeout during a held
// switch get 503 saying the app is switching, and the hold logs one line
// with their number rather than one per request.
func TestHoldTimeoutLoggedOnce(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	p, url := twoReleases(t, Options{HoldTimeout: 100 * time.Millisecond, App: "shop", Logger: log})
	p.SetActive("r1")
	p.Hold()
	const n = 3
	answers := sendGETs(t, newClient(t), url, n, nil)
	for range n {
		a := recv(t, answers, "held request")
		if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "shop is switching releases") {
			t.Errorf("held past hold_timeout: got %d %q, want 503 saying shop is switching releases", a.status, a.body)
		}
	}
	rep := p.Unhold("r2")
	if rep.TimedOut != n || rep.Held != n {
		t.Errorf("report: %d held, %d timed out; want %d, %d", rep.Held, rep.TimedOut, n, n)
	}
	lines := strings.Count(logs.String(), "held longer than proxy.hold_timeout")
	if want := "3 request(s) held longer than proxy.hold_timeout 100ms during a held switch were answered 503"; lines != 1 || !strings.Contains(logs.String(), want) {
		t.Errorf("log: %d line(s) about the timeouts, want 1 saying %q:\n%s", lines, want, logs.String())
	}
}

// TestFailHoldAnswers503: a held switch that fails answers the held
// requests and new ones 503 at once with why, never sending them to a
// backend, until Unhold.
func TestFailHoldAnswers503(t *testing.T) {
	p, url := twoReleases(t, Options{HoldTimeout: waitLimit})
	p.SetActive("r1")
	p.Hold()
	c := newClient(t)
	held := sendGETs(t, c, url, 2, nil)
	noAnswer(t, held, 100*time.Millisecond, "while held")
	rep := p.FailHold("the release failed; deploy a fixed one")
	if rep.Held != 2 {
		t.Errorf("report: held %d, want 2", rep.Held)
	}
	start := time.Now()
	for range 2 {
		if a := recv(t, held, "held request"); a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "deploy a fixed one") {
			t.Errorf("held request after FailHold: got %d %q, want 503 with the reason", a.status, a.body)
		}
	}
	if resp, body := send(t, c, url, nil); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "deploy a fixed one") {
		t.Errorf("new request after FailHold: got %d %q, want 503 with the reason", resp.StatusCode, body)
	}
	if d := time.Since(start); d > waitLimit/2 {
		t.Errorf("answers after FailHold took %v; want them at once", d)
	}
	if !p.Holding() {
		t.Errorf("Holding after FailHold: got false, want true")
	}
	p.Unhold("r2")
	if _, body := send(t, c, url, nil); body != "r2" {
		t.Errorf("after Unhold: got %q, want %q", body, "r2")
	}
	// The next deploy's switch ends the refusal too.
	p.Hold()
	p.FailHold("broken")
	p.SetActive("r1")
	if resp, body := send(t, c, url, nil); body != "r1" || p.Holding() {
		t.Errorf("SetActive after FailHold: got %d %q, holding %v; want %q, not holding", resp.StatusCode, body, p.Holding(), "r1")
	}
}
