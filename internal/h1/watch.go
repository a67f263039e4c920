package h1

// Watching for the client leaving while a handler runs.

import "time"

// clientGoneDelay is how long a request runs before its connection is
// watched for the client leaving. Watching costs a goroutine, a read that
// finds nothing and an interrupted deadline; most requests are answered
// sooner and skip it.
const clientGoneDelay = 20 * time.Millisecond

// aLongTimeAgo is a deadline that unblocks a pending read at once.
var aLongTimeAgo = time.Unix(1, 0)

// arm starts watching, after clientGoneDelay, for the client closing the
// connection while the handler runs; the request's context is then
// canceled. Only a request whose body was read whole is watched: the
// watch reads the connection.
func (c *conn) arm() {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.ctx == nil {
		return
	}
	c.armed = true
	if c.watch == nil {
		c.watch = time.AfterFunc(clientGoneDelay, c.watchClient)
		return
	}
	c.watch.Reset(clientGoneDelay)
}

// watchClient reads the connection until the client sends something or
// leaves, or disarm interrupts it.
func (c *conn) watchClient() {
	c.watchMu.Lock()
	if !c.armed || c.watching {
		// Disarmed, or a timer that fired before a disarm that came too
		// late to stop it already started the watch of the next request.
		c.watchMu.Unlock()
		return
	}
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
	if c.watch != nil {
		c.watch.Stop()
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
