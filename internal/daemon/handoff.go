package daemon

import (
	"context"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/h1"
)

// handoffGrace is how long a stopping daemon keeps answering on the
// keep-alive connections it already has, each answer closing its
// connection, before it closes the ones still idle.
const handoffGrace = 2 * time.Second

// handoff lets a daemon stop without racing its keep-alive clients.
//
// A server's Shutdown closes idle keep-alive connections at once; a client
// that sends its next request at that instant reads EOF, and not every
// client retries. A handoff instead answers each request still arriving on
// an open connection with "Connection: close", so clients move to new
// connections themselves — to the next daemon at once when one accepts
// from the same socket (an upgrade), else to this one until the end of
// the grace; only after handoffGrace, or once no connection is left, does
// it shut down.
type handoff struct {
	closing atomic.Bool
	mu      sync.Mutex
	conns   map[net.Conn]struct{} // open client connections
	changed chan struct{}         // closed and replaced on each change
}

func newHandoff() *handoff {
	return &handoff{conns: map[net.Conn]struct{}{}, changed: make(chan struct{})}
}

// wrap installs the handoff on srv: its handler and its ConnState hook.
func (h *handoff) wrap(srv *h1.Server) {
	next := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.closing.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateActive || st == http.StateIdle {
			// Only whether a connection is open matters: a connection
			// going between requests costs no lock.
			return
		}
		h.mu.Lock()
		if st == http.StateClosed || st == http.StateHijacked {
			delete(h.conns, c)
		} else {
			h.conns[c] = struct{}{}
		}
		close(h.changed)
		h.changed = make(chan struct{})
		h.mu.Unlock()
	}
}

// drain answers every request from now on with "Connection: close" and
// waits until no client connection is left or grace passed (or ctx
// ended). The listeners lns (the proxy's, the TLS one's) stop accepting
// when handover fires — at once in an
// upgrade's handover, when a successor already accepts from the same
// socket; later when the socket outlives this daemon and the next one is
// starting (see successorServes) — and grace counts from then. With no
// handover (nil), nobody else will accept from the socket: ln accepts
// until the end. The caller then shuts the server down, which closes what
// is left idle and waits for what is active.
//
// Without a successor, closing ln first would refuse every client that
// reconnects during the grace — all of them, since each is told to close
// — for as long as the daemon takes to stop and the next one to listen
// (682 refused of 842 requests at 150 req/s, a quarter of them on fresh
// connections, across a SIGTERM and restart of `cutover serve`); served
// until the end, they meet a closed port only for the moments between
// this daemon's exit and the next one's start.
func (h *handoff) drain(ctx context.Context, lns []net.Listener, grace time.Duration, handover <-chan struct{}) {
	h.closing.Store(true)
	closeAll := func() {
		for _, ln := range lns {
			ln.Close() //nolint:errcheck // Serve returns; served connections go on
		}
	}
	if handover != nil {
		select {
		case <-handover:
		case <-ctx.Done():
		}
		closeAll()
	} else {
		defer closeAll() // likewise, at the end of the grace
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		n, ch := len(h.conns), h.changed
		h.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// successorWait bounds how long a daemon whose sockets outlive its keeper
// proxies on after SIGTERM, waiting for the next daemon to serve; past
// it, new connections wait in the socket's backlog for whoever comes.
const successorWait = 10 * time.Second

// successorPoll is how often successorServes looks for the next daemon.
const successorPoll = 10 * time.Millisecond

// successorServes returns a channel closed once the next daemon serves —
// it replaced the admin socket at path, which it does just before it
// accepts on the proxy socket — or once wait passed. mine is this
// daemon's own admin socket, as it was when it listened.
func successorServes(path string, mine os.FileInfo, wait time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		end := time.Now().Add(wait)
		for time.Now().Before(end) && sameFile(path, mine) {
			time.Sleep(successorPoll)
		}
	}()
	return ch
}

func closedChan() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}
