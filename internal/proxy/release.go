package proxy

import (
	"context"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

// ReleaseStats are a release's counters since the process started
// (traffic.ReleaseStats).
type ReleaseStats = traffic.ReleaseStats

// release holds what outlives any single backend of a release: its
// counters, its in-flight count that Drain waits on, and the connections
// Drain may have to cut.
type release struct {
	name string
	// now is the proxy's clock, for the sliding window.
	now func() time.Time
	// window holds the last WindowSpan of measurements.
	window *window
	// rr is the round-robin counter for picking among the release's
	// healthy backends.
	rr atomic.Uint64
	// versionVals is the one-element header value naming the release, set
	// on responses; setCookie the one-element Set-Cookie values pinning a
	// client to it, for a plain request ([0]) and, marked Secure, for one
	// that came over TLS ([1]) (nil when the name cannot be a cookie
	// value). All are shared, read-only.
	versionVals []string
	setCookie   [2][]string

	// m are the counters only metrics read (metrics.go).
	m counters

	requests   atomic.Uint64
	status5xx  atomic.Uint64
	connErrors atomic.Uint64
	inFlight   atomic.Int64
	// done counts finished requests, streams and websockets.
	done atomic.Uint64
	// waiters counts Drain calls waiting, so that finish only takes mu
	// when someone is listening.
	waiters atomic.Int32

	mu sync.Mutex
	// idle is closed (and reset to nil) when inFlight reaches 0 while a
	// Drain waits. Guarded by mu.
	idle chan struct{}
	// conns holds the release's open upstream connections of requests.
	// Guarded by mu.
	conns map[net.Conn]struct{}
	// ws holds the release's open websockets. Guarded by mu.
	ws map[*wsConn]struct{}
	// backends lists every backend ever added to the release, removed ones
	// too, so Drain can close their idle connections. Guarded by mu.
	backends []*Backend
}

func newRelease(name, cookie string, now func() time.Time) *release {
	r := &release{
		name:        name,
		now:         now,
		window:      newWindow(),
		conns:       make(map[net.Conn]struct{}),
		ws:          make(map[*wsConn]struct{}),
		versionVals: []string{name},
	}
	if validCookieValue(name) {
		line := cookie + "=" + name + "; Path=/; HttpOnly; SameSite=Lax"
		r.setCookie = [2][]string{{line}, {line + "; Secure"}}
	}
	return r
}

// addBackend records b, dropping the removed backends on the way: a
// removed backend keeps no idle connection (retire closed them, and put
// closes what comes back), so Drain has nothing to close on it.
func (r *release) addBackend(b *Backend) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.backends = slices.DeleteFunc(r.backends, func(b *Backend) bool { return b.removed.Load() })
	r.backends = append(r.backends, b)
}

// idleSince reports whether nothing of the release is in flight (no
// request, stream, websocket or tracked connection) and nothing was
// measured since the Unix second sec.
func (r *release) idleSince(sec int64) bool {
	if r.inFlight.Load() != 0 || r.window.last() >= sec {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns) == 0 && len(r.ws) == 0
}

// record counts one request answered with status, whose upstream attempt
// started at start, and returns its latency (for metrics and the access
// log, which so read the clock no more).
func (r *release) record(status int, start time.Time) time.Duration {
	r.requests.Add(1)
	if status >= 500 {
		r.status5xx.Add(1)
	}
	now := r.now()
	d := now.Sub(start)
	r.window.add(now, status, d)
	return d
}

// connError counts one failed upstream attempt.
func (r *release) connError() {
	r.connErrors.Add(1)
	r.window.connError(r.now(), false)
}

// bodyFailed counts a backend failing in the middle of a response body
// already recorded with its status: a failed upstream attempt, and an
// error the client saw unless status already counted as one.
func (r *release) bodyFailed(status int) {
	r.connErrors.Add(1)
	r.window.connError(r.now(), status < 500)
}

// finish marks one request, stream or websocket finished and wakes Drain
// when it was the last.
func (r *release) finish() {
	r.done.Add(1)
	if r.inFlight.Add(-1) == 0 && r.waiters.Load() > 0 {
		r.mu.Lock()
		if r.idle != nil {
			close(r.idle)
			r.idle = nil
		}
		r.mu.Unlock()
	}
}

// waitIdle returns nil once nothing of the release is in flight, or ctx's
// error.
func (r *release) waitIdle(ctx context.Context) error {
	r.waiters.Add(1)
	defer r.waiters.Add(-1)
	for {
		ch := r.idleChan()
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// inFlightNow returns how many requests and streams, and how many
// websockets, of the release are in flight. Read under mu, with removeWS
// running before the end of the websocket's count in flight and addWS
// after its start, a websocket is never taken for a request's end.
func (r *release) inFlightNow() (requests, websockets int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ws := len(r.ws)
	return max(int(r.inFlight.Load())-ws, 0), ws
}

// idleChan returns a channel closed when nothing of the release is in
// flight any more, nil when that is already so. The caller must count
// itself in waiters.
func (r *release) idleChan() chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inFlight.Load() == 0 {
		return nil
	}
	if r.idle == nil {
		r.idle = make(chan struct{})
	}
	return r.idle
}

// add registers an open connection for Drain to cut.
func (r *release) add(c net.Conn) {
	r.mu.Lock()
	r.conns[c] = struct{}{}
	r.mu.Unlock()
}

// remove forgets a connection that was closed.
func (r *release) remove(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

// track registers an upstream connection and returns it wrapped so that
// closing it unregisters it.
func (r *release) track(c net.Conn) net.Conn {
	r.add(c)
	return &trackedConn{Conn: c, rel: r}
}

// addWS registers an open websocket for Drain to close.
func (r *release) addWS(s *wsConn) {
	r.mu.Lock()
	r.ws[s] = struct{}{}
	r.mu.Unlock()
}

// removeWS forgets a websocket that ended.
func (r *release) removeWS(s *wsConn) {
	r.mu.Lock()
	delete(r.ws, s)
	r.mu.Unlock()
}

// closeWebsockets ends every open websocket of the release (goAway) and
// returns how many.
func (r *release) closeWebsockets() int {
	r.mu.Lock()
	open := make([]*wsConn, 0, len(r.ws))
	for s := range r.ws {
		open = append(open, s)
	}
	r.mu.Unlock()
	for _, s := range open {
		s.goAway(closeStopping)
	}
	return len(open)
}

// cut closes the release's websockets and upstream connections, spread
// evenly over pace (see Drain), and returns how many requests, streams
// and websockets were in flight when it began. Idle upstream connections
// are closed first, at once: nobody waits on them. What ends on its own
// meanwhile is skipped, and pacing stops once nothing is in flight.
func (r *release) cut(pace time.Duration) int {
	r.closeIdle()
	r.mu.Lock()
	n := r.inFlight.Load()
	closers := make([]func(), 0, len(r.ws)+len(r.conns))
	for s := range r.ws {
		closers = append(closers, func() {
			r.mu.Lock()
			_, open := r.ws[s]
			r.mu.Unlock()
			if open {
				s.goAway(closeRetired)
			}
		})
	}
	for c := range r.conns {
		closers = append(closers, func() {
			r.mu.Lock()
			_, open := r.conns[c]
			delete(r.conns, c)
			r.mu.Unlock()
			if open {
				// The error of closing a connection being cut tells
				// nothing useful.
				_ = c.Close()
			}
		})
	}
	r.mu.Unlock()
	if pace <= 0 || len(closers) <= 1 {
		for _, f := range closers {
			f()
		}
		return int(n)
	}
	r.waiters.Add(1)
	defer r.waiters.Add(-1)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i, f := range closers {
		if i > 0 {
			ch := r.idleChan()
			if ch == nil {
				break
			}
			timer.Reset(time.Until(start.Add(pace * time.Duration(i) / time.Duration(len(closers)))))
			select {
			case <-timer.C:
			case <-ch:
				return int(n)
			}
		}
		f()
	}
	return int(n)
}

// closeIdle closes the idle upstream connections of all the release's
// backends.
func (r *release) closeIdle() {
	r.mu.Lock()
	bs := append([]*Backend(nil), r.backends...)
	r.mu.Unlock()
	for _, b := range bs {
		b.closeIdle()
	}
}

func (r *release) stats() ReleaseStats {
	return ReleaseStats{
		Requests:   r.requests.Load(),
		Status5xx:  r.status5xx.Load(),
		ConnErrors: r.connErrors.Load(),
		InFlight:   r.inFlight.Load(),
	}
}

// forgetLocked drops the releases nothing refers to any more — no backend
// registered, no weight, not in preview, nothing in flight, nothing
// measured for WindowSpan — with their counters and windows, so that a
// daemon that deploys for months does not keep every release it ever
// served. A release is typically forgotten WindowSpan after the deploy
// that retired it. p.mu must be held.
func (p *Proxy) forgetLocked() {
	if len(p.releases) == 0 {
		return
	}
	since := p.now().Add(-WindowSpan).Unix()
	for name, r := range p.releases {
		if p.weights[name] > 0 || p.preview == name || !r.idleSince(since) || p.hasBackendLocked(name) {
			continue
		}
		delete(p.releases, name)
	}
}

// hasBackendLocked reports whether a backend of the release is registered.
// p.mu must be held.
func (p *Proxy) hasBackendLocked(release string) bool {
	for _, b := range p.backends {
		if b.spec.Release == release {
			return true
		}
	}
	return false
}

// trackedConn is an upstream connection registered with its release until
// closed.
type trackedConn struct {
	net.Conn
	rel  *release
	once sync.Once
}

// Close unregisters and closes the connection.
func (c *trackedConn) Close() error {
	c.once.Do(func() { c.rel.remove(c.Conn) })
	return c.Conn.Close()
}

// Stats returns the counters, since the process started, of each release
// the proxy knows: those with backends, weight or a preview, and those
// retired less than WindowSpan ago (see forgetLocked).
func (p *Proxy) Stats() map[string]ReleaseStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forgetLocked()
	out := make(map[string]ReleaseStats, len(p.releases))
	for name, r := range p.releases {
		out[name] = r.stats()
	}
	return out
}
