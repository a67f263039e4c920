package proxy

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// table is an immutable routing snapshot. The request path loads it with
// one atomic read; every change (add, remove, health, weights, preview)
// builds a new one and closes the old one's changed channel so held
// requests look again.
type table struct {
	// pools holds one pool per release with at least one healthy backend,
	// whatever its weight: those a pinned or previewing request may reach.
	pools []*pool
	// weighted holds the pools new requests are spread over: weight > 0,
	// a healthy backend, not in preview. A weighted release without a
	// healthy backend is left out, so its share falls to the others.
	weighted []*pool
	// cum holds the running sums of the weights of weighted (reduced by
	// their greatest common divisor); total is the last one.
	cum   []uint64
	total uint64
	// stride is coprime with total: request n takes slot n·stride mod
	// total, which visits every slot once per total requests and spreads
	// each release's slots evenly (a Weyl sequence).
	stride uint64
	// preview names the release in preview ("" = none); previewPool is its
	// pool, nil while it has no healthy backend. previewToken is the
	// secret a request must carry to reach it, previewCookie the
	// Set-Cookie value giving it to a browser.
	preview       string
	previewPool   *pool
	previewToken  string
	previewCookie [2][]string
	// sticky is set while more than one release has weight > 0 and
	// Options.Sticky is on: clients are pinned to the release that served
	// them.
	sticky bool
	// inspect is set when a request's version header and cookie matter:
	// sticky, or a release in preview.
	inspect bool
	// active is the release with the largest weight ("" = none).
	active string
	// hold is the hold episode under way (Proxy.Hold), holdFailed the
	// answer of a failed held switch (Proxy.FailHold); with either, the
	// snapshot routes nothing: weighted and previewPool are empty and
	// sticky is off. Only a request that found no backend looks at them.
	hold       *holdEpisode
	holdFailed *holdFailedError
	// changed is closed when this snapshot is replaced.
	changed chan struct{}
}

// pool is one release's healthy backends in a snapshot.
type pool struct {
	rel *release
	// backends holds the healthy backends, in the order they were added.
	backends []*Backend
}

// pick returns a backend of the pool chosen round-robin by n, avoiding
// exclude unless it is the only one; nil when the pool is empty.
func (pl *pool) pick(n uint64, exclude *Backend) *Backend {
	switch len(pl.backends) {
	case 0:
		return nil
	case 1:
		return pl.backends[0]
	}
	i := n % uint64(len(pl.backends))
	b := pl.backends[i]
	if b == exclude {
		b = pl.backends[(i+1)%uint64(len(pl.backends))]
	}
	return b
}

// find returns the pool of the named release, nil when it has no healthy
// backend.
func (t *table) find(name string) *pool {
	for _, pl := range t.pools {
		if pl.rel.name == name {
			return pl
		}
	}
	return nil
}

// byWeight returns the weighted pool request number n goes to, nil when
// none can serve.
func (t *table) byWeight(n uint64) *pool {
	switch len(t.weighted) {
	case 0:
		return nil
	case 1:
		return t.weighted[0]
	}
	k := (n % t.total) * t.stride % t.total
	for i, c := range t.cum {
		if k < c {
			return t.weighted[i]
		}
	}
	// Unreachable: k < total, the last running sum.
	return t.weighted[len(t.weighted)-1]
}

// route returns the pool a request with selection s goes to in this
// snapshot, nil when none can serve it now. rr is advanced only when the
// choice is by weight between several releases.
func (t *table) route(s *selection, rr *atomic.Uint64) *pool {
	if t.previewFor(s) {
		return t.previewPool
	}
	if s.preview {
		return nil // the preview listener without the token: acquire refuses it
	}
	if s.want != "" && s.want != t.preview {
		if pl := t.find(s.want); pl != nil && t.sticky {
			return pl
		}
	}
	if len(t.weighted) > 1 {
		return t.byWeight(rr.Add(1))
	}
	return t.byWeight(0)
}

// previewFor reports whether a request with selection s may reach the
// release in preview of t: it carries t's preview token.
func (t *table) previewFor(s *selection) bool {
	return t.preview != "" && s.token != "" && s.token == t.previewToken
}

// target is where a request was routed.
type target struct {
	b *Backend
	// setCookie tells the response to pin the client to b's release.
	setCookie bool
	// held is how long the request waited for b, 0 when it did not.
	held time.Duration
}

var (
	// errHoldTimeout reports that no healthy backend appeared within
	// HoldTimeout.
	errHoldTimeout = errors.New("no healthy backend within hold timeout")
	// errNoPreview reports a request to the preview handler while no
	// release is in preview.
	errNoPreview = errors.New("no release in preview")
	// errPreviewToken reports a request to the preview handler without
	// the preview token.
	errPreviewToken = errors.New("no preview token")
)

// previewRefused returns the error of a request s to the preview handler
// that snapshot t cannot serve whatever happens to the backends: none in
// preview, or not the preview's token; nil otherwise.
func (t *table) previewRefused(s *selection) error {
	switch {
	case !s.preview:
		return nil
	case t.preview == "":
		return errNoPreview
	case !t.previewFor(s):
		return errPreviewToken
	}
	return nil
}

// acquire returns a healthy backend for a request with selection s,
// waiting up to HoldTimeout for one to appear. It fails with
// errHoldTimeout (errHeldTooLong during a held switch), errNoPreview, a
// *holdFailedError, or ctx's error when the client went away while held.
func (p *Proxy) acquire(ctx context.Context, s *selection) (target, error) {
	t := s.t
	if tg, ok := p.targetIn(t, s); ok {
		return tg, nil
	}
	w := holdWait{since: time.Now()}
	tg, err := p.await(ctx, t, s, &w)
	tg.held = time.Since(w.since)
	return tg, w.done(err)
}

// await is acquire's wait, from snapshot t in which s found no backend.
func (p *Proxy) await(ctx context.Context, t *table, s *selection, w *holdWait) (target, error) {
	if err := t.refused(s); err != nil {
		return target{}, err
	}
	w.see(t)
	timer := time.NewTimer(p.opts.HoldTimeout)
	defer timer.Stop()
	for {
		select {
		case <-t.changed:
			t = p.table.Load()
			if tg, ok := p.targetIn(t, s); ok {
				return tg, nil
			}
			if err := t.refused(s); err != nil {
				return target{}, err
			}
			w.see(t)
		case <-timer.C:
			return target{}, errHoldTimeout
		case <-ctx.Done():
			return target{}, ctx.Err()
		}
	}
}

// refused returns the error of a request s that snapshot t answers at
// once rather than hold: a failed held switch, or previewRefused.
func (t *table) refused(s *selection) error {
	if t.holdFailed != nil {
		return t.holdFailed
	}
	return t.previewRefused(s)
}

// targetIn routes a request with selection s in snapshot t.
func (p *Proxy) targetIn(t *table, s *selection) (target, bool) {
	pl := t.route(s, &p.rr)
	if pl == nil {
		return target{}, false
	}
	return t.target(s, pl, pl.rel.rr.Add(1), nil), true
}

// target returns the target in pool pl for a request with selection s:
// its backend number n, avoiding exclude unless it is the only one.
func (t *table) target(s *selection, pl *pool, n uint64, exclude *Backend) target {
	if pl.rel.name == t.preview {
		// Only a request with the token gets here; one that came by the
		// link gets the token as a cookie (see stamp), never a pin.
		return target{b: pl.pick(n, exclude), setCookie: s.tokenByQuery}
	}
	return target{
		b:         pl.pick(n, exclude),
		setCookie: t.sticky && !s.preview && s.cookie != pl.rel.name,
	}
}

// reacquire routes again a request with selection s whose attempt on
// failed did not succeed: to another backend of the same release when it
// is still where the request goes (the same one only if it is alone),
// else to the release the request goes to now. When none can serve it
// (failed was the last healthy backend and refused the connection), it
// holds the request until one can, or until the time until, as acquire
// does. The round-robin counters are read, not advanced, so that a dead
// backend does not shift the rotation onto itself for the next request.
func (p *Proxy) reacquire(ctx context.Context, s *selection, failed *Backend, until time.Time) (target, error) {
	t := p.table.Load()
	if tg, ok := p.retryIn(t, s, failed); ok {
		return tg, nil
	}
	w := holdWait{since: time.Now()}
	tg, err := p.reawait(ctx, t, s, failed, until, &w)
	tg.held = time.Since(w.since)
	return tg, w.done(err)
}

// reawait is reacquire's wait, from snapshot t in which s found no
// backend.
func (p *Proxy) reawait(ctx context.Context, t *table, s *selection, failed *Backend, until time.Time, w *holdWait) (target, error) {
	timer := time.NewTimer(time.Until(until))
	defer timer.Stop()
	for {
		if err := t.refused(s); err != nil {
			return target{}, err
		}
		w.see(t)
		select {
		case <-t.changed:
			t = p.table.Load()
			if tg, ok := p.retryIn(t, s, failed); ok {
				return tg, nil
			}
		case <-timer.C:
			return target{}, errHoldTimeout
		case <-ctx.Done():
			return target{}, ctx.Err()
		}
	}
}

// retryIn routes a retried request with selection s in snapshot t,
// avoiding failed unless it is alone.
func (p *Proxy) retryIn(t *table, s *selection, failed *Backend) (target, bool) {
	var rr atomic.Uint64
	rr.Store(p.rr.Load())
	pl := t.route(s, &rr)
	if pl == nil {
		return target{}, false
	}
	return t.target(s, pl, pl.rel.rr.Load(), failed), true
}

// AddBackend registers a backend of a release. It is not in rotation until
// SetHealthy(true). Adding an ID that is already registered replaces the
// previous backend, as RemoveBackend then AddBackend would.
func (p *Proxy) AddBackend(s BackendSpec) *Backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(s.ID)
	p.forgetLocked()
	rel := p.releaseLocked(s.Release)
	b := newBackend(p, s, rel)
	p.backends = append(p.backends, b)
	rel.addBackend(b)
	// Not healthy yet, so the routing snapshot is unchanged.
	return b
}

// SetHealthy puts the backend in rotation (true) or takes it out (false).
// It has no effect on a removed backend. A health check that passes
// also clears Down: the backend accepted its connection.
func (b *Backend) SetHealthy(ok bool) {
	p := b.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if b.removed.Load() {
		return
	}
	if ok && b.down.Load() {
		b.down.Store(false)
		b.healthy.Store(true)
		p.publishLocked()
		return
	}
	if b.healthy.Load() == ok {
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
		b.retire()
		return
	}
}

// releaseLocked returns the release named name, creating it. p.mu must be
// held.
func (p *Proxy) releaseLocked(name string) *release {
	r := p.releases[name]
	if r == nil {
		r = newRelease(name, p.opts.Cookie, p.now)
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
