package tcpproxy

import (
	"context"
	"sync"
)

// DrainResult is what a drain did.
type DrainResult struct {
	// Finished counts the connections that ended by themselves within
	// drain_timeout; Cut those closed at it.
	Finished, Cut int
}

// Drain takes the instances ids out of every table (no new connection
// reaches them, not even one routed by the table before and connecting
// now: it goes on to the new table), waits for the connections open to them, up to each
// entry's drain_timeout, and closes what is still open then. A ctx that
// ends earlier cuts at once. Run it before the instances stop.
func (p *Ports) Drain(ctx context.Context, ids []string) DrainResult {
	p.mu.Lock()
	var bs []*backend
	for _, id := range ids {
		if info := p.insts[id]; info != nil {
			info.draining = true
		}
		for _, e := range p.entries {
			if b := e.backendOf(id); b != nil {
				bs = append(bs, b)
			}
		}
	}
	p.rebuildLocked()
	p.mu.Unlock()

	var mu sync.Mutex
	var res DrainResult
	var wg sync.WaitGroup
	for _, b := range bs {
		// A connection routed by a table read before the rebuild may
		// still be connecting to b: it is refused from now on and tries
		// the new table.
		open := b.startDrain()
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.waitIdle(ctx)
			cut := b.cut()
			mu.Lock()
			res.Cut += cut
			res.Finished += max(open-cut, 0)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res
}

// DrainRelease drains every instance of release (see Drain).
func (p *Ports) DrainRelease(ctx context.Context, release string) DrainResult {
	p.mu.Lock()
	var ids []string
	for id, info := range p.insts {
		if info.Release == release {
			ids = append(ids, id)
		}
	}
	p.mu.Unlock()
	return p.Drain(ctx, ids)
}

// WaitRelease waits, cutting nothing and refusing nothing, until no
// connection is open to an instance of release, each port's connections up
// to that port's drain_timeout, or until ctx ends; it returns how many are
// still open then. A stop-first deploy's hold calls it: new connections
// are held meanwhile, and the instances stop right after, cutting what is
// left.
func (p *Ports) WaitRelease(ctx context.Context, release string) int {
	p.mu.Lock()
	var bs []*backend
	for id, info := range p.insts {
		if info.Release != release {
			continue
		}
		for _, e := range p.entries {
			if b := e.backendOf(id); b != nil {
				bs = append(bs, b)
			}
		}
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Go(func() {
			b.waitIdle(ctx)
		})
	}
	wg.Wait()
	left := 0
	for _, b := range bs {
		left += b.open()
	}
	return left
}
