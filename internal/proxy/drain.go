package proxy

import "context"

// DrainResult reports how a Drain ended.
type DrainResult struct {
	// Finished counts the requests, streams and websockets of the release
	// that completed while Drain waited.
	Finished int
	// Cut counts those still in flight when ctx ended; their connections
	// were closed.
	Cut int
}

// Drain waits until no request, stream or websocket of the release's
// backends is in flight, or until ctx is done. In the latter case it closes
// the release's remaining hijacked (websocket) connections and upstream
// connections, which ends what was still in flight. Either way it then
// closes the release's idle upstream connections.
//
// Call it after SetActive has moved new requests to another release: a
// release that still receives requests may never become idle. A request
// that picked a backend of the release just before the switch and has not
// connected yet when Drain cuts escapes the cut; it ends on its own when
// the instance stops.
func (p *Proxy) Drain(ctx context.Context, release string) DrainResult {
	r := p.lookupRelease(release)
	if r == nil {
		return DrainResult{}
	}
	start := r.done.Load()
	var res DrainResult
	if err := r.waitIdle(ctx); err != nil {
		res.Finished = int(r.done.Load() - start)
		res.Cut = r.cut()
		p.log.Debug("drain deadline reached, connections cut",
			"release", release, "finished", res.Finished, "cut", res.Cut, "err", err)
	} else {
		res.Finished = int(r.done.Load() - start)
	}
	r.closeIdle()
	return res
}
