package tcpproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// entry is one [[app.tcp]]: its listener, its backends (one per instance
// with a port for it) and its routing table.
type entry struct {
	p   *Ports
	cfg config.TCP
	ln  net.Listener

	table atomic.Pointer[table]
	rr    atomic.Uint64 // round-robin turn

	backends map[string]*backend // by instance id; guarded by p.mu

	wg sync.WaitGroup // the accept loop and every connection's goroutines
}

// table is what an entry routes new connections by, immutable once
// published: the instances of the routed releases, in order.
type table struct {
	backends []*backend
	// changed is closed when the table is replaced: held connections
	// try the new one at once.
	changed chan struct{}
}

// newTable returns a table of bs.
func newTable(bs []*backend) *table { return &table{backends: bs, changed: make(chan struct{})} }

// publish replaces e's table with one of bs.
func (e *entry) publish(bs []*backend) {
	old := e.table.Swap(newTable(bs))
	if old != nil {
		close(old.changed)
	}
}

// backend is one instance's port for one entry.
type backend struct {
	e       *entry
	id      string
	release string
	number  int
	addr    string

	healthy atomic.Bool

	ctx    context.Context // ended by stop: its health checks and connections
	cancel context.CancelFunc
	checks sync.WaitGroup

	mu     sync.Mutex // guards conns, closed, gone and draining
	conns  map[*conn]struct{}
	closed chan struct{} // closed when conns empties during a drain; nil otherwise
	gone   bool          // stopped: no connection may register
	// draining is set by a drain: no connection may register either, so
	// one routed by a table read before the drain never lands on an
	// instance whose drain already saw it idle (and that then stops).
	draining bool
}

// conn is one proxied connection: the client's and the instance's.
type conn struct {
	client, up *net.TCPConn
	closeOnce  sync.Once
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.client.Close() //nolint:errcheck // closing to end the copies; nothing to do about a failure
		c.up.Close()     //nolint:errcheck // as above
	})
}

// addBackend adds (or replaces) the backend of in at addr. p.mu is held.
func (e *entry) addBackend(in Instance, addr string, httpHealthy bool) {
	if old := e.backends[in.ID]; old != nil {
		if old.addr == addr {
			return
		}
		go old.stop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &backend{e: e, id: in.ID, release: in.Release, number: in.Number, addr: addr, ctx: ctx, cancel: cancel, conns: map[*conn]struct{}{}}
	e.backends[in.ID] = b
	if e.cfg.Health == "http" {
		b.healthy.Store(httpHealthy)
		return
	}
	b.checks.Add(1)
	go func() {
		defer b.checks.Done()
		b.checkLoop()
	}()
}

// removeBackend takes out the backend of id and returns it. p.mu is held.
func (e *entry) removeBackend(id string) *backend {
	b := e.backends[id]
	delete(e.backends, id)
	return b
}

// backendOf returns the backend of id, nil if none. p.mu is held.
func (e *entry) backendOf(id string) *backend { return e.backends[id] }

// accept takes connections until the listener is closed.
func (e *entry) accept() {
	var delay time.Duration
	for {
		c, err := e.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, as
			// net/http's Server does, rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			e.p.log.Warn("accept tcp connection", "listen", e.cfg.Listen, "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		tc, ok := c.(*net.TCPConn)
		if !ok {
			c.Close() //nolint:errcheck // not TCP: cannot happen with a tcp listener
			continue
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.serve(tc)
		}()
	}
}

// order returns the backends a new connection tries, in turn: the healthy
// ones (from the first for "first", from the next in turn for
// "round-robin"), then the others, in case their checks lag.
func (e *entry) order(t *table) []*backend {
	n := len(t.backends)
	out := make([]*backend, 0, n)
	start := 0
	if e.cfg.Balance == "round-robin" && n > 0 {
		start = int(e.rr.Add(1)-1) % n
	}
	for i := range n {
		if b := t.backends[(start+i)%n]; b.healthy.Load() {
			out = append(out, b)
		}
	}
	for _, b := range t.backends {
		if !b.healthy.Load() {
			out = append(out, b)
		}
	}
	return out
}

// serve forwards one client connection to the first backend that takes
// it, and copies both ways until both are done.
func (e *entry) serve(client *net.TCPConn) {
	c, b := e.connect(client)
	if c == nil {
		client.Close() //nolint:errcheck // refused: no instance took it, said in the log
		return
	}
	defer b.unregister(c)
	defer c.close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// *net.TCPConn to *net.TCPConn: splice(2) on Linux.
		if _, err := io.Copy(c.up, c.client); err != nil {
			c.close()
			return
		}
		c.up.CloseWrite() //nolint:errcheck // the instance is gone: the other copy ends too
	}()
	if _, err := io.Copy(c.client, c.up); err != nil {
		c.close()
	} else {
		c.client.CloseWrite() //nolint:errcheck // the client is gone: the other copy ends too
	}
	<-done
}

// connect opens a connection to the first backend of the table that
// accepts it, writes the PROXY header when asked, and registers it. When
// none does (no release routed yet, a stop-first switch between the old
// release's stop and the new one's boot, every instance down), the
// client is held, as the HTTP proxy holds a request: the table is tried
// again as it changes, and at least every quarter second, up to the hold
// timeout; then the client is closed.
func (e *entry) connect(client *net.TCPConn) (*conn, *backend) {
	start := time.Now()
	deadline := start.Add(e.p.hold)
	wait := 10 * time.Millisecond
	for {
		t := e.table.Load()
		c, b, tried, err := e.try(t, client)
		if c != nil {
			return c, b
		}
		left := time.Until(deadline)
		if left <= 0 {
			e.p.log.Warn("tcp connection closed: no instance took it", "listen", e.cfg.Listen, "client", client.RemoteAddr().String(),
				"tried", tried, "held", time.Since(start).Round(time.Millisecond), "err", err)
			return nil, nil
		}
		timer := time.NewTimer(min(wait, left))
		select {
		case <-t.changed:
		case <-timer.C:
		case <-e.p.done:
			timer.Stop()
			return nil, nil
		}
		timer.Stop()
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// try tries the backends of t in turn, once each; it returns the
// connection and its backend, or how many it tried and the last error.
func (e *entry) try(t *table, client *net.TCPConn) (*conn, *backend, int, error) {
	var lastErr error
	tried := 0
	for _, b := range e.order(t) {
		tried++
		d := net.Dialer{Timeout: e.cfg.ConnectTimeout.Duration}
		up, err := d.DialContext(b.ctx, "tcp", b.addr)
		if err != nil {
			// Refused or timed out: the instance is down or hung. Out of
			// the way of the next connections until a check passes.
			lastErr = err
			if e.cfg.Health == "tcp" {
				b.down()
			}
			continue
		}
		tc := up.(*net.TCPConn)
		if err := writeProxyHeader(tc, e.cfg.ProxyProtocol, client); err != nil {
			lastErr = err
			tc.Close() //nolint:errcheck // trying the next one
			continue
		}
		c := &conn{client: client, up: tc}
		if !b.register(c) {
			tc.Close() //nolint:errcheck // the backend stopped or drains meanwhile: the next one
			continue
		}
		return c, b, tried, nil
	}
	return nil, nil, tried, lastErr
}

// register counts c as open on b, unless b stopped or drains.
func (b *backend) register(c *conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gone || b.draining {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

// unregister forgets c, and wakes a drain waiting for the last one.
func (b *backend) unregister(c *conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.conns, c)
	if len(b.conns) == 0 && b.closed != nil {
		close(b.closed)
		b.closed = nil
	}
}

// startDrain makes b refuse new connections (register) and returns how
// many are open: from then on, that count only goes down.
func (b *backend) startDrain() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draining = true
	return len(b.conns)
}

// open counts the connections open to b.
func (b *backend) open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// idle returns a channel closed once b has no connection open.
func (b *backend) idle() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan struct{})
	if len(b.conns) == 0 {
		close(ch)
		return ch
	}
	if b.closed == nil {
		b.closed = ch
	}
	return b.closed
}

// waitIdle waits until b has no connection open, its entry's
// drain_timeout passed, or ctx ended.
func (b *backend) waitIdle(ctx context.Context) {
	t := time.NewTimer(b.e.cfg.DrainTimeout.Duration)
	defer t.Stop()
	select {
	case <-b.idle():
	case <-t.C:
	case <-ctx.Done():
	}
}

// cut closes every connection open to b; it returns how many.
func (b *backend) cut() int {
	b.mu.Lock()
	cs := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		cs = append(cs, c)
	}
	b.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
	return len(cs)
}

// stop ends b: no new connection registers, its checks end, and what is
// open is closed.
func (b *backend) stop() {
	b.mu.Lock()
	b.gone = true
	b.mu.Unlock()
	b.cancel()
	b.healthy.Store(false)
	b.cut()
	b.checks.Wait()
}

// down takes b out of the healthy ones until its checks pass again (an
// entry following HTTP health waits for the next change of it).
func (b *backend) down() { b.healthy.Store(false) }

// checkLoop checks b's port by connecting to it: rise passes in a row make
// it healthy, fall failures unhealthy. The first check is at once, so a
// new instance is known soon.
func (b *backend) checkLoop() {
	interval, timeout, rise, fall := b.e.p.checkTiming()
	passes, fails := 0, 0
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		d := net.Dialer{Timeout: timeout}
		c, err := d.DialContext(b.ctx, "tcp", b.addr)
		if b.ctx.Err() != nil {
			return
		}
		if err == nil {
			c.Close() //nolint:errcheck // a check: the connect was the test
			passes, fails = passes+1, 0
			if passes >= rise && !b.healthy.Load() {
				b.healthy.Store(true)
			}
		} else {
			passes, fails = 0, fails+1
			if fails >= fall && b.healthy.Load() {
				b.e.p.log.Warn("tcp port unhealthy", "listen", b.e.cfg.Listen, "instance", b.id, "addr", b.addr, "err", err)
				b.healthy.Store(false)
			}
		}
		if !b.healthy.Load() && err == nil && passes < rise {
			// Coming back: the next check sooner, so a new instance or a
			// restarted one is in within a few short rounds.
			t.Reset(min(interval, 100*time.Millisecond))
			continue
		}
		t.Reset(interval)
	}
}
