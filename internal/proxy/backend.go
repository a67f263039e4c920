package proxy

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// BackendSpec identifies one instance of a release.
type BackendSpec struct {
	// ID names the instance; unique across releases.
	ID string
	// Release is the release the instance runs.
	Release string
	// Addr is where the instance listens, "127.0.0.1:port".
	Addr string
	// Protocol is how the proxy speaks to the instance. The zero value is
	// HTTP1.
	Protocol Protocol
}

// Backend is one instance of a release that the proxy forwards to. It has
// its own upstream connection pool, so retiring it closes exactly its
// connections.
type Backend struct {
	p    *Proxy
	spec BackendSpec
	rel  *release
	// pool holds keep-alive connections to this backend only.
	pool   connPool
	dialer net.Dialer
	// h2 is the transport of a backend spoken to over h2c (H2C), nil for
	// HTTP/1.1: its connections are this backend's only.
	h2 *http.Transport
	// warmCtx ends when the backend is removed, stopping a warm-up;
	// warmStop ends it. warming is set while a warm-up runs, in a
	// goroutine warmWG waits for.
	warmCtx  context.Context
	warmStop context.CancelFunc
	warming  atomic.Bool
	warmWG   sync.WaitGroup
	// healthy is written under p.mu (with a new routing snapshot) and may
	// be read anywhere.
	healthy atomic.Bool
	// removed is set once by RemoveBackend; a removed backend never returns.
	removed atomic.Bool
	// down is set when a connection to the backend could not be opened
	// (refused: its process is gone or not listening), which takes it out
	// of rotation at once, before any health check notices; it is cleared
	// when a probe connects again, or by SetHealthy(true). Written under
	// p.mu (with a new routing snapshot), read anywhere. probing is set
	// while the probe runs, in a goroutine warmWG waits for.
	down    atomic.Bool
	probing atomic.Bool
	// inFlight counts requests, streams and websockets currently using the
	// backend.
	inFlight atomic.Int64
}

// keepAlivePeriod is the TCP keep-alive probe interval on upstream
// connections, the net package's usual value.
const keepAlivePeriod = 15 * time.Second

func newBackend(p *Proxy, s BackendSpec, rel *release) *Backend {
	b := &Backend{p: p, spec: s, rel: rel}
	b.dialer = net.Dialer{Timeout: p.opts.DialTimeout, KeepAlive: keepAlivePeriod}
	b.pool.now = time.Now
	b.warmCtx, b.warmStop = context.WithCancel(context.Background())
	if s.Protocol == H2C {
		b.h2 = newH2CTransport(b)
	}
	return b
}

// ID returns the instance ID the backend was added with.
func (b *Backend) ID() string { return b.spec.ID }

// Release returns the release the backend belongs to.
func (b *Backend) Release() string { return b.spec.Release }

// Addr returns the backend's "host:port".
func (b *Backend) Addr() string { return b.spec.Addr }

// Healthy reports whether the backend was last marked healthy
// (SetHealthy). It is in rotation (when its release has weight or is in
// preview) while healthy and not Down.
func (b *Backend) Healthy() bool { return b.healthy.Load() }

// Down reports whether the backend refused the last connection the proxy
// tried to open and has not accepted one since: it is out of rotation
// whatever its health.
func (b *Backend) Down() bool { return b.down.Load() }

// InFlight returns the number of requests, streams and websockets
// currently using the backend.
func (b *Backend) InFlight() int64 { return b.inFlight.Load() }

// IdleConns returns how many idle upstream connections to the backend its
// pool holds now.
func (b *Backend) IdleConns() int { return b.idleConns() }

// downProbeInterval is how often a backend taken out of rotation because
// it refused a connection is dialled again, to put it back once it
// listens. A restarted process is usually listening within a few of them,
// and is back in rotation once its health checker also passes.
// The interval doubles after each failed probe up to
// maxDownProbeInterval, so an instance that stays away costs one dial a
// second.
const (
	downProbeInterval    = 25 * time.Millisecond
	maxDownProbeInterval = time.Second
)

// refused takes the backend out of rotation after a connection to it
// could not be opened, and starts probing it; it is a no-op when the
// backend is already out or removed. Its idle connections are closed: a
// process that refuses connections no longer holds them, and a request
// that met one would fail after being written. Requests held for want of a
// healthy backend go as soon as another one is healthy.
func (b *Backend) refused(err error) {
	if b.down.Load() || b.removed.Load() {
		return
	}
	p := b.p
	p.mu.Lock()
	if b.down.Load() || b.removed.Load() {
		p.mu.Unlock()
		return
	}
	b.down.Store(true)
	if b.healthy.Load() {
		p.publishLocked()
	}
	p.mu.Unlock()
	p.log.Warn("instance refused a connection; out of rotation until it accepts again",
		"release", b.spec.Release, "instance", b.spec.ID, "err", err)
	b.closeIdle()
	if b.probing.CompareAndSwap(false, true) {
		b.warmWG.Add(1)
		go func() {
			defer b.warmWG.Done()
			defer b.probing.Store(false)
			b.probe()
		}()
	}
}

// probe dials the backend, from downProbeInterval on, until a connection
// opens, then puts the backend back in rotation (if it is healthy and was
// not put back otherwise meanwhile). The connection is closed at once: one
// that never carries a request would hold up a Go app's graceful
// shutdown. RemoveBackend ends the probe.
func (b *Backend) probe() {
	wait := downProbeInterval
	t := time.NewTimer(wait)
	defer t.Stop()
	for b.down.Load() {
		select {
		case <-b.warmCtx.Done():
			return
		case <-t.C:
		}
		wait = min(2*wait, maxDownProbeInterval)
		t.Reset(wait)
		ctx, cancel := context.WithTimeout(b.warmCtx, b.p.opts.DialTimeout)
		c, err := b.dialer.DialContext(ctx, "tcp", b.spec.Addr)
		cancel()
		if err != nil {
			continue
		}
		// Closing a probe connection that did its job tells nothing.
		_ = c.Close()
		b.up()
		return
	}
}

// up puts a backend that was down back in rotation.
func (b *Backend) up() {
	p := b.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if !b.down.Load() {
		return
	}
	b.down.Store(false)
	if b.healthy.Load() && !b.removed.Load() {
		p.publishLocked()
	}
}

// dialError marks a failure to connect to a backend: nothing was sent, so
// the request may go to another backend.
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string { return "dial backend " + e.addr + ": " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dialContext connects to the backend and tracks the connection under its
// release so that Drain can cut it.
func (b *Backend) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := b.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &dialError{addr: addr, err: err}
	}
	return b.rel.track(c), nil
}

// begin marks one more request, stream or websocket in flight.
func (b *Backend) begin() {
	b.inFlight.Add(1)
	b.rel.inFlight.Add(1)
}

// end marks one request, stream or websocket of the backend finished.
func (b *Backend) end() {
	b.inFlight.Add(-1)
	b.rel.finish()
}

// retire closes the idle connections of a backend just marked removed and
// stops its warm-up. Connections in use are closed as their requests end.
func (b *Backend) retire() {
	b.warmStop()
	b.closeIdle()
}
