package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

// A held switch (Hold, then Unhold or FailHold) is how a change that
// cannot run beside the live release — a breaking migration, an app that
// cannot run two copies at once — goes live without an error page: while
// it is held no request reaches any backend, new ones wait as they wait
// for a healthy backend (see Hold in the package documentation), and
// Unhold releases them all to the new release in one step.
//
// The hold is a field of the routing snapshot: a held snapshot simply
// routes nothing (no weighted pool, no preview pool, no pins), so the
// request path does not look at it until it has found no backend, and a
// request costs what it cost before.

// holdEpisode is one Hold until its Unhold or FailHold: what its requests
// waited. The snapshots published while it lasts share it.
type holdEpisode struct {
	start time.Time

	mu sync.Mutex
	// waits holds the wait start of every request held in the episode, in
	// the order they began waiting (so ascending, give or take the clock's
	// resolution); gone marks those that stopped waiting, and head is the
	// first that may still wait, so that the longest wait still going on
	// is now - waits[head].
	waits []time.Time
	gone  []bool
	head  int
	// end is when the episode ended, zero while it lasts: a request
	// released by the end has waited until it.
	end      time.Time
	longest  time.Duration
	timedOut int
}

// join counts a request held in the episode that began waiting at since,
// and returns its number for leave.
func (h *holdEpisode) join(since time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.waits = append(h.waits, since)
	h.gone = append(h.gone, false)
	return len(h.waits) - 1
}

// leave records that request i stopped waiting at now, timed out or not.
func (h *holdEpisode) leave(i int, now time.Time, timedOut bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.end.IsZero() && now.After(h.end) {
		now = h.end
	}
	h.longest = max(h.longest, now.Sub(h.waits[i]))
	if timedOut {
		h.timedOut++
	}
	h.gone[i] = true
	for h.head < len(h.gone) && h.gone[h.head] {
		h.head++
	}
}

// finish ends the episode at now and reports it.
func (h *holdEpisode) finish(now time.Time) HoldReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.end.IsZero() {
		h.end = now
	}
	longest := h.longest
	if h.head < len(h.waits) {
		longest = max(longest, h.end.Sub(h.waits[h.head]))
	}
	return HoldReport{Held: len(h.waits), Longest: longest, TimedOut: h.timedOut, Duration: h.end.Sub(h.start)}
}

// HoldReport is what a hold did (traffic.HoldReport).
type HoldReport = traffic.HoldReport

// errHeldTooLong reports a request held longer than HoldTimeout during a
// held switch.
var errHeldTooLong = errors.New("held longer than the hold timeout during a held switch")

// holdFailedError answers a request after FailHold; body is the answer.
type holdFailedError struct{ body string }

func (e *holdFailedError) Error() string { return "held switch failed: " + e.body }

// Hold stops routing: from now on no request reaches any backend — by
// weight, by pin, or to the release in preview — and new requests wait,
// up to Options.HoldTimeout each, as they do when no backend is healthy.
// Requests in flight go on; WaitRequests waits for them. Weights, preview and
// backends may still change while held (a release boots, another stops);
// they take effect at Unhold. The preview is held too: a held switch runs
// a change that the release in preview cannot be assumed to survive
// either, and the rule "nothing reaches a backend while held" is the one
// that WaitRequests and the instance stops after it rely on. Calling Hold
// while held does nothing.
func (p *Proxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hold != nil {
		return
	}
	p.hold = &holdEpisode{start: p.clock()}
	p.holdFailed = nil
	p.publishLocked()
}

// Holding reports whether requests are held (Hold without its Unhold), or
// refused after FailHold.
func (p *Proxy) Holding() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hold != nil || p.holdFailed != nil
}

// Unhold ends the hold and, in the same step, makes release active
// (SetActive), so that the held requests and every new one go to release
// and none to the release that was active before the hold. "" keeps the
// weights as they are. It reports the hold; a hold in which requests
// waited HoldTimeout and got 503 is logged once, with their number. Unhold
// without a hold reports nothing and only sets the release.
func (p *Proxy) Unhold(release string) HoldReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	if release != "" {
		p.weights = map[string]int{release: 100}
		p.releaseLocked(release)
	}
	h := p.hold
	p.hold, p.holdFailed = nil, nil
	p.publishLocked()
	if h == nil {
		return HoldReport{}
	}
	return p.endHoldLocked(h)
}

// FailHold ends a held switch that cannot go on: every request held now,
// and every new one until Unhold, Hold or SetWeights (SetActive), is
// answered 503 at once with a body saying why ("cutover: <why>"), rather
// than held or sent to a release that cannot serve. It reports the hold
// as Unhold does.
func (p *Proxy) FailHold(why string) HoldReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.hold
	if h == nil {
		h = &holdEpisode{start: p.clock()}
	}
	p.hold, p.holdFailed = nil, &holdFailedError{body: "cutover: " + why + "\n"}
	p.publishLocked()
	return p.endHoldLocked(h)
}

// endHoldLocked ends episode h, logs its timeouts and reports it.
func (p *Proxy) endHoldLocked(h *holdEpisode) HoldReport {
	rep := h.finish(p.clock())
	if rep.TimedOut > 0 {
		p.log.Warn(fmt.Sprintf("%d request(s) held longer than proxy.hold_timeout %s during a held switch were answered 503; raise proxy.hold_timeout above the hold's length",
			rep.TimedOut, p.opts.HoldTimeout), "count", rep.TimedOut, "hold", rep.Duration.Round(time.Millisecond))
	}
	return rep
}

// clock is the time of hold measurements: wall time, since holds are
// measured against the clients' own waits (Options.Now is the windows').
func (p *Proxy) clock() time.Time { return time.Now() }

// InFlight is what a release still has in flight (traffic.InFlight).
type InFlight = traffic.InFlight

// waitPoll is how often WaitRequests looks at a release's count in
// flight: a request's end wakes only a Drain waiting for zero (so that
// the request path stays as it is), and a held switch is not worth a
// second wake-up there.
const waitPoll = 5 * time.Millisecond

// WaitRequests waits, without cutting anything, until nothing but
// websockets of release is in flight, or until ctx ends, and reports what
// is left. A websocket does not end because a release is switched: it is
// closed with the instance (Drain closes it with status 1001 "going away"),
// and its client reconnects to whatever serves then; waiting for it would
// only make a held switch hold everyone longer. Call it once the release
// gets no new requests (Hold, or SetActive to another release): otherwise
// it may never return before ctx ends.
func (p *Proxy) WaitRequests(ctx context.Context, release string) InFlight {
	r := p.lookupRelease(release)
	if r == nil {
		return InFlight{}
	}
	start := r.done.Load()
	requests, ws := r.inFlightNow()
	if requests > 0 {
		tick := time.NewTicker(waitPoll)
		defer tick.Stop()
	wait:
		for requests > 0 {
			select {
			case <-ctx.Done():
				break wait
			case <-tick.C:
				requests, ws = r.inFlightNow()
			}
		}
	}
	return InFlight{Finished: int(r.done.Load() - start), Requests: requests, Websockets: ws}
}

// holdWait tracks one request waiting in acquire or reacquire: the hold
// episode it waited in, if any.
type holdWait struct {
	since time.Time
	ep    *holdEpisode
	i     int
}

// see notes snapshot t, seen while waiting: a held one makes the request
// count in its episode (the first it meets).
func (w *holdWait) see(t *table) {
	if w.ep == nil && t.hold != nil {
		w.ep = t.hold
		w.i = w.ep.join(w.since)
	}
}

// done records the end of the wait; it maps a timeout in a held switch
// to errHeldTooLong.
func (w *holdWait) done(err error) error {
	if w.ep == nil {
		return err
	}
	timedOut := errors.Is(err, errHoldTimeout)
	w.ep.leave(w.i, time.Now(), timedOut)
	if timedOut {
		return errHeldTooLong
	}
	return err
}
