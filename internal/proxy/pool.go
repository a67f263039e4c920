package proxy

// Each backend's pool of idle upstream connections.

import (
	"context"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/rawio"
)

// connPool holds a backend's idle upstream connections, newest last.
type connPool struct {
	// now is the clock of idle timeouts; time.Now outside tests.
	now func() time.Time
	mu  sync.Mutex
	// idle is a stack: take pops the most recently used connection, whose
	// socket is most likely still open and warm. Guarded by mu.
	idle []*upConn
}

// dial opens a new upstream connection to the backend, tracked under its
// release so that Drain can cut it.
func (b *Backend) dial(ctx context.Context) (*upConn, error) {
	nc, err := b.dialContext(ctx, "tcp", b.spec.Addr)
	if err != nil {
		return nil, err
	}
	c := &upConn{b: b, conn: nc, rd: nc, wr: nc}
	c.closeFn = c.close
	inner := nc
	if tc, ok := nc.(*trackedConn); ok {
		inner = tc.Conn
	}
	if rio := rawio.New(inner); rio != nil {
		c.rd, c.wr = rio, rio
	}
	return c, nil
}

// take returns an idle connection to the backend, or a new one.
func (b *Backend) take(ctx context.Context) (*upConn, error) {
	pl := &b.pool
	pl.mu.Lock()
	if n := len(pl.idle); n > 0 {
		c := pl.idle[n-1]
		pl.idle[n-1] = nil
		pl.idle = pl.idle[:n-1]
		if pl.now().Sub(c.idleSince) < b.p.opts.IdleConnTimeout {
			pl.mu.Unlock()
			return c, nil
		}
		// The newest idle connection is too old: so are all the others.
		stale := append(pl.idle[:0:0], pl.idle...)
		clear(pl.idle)
		pl.idle = pl.idle[:0]
		pl.mu.Unlock()
		c.close()
		for _, s := range stale {
			s.close()
		}
		return b.dial(ctx)
	}
	pl.mu.Unlock()
	return b.dial(ctx)
}

// put returns a connection whose exchange completed cleanly to the pool,
// or closes it when the backend is removed or the pool is full. Idle
// connections past IdleConnTimeout at the bottom of the stack are closed
// on the way, so that a burst's extra connections do not linger.
func (b *Backend) put(c *upConn) {
	pl := &b.pool
	now := pl.now()
	if c.br != nil {
		if c.br.Buffered() > 0 {
			// Bytes after the end of the response: the backend does not
			// speak HTTP/1.1 properly on this connection, which cannot be
			// trusted with the next request.
			c.close()
			return
		}
		c.br.Reset(nil)
		upReaders.Put(c.br)
		c.br = nil
	}
	c.idleSince = now
	c.reused = true
	c.w = nil
	c.wdone = nil
	c.stop = nil
	c.sent = sentBody{}
	c.body = upBody{}
	var stale []*upConn
	pl.mu.Lock()
	if len(pl.idle) > 0 && now.Sub(pl.idle[0].idleSince) >= b.p.opts.IdleConnTimeout {
		i := 1
		for i < len(pl.idle) && now.Sub(pl.idle[i].idleSince) >= b.p.opts.IdleConnTimeout {
			i++
		}
		stale = append(stale, pl.idle[:i]...)
		n := copy(pl.idle, pl.idle[i:])
		clear(pl.idle[n:])
		pl.idle = pl.idle[:n]
	}
	// removed is set before closeIdle takes mu, so a connection put after
	// closeIdle ran is closed here rather than pooled.
	keep := !b.removed.Load() && len(pl.idle) < b.p.opts.MaxIdleConnsPerBackend
	if keep {
		pl.idle = append(pl.idle, c)
	}
	pl.mu.Unlock()
	if !keep {
		c.close()
	}
	for _, s := range stale {
		s.close()
	}
}

// closeIdle closes the backend's idle upstream connections: an h2c
// backend's, those without a stream.
func (b *Backend) closeIdle() {
	if b.h2 != nil {
		b.h2.CloseIdleConnections()
	}
	pl := &b.pool
	pl.mu.Lock()
	idle := pl.idle
	pl.idle = nil
	pl.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// idleConns returns the number of idle upstream connections to the backend.
func (b *Backend) idleConns() int {
	b.pool.mu.Lock()
	defer b.pool.mu.Unlock()
	return len(b.pool.idle)
}

// Warm opens up to n idle connections to the backend in the background
// (never more than Options.MaxIdleConnsPerBackend in the pool), so that
// the first burst of requests a new release receives does not pay for n
// connects at once. Deploy calls it once the backend has passed its health
// check. Dial errors end the warm-up and are logged at debug level only:
// requests dial on their own anyway. A warm-up already under way makes
// the call a no-op; RemoveBackend stops it. It does nothing for an h2c
// backend.
func (b *Backend) Warm(n int) {
	if b.h2 != nil {
		// One connection carries every stream; it opens with the first.
		return
	}
	if n <= 0 || b.removed.Load() || !b.warming.CompareAndSwap(false, true) {
		return
	}
	b.warmWG.Add(1)
	go func() {
		defer b.warmWG.Done()
		defer b.warming.Store(false)
		b.warm(n)
	}()
}

// warm dials until the idle pool holds n connections (or its bound).
func (b *Backend) warm(n int) {
	n = min(n, b.p.opts.MaxIdleConnsPerBackend)
	for b.idleConns() < n && b.warmCtx.Err() == nil {
		c, err := b.dial(b.warmCtx)
		if err != nil {
			b.p.log.Debug("warm-up dial failed", "release", b.spec.Release, "instance", b.spec.ID, "err", err)
			return
		}
		b.put(c)
	}
}
