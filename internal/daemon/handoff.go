package daemon

import (
	"context"
	"net"
	"net/http"
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
// client retries. A handoff instead first stops accepting (with socket
// activation the next daemon accepts from the same socket), then answers
// each request still arriving on an open connection with "Connection:
// close", so clients move to new connections themselves; only after
// handoffGrace, or once no connection is left, does it shut down.
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

// drain stops ln accepting, then waits until no client connection is left
// or grace passed (or ctx ended). The caller then shuts the server down,
// which closes what is left idle and waits for what is active.
func (h *handoff) drain(ctx context.Context, ln net.Listener, grace time.Duration) {
	h.closing.Store(true)
	ln.Close() //nolint:errcheck // Serve returns; served connections go on
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
