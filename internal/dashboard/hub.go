package dashboard

import (
	"sync"

	"github.com/cutover/cutover/internal/deploy"
)

// maxReplay bounds the events of one deploy a Hub keeps to replay to a
// page that connects in the middle of it (a boot waiting long could
// otherwise grow it without bound).
const maxReplay = 2000

// subBuffer is how many events a page may fall behind before its stream
// is closed (the browser reconnects and gets the replay).
const subBuffer = 1024

// Hub passes every app's deploy events to the open /events streams. Its
// Observe is each engine's deploy.Options.Observe: it sees every event of
// every run as it happens, however short the run, and never blocks.
//
// Lines ("output" of a build, test or hook, one event per line, and
// "log" tails) are not passed: the page shows steps, and a build of
// thousands of lines would otherwise fill the replay, leaving out the
// steps and result after it, and make every open page fall behind.
type Hub struct {
	mu   sync.Mutex
	runs map[string]*appRun // app → its latest deploy
	subs map[chan deployEvent]struct{}
}

// appRun is the events so far of an app's latest deploy.
type appRun struct {
	kind   string
	n      int
	events []deployEvent
	done   bool
}

// NewHub returns an empty Hub.
func NewHub() *Hub {
	return &Hub{runs: map[string]*appRun{}, subs: map[chan deployEvent]struct{}{}}
}

// deployEvent is a "deploy" SSE event: event Index (from 0) of the app's
// deploy or rollback (Kind).
type deployEvent struct {
	App   string       `json:"app"`
	Kind  string       `json:"kind"`
	Index int          `json:"index"`
	Event deploy.Event `json:"event"`
}

// Observe returns app's deploy.Options.Observe.
func (h *Hub) Observe(app string) func(kind string, ev deploy.Event) {
	return func(kind string, ev deploy.Event) {
		if isLines(ev) {
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		r := h.runs[app]
		if r == nil || r.done {
			r = &appRun{kind: kind}
			h.runs[app] = r
		}
		de := deployEvent{App: app, Kind: kind, Index: r.n, Event: ev}
		r.n++
		if len(r.events) < maxReplay {
			r.events = append(r.events, de)
		}
		r.done = ev.Type == "result"
		for ch := range h.subs {
			select {
			case ch <- de:
			default:
				// Too far behind: end its stream rather than block a
				// deploy or leave a gap in its steps.
				delete(h.subs, ch)
				close(ch)
			}
		}
	}
}

// isLines reports whether ev carries lines of output or of a log, which
// the Hub does not pass.
func isLines(ev deploy.Event) bool { return ev.Type == "output" || ev.Type == "log" }

// subscribe returns the events so far of each app's latest deploy and a
// channel of those to come, closed if the reader falls behind; cancel
// ends the subscription.
func (h *Hub) subscribe() (replay []deployEvent, ch <-chan deployEvent, cancel func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.runs {
		replay = append(replay, r.events...)
	}
	c := make(chan deployEvent, subBuffer)
	h.subs[c] = struct{}{}
	return replay, c, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[c]; ok {
			delete(h.subs, c)
			close(c)
		}
	}
}
