package proxy

import (
	"context"
	"net"
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
	return b
}

// ID returns the instance ID the backend was added with.
func (b *Backend) ID() string { return b.spec.ID }

// Release returns the release the backend belongs to.
func (b *Backend) Release() string { return b.spec.Release }

// Addr returns the backend's "host:port".
func (b *Backend) Addr() string { return b.spec.Addr }

// Healthy reports whether the backend is in rotation (when its release
// has weight or is in preview).
func (b *Backend) Healthy() bool { return b.healthy.Load() }

// InFlight returns the number of requests, streams and websockets
// currently using the backend.
func (b *Backend) InFlight() int64 { return b.inFlight.Load() }

// IdleConns returns how many idle upstream connections to the backend its
// pool holds now.
func (b *Backend) IdleConns() int { return b.idleConns() }

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
