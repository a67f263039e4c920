package proxy

import (
	"context"
	"errors"
	"time"
)

// table is an immutable routing snapshot. The request path loads it with
// one atomic read; every change (add, remove, health, active) builds a new
// one and closes the old one's changed channel so held requests look again.
//
// Per-release weights and a sticky version cookie will extend this: the
// snapshot would carry one pool per release in rotation and a weight each,
// and pick would first choose the release (from the cookie, or by weight).
type table struct {
	// active is the release new requests go to ("" = none).
	active string
	// pool holds the healthy backends of the active release, in the order
	// they were added.
	pool []*Backend
	// changed is closed when this snapshot is replaced.
	changed chan struct{}
}

// pick returns a healthy backend of the active release chosen round-robin
// by n, avoiding exclude unless it is the only one. It returns nil when the
// active release has no healthy backend.
func (t *table) pick(n uint64, exclude *Backend) *Backend {
	switch len(t.pool) {
	case 0:
		return nil
	case 1:
		return t.pool[0]
	}
	i := n % uint64(len(t.pool))
	b := t.pool[i]
	if b == exclude {
		b = t.pool[(i+1)%uint64(len(t.pool))]
	}
	return b
}

// errHoldTimeout reports that no healthy backend appeared within HoldTimeout.
var errHoldTimeout = errors.New("no healthy backend within hold timeout")

// acquire returns a healthy backend of the active release, waiting up to
// HoldTimeout for one to appear. It fails with errHoldTimeout, or with
// ctx's error when the client went away while held.
func (p *Proxy) acquire(ctx context.Context) (*Backend, error) {
	t := p.table.Load()
	if b := t.pick(p.rr.Add(1), nil); b != nil {
		return b, nil
	}
	timer := time.NewTimer(p.opts.HoldTimeout)
	defer timer.Stop()
	for {
		select {
		case <-t.changed:
			t = p.table.Load()
			if b := t.pick(p.rr.Add(1), nil); b != nil {
				return b, nil
			}
		case <-timer.C:
			return nil, errHoldTimeout
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// publishLocked builds a new routing snapshot from the current backends and
// active release, installs it and wakes the requests held on the old one.
// p.mu must be held.
func (p *Proxy) publishLocked() {
	t := &table{active: p.active, changed: make(chan struct{})}
	if p.active != "" {
		for _, b := range p.backends {
			if b.rel.name == p.active && b.healthy.Load() {
				t.pool = append(t.pool, b)
			}
		}
	}
	old := p.table.Swap(t)
	close(old.changed)
}

// AddBackend registers a backend of a release. It is not in rotation until
// SetHealthy(true). Adding an ID that is already registered replaces the
// previous backend, as RemoveBackend then AddBackend would.
func (p *Proxy) AddBackend(s BackendSpec) *Backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(s.ID)
	rel := p.releaseLocked(s.Release)
	b := newBackend(p, s, rel)
	p.backends = append(p.backends, b)
	rel.addBackend(b)
	// Not healthy yet, so the routing snapshot is unchanged.
	return b
}

// SetHealthy puts the backend in rotation (true) or takes it out (false).
// It has no effect on a removed backend.
func (b *Backend) SetHealthy(ok bool) {
	p := b.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if b.removed.Load() || b.healthy.Load() == ok {
		return
	}
	b.healthy.Store(ok)
	p.publishLocked()
}

// RemoveBackend takes the backend out of rotation and closes its idle
// upstream connections. Requests already in flight on it continue; their
// connections are closed as they finish. Drain the backend's release first
// to wait for them. Unknown IDs are ignored.
func (p *Proxy) RemoveBackend(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(id)
}

// removeLocked removes the backend with the given ID, if any. p.mu must be
// held.
func (p *Proxy) removeLocked(id string) {
	for i, b := range p.backends {
		if b.spec.ID != id {
			continue
		}
		p.backends = append(p.backends[:i:i], p.backends[i+1:]...)
		b.removed.Store(true)
		if b.healthy.Load() {
			p.publishLocked()
		}
		b.transport.CloseIdleConnections()
		return
	}
}

// SetActive switches new requests, atomically, to the healthy backends of
// release. Requests in flight on the previous release are not affected;
// Drain it to wait for them. "" stops routing: requests are held.
func (p *Proxy) SetActive(release string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active == release {
		return
	}
	p.active = release
	if release != "" {
		p.releaseLocked(release)
	}
	p.publishLocked()
}

// Active returns the release new requests go to, "" when none.
func (p *Proxy) Active() string {
	return p.table.Load().active
}

// releaseLocked returns the release named name, creating it. p.mu must be
// held.
func (p *Proxy) releaseLocked(name string) *release {
	r := p.releases[name]
	if r == nil {
		r = newRelease(name)
		p.releases[name] = r
	}
	return r
}

// lookupRelease returns the release named name, or nil if never seen.
func (p *Proxy) lookupRelease(name string) *release {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.releases[name]
}
