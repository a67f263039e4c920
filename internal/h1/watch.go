package h1

// Watching for the client leaving while a handler runs.

import "time"

// clientGoneDelay is how long a request runs, at least, before its
// connection is watched for the client leaving. Watching costs a
// goroutine, a read that finds nothing and an interrupted deadline; most
// requests are answered sooner and skip it.
const clientGoneDelay = 20 * time.Millisecond

// aLongTimeAgo is a deadline that unblocks a pending read at once.
var aLongTimeAgo = time.Unix(1, 0)

// arm starts watching, after clientGoneDelay to twice that, for the client
// closing the connection while the handler runs; the request's context is
// then canceled. Only a request whose body was read whole is watched: the
// watch reads the connection.
//
// The connection's timer is not reset for every request: while requests
// follow each other it ticks every clientGoneDelay, and a request still
// armed at the tick after the one that first saw it armed has run for at
// least that long. A connection that falls idle lets its timer lapse; the
// next request starts it again, and is then seen at the first tick.
func (c *conn) arm() {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.ctx == nil {
		return
	}
	c.armed = true
	c.armSeq++
	if c.ticking {
		return
	}
	c.ticking = true
	c.seenSeq = c.armSeq
	if c.watch == nil {
		c.watch = time.AfterFunc(clientGoneDelay, c.tick)
		return
	}
	c.watch.Reset(clientGoneDelay)
}

// tick is the watch timer's: it starts watching a request that was armed
// at the previous tick already, and ticks on while requests come.
func (c *conn) tick() {
	c.watchMu.Lock()
	if !c.armed || c.watching {
		// Idle, or a request already watched: the timer lapses.
		c.ticking = false
		c.watchMu.Unlock()
		return
	}
	if c.seenSeq != c.armSeq {
		// A request that started since the last tick.
		c.seenSeq = c.armSeq
		c.watch.Reset(clientGoneDelay)
		c.watchMu.Unlock()
		return
	}
	c.ticking = false
	c.watchClient()
}

// watchClient reads the connection until the client sends something or
// leaves, or disarm interrupts it. It is called with watchMu held, for an
// armed request not watched yet.
func (c *conn) watchClient() {
	c.watching = true
	c.watched = true
	c.watchDone = make(chan struct{})
	// The header deadline may still be set; the watch has none.
	_ = c.rwc.SetReadDeadline(time.Time{})
	c.watchMu.Unlock()

	// Bytes that come are the next (pipelined) request, kept in br.
	_, err := c.br.Peek(1)

	c.watchMu.Lock()
	if err != nil && !c.aborted {
		c.gone = true
		c.ctx.cancel()
	}
	c.watching = false
	close(c.watchDone)
	c.watchMu.Unlock()
}

// disarm stops the watch, interrupting its read, and waits for it.
func (c *conn) disarm() {
	c.watchMu.Lock()
	c.armed = false
	c.ctx = nil
	if c.watched {
		c.watched = false
		c.rdlKnown = false
	}
	if !c.watching {
		c.watchMu.Unlock()
		return
	}
	c.aborted = true
	_ = c.rwc.SetReadDeadline(aLongTimeAgo)
	done := c.watchDone
	c.watchMu.Unlock()
	<-done
	c.watchMu.Lock()
	c.aborted = false
	c.watchMu.Unlock()
	_ = c.rwc.SetReadDeadline(time.Time{})
}
