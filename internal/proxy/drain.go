package proxy

import (
	"context"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

// DrainResult is what a drain did (traffic.DrainResult).
type DrainResult = traffic.DrainResult

// Drain waits until no request, stream or websocket of the release's
// backends is in flight, or until ctx is done. In the latter case it
// closes what is still open — websockets (each with a close frame, status
// 1001 "going away", when the proxy stands between two of the backend's
// frames), streams, long polls and other requests, by closing their
// upstream connection — spread evenly over pace: with n of them, one every
// pace/n, the first at once, so that their clients do not all reconnect in
// the same instant (a thundering herd). A pace of 0 closes them all at
// once. Pacing stops early once nothing is in flight. Either way it then
// closes the release's idle upstream connections. So Drain returns at most
// pace after ctx ends.
//
// Call it after SetActive has moved new requests to another release: a
// release that still receives requests may never become idle. A request
// that picked a backend of the release just before the switch and has not
// connected yet when Drain cuts escapes the cut; it ends on its own when
// the instance stops. A bodiless idempotent request cut before any byte of
// its answer is sent again to the release it would go to now, like any
// request whose connection was reset (see Retry).
func (p *Proxy) Drain(ctx context.Context, release string, pace time.Duration) DrainResult {
	r := p.lookupRelease(release)
	if r == nil {
		return DrainResult{}
	}
	start := r.done.Load()
	var res DrainResult
	if err := r.waitIdle(ctx); err != nil {
		res.Finished = int(r.done.Load() - start)
		res.Cut = r.cut(pace)
		p.log.Debug("drain deadline reached, connections cut",
			"release", release, "finished", res.Finished, "cut", res.Cut, "pace", pace, "err", err)
	} else {
		res.Finished = int(r.done.Load() - start)
	}
	r.closeIdle()
	return res
}

// CloseWebsockets ends every websocket the proxy holds, of every release,
// as Drain ends those it cuts (a close frame, status 1001 "going away",
// when the proxy stands between two of the backend's frames), at once,
// and returns how many it ended. A daemon that stops calls it once it
// no longer accepts: its clients then reconnect, to the next daemon
// during an upgrade, rather than lose the websocket without a close
// frame when the process exits — and a websocket over HTTP/2, a stream
// in flight, would otherwise hold the TLS server's Shutdown until its
// deadline.
//
// From then on the proxy opens no websocket: a handshake still arriving
// on a connection already open (a keep-alive HTTP/1.1 one, an HTTP/2
// connection before the server's GOAWAY) gets 503, the HTTP/1.1
// connection closed, and the client's next attempt opens a connection,
// which the next daemon accepts; one that got past that check as
// CloseWebsockets ran is ended as those open are.
func (p *Proxy) CloseWebsockets() int {
	p.wsClosed.Store(true)
	p.mu.Lock()
	rels := make([]*release, 0, len(p.releases))
	for _, r := range p.releases {
		rels = append(rels, r)
	}
	p.mu.Unlock()
	n := 0
	for _, r := range rels {
		n += r.closeWebsockets()
	}
	return n
}
