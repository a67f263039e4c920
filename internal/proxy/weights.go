package proxy

import (
	"maps"
	"slices"
)

// MaxWeight bounds a release's weight; larger weights are lowered to it.
const MaxWeight = 1 << 20

// goldenRatio makes the weighted sequence's stride about 0.618 of the
// cycle, which spreads every release's slots most evenly.
const goldenRatio = 0.6180339887498949

// SetWeights sets, atomically, the share of new requests each release
// gets: a release gets weight/sum of the requests without a pin (see the
// package documentation for pins). Releases absent or with a weight ≤ 0
// get none; weights above MaxWeight count as MaxWeight. The choice is
// deterministic: over every cycle of sum/gcd requests each release gets
// exactly its share, spread evenly. A weighted release without a healthy
// backend is skipped, its share going to the others; when none has one,
// requests are held. An empty or nil map stops routing: requests are held.
// Requests in flight are not affected. It ends the refusal of a failed
// held switch (FailHold), not a hold under way (Hold).
func (p *Proxy) SetWeights(w map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	nw := make(map[string]int, len(w))
	for name, v := range w {
		if v <= 0 || name == "" {
			continue
		}
		nw[name] = min(v, MaxWeight)
		p.releaseLocked(name)
	}
	refusing := p.holdFailed != nil
	p.holdFailed = nil
	if maps.Equal(nw, p.weights) && !refusing {
		return
	}
	p.weights = nw
	p.publishLocked()
}

// Weights returns the releases with a weight > 0 and their weights, as
// last set.
func (p *Proxy) Weights() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.weights)
}

// SetActive switches new requests, atomically, to the healthy backends of
// release: SetWeights({release: 100}). Requests in flight on the previous
// release are not affected; Drain it to wait for them. "" stops routing:
// requests are held.
func (p *Proxy) SetActive(release string) {
	if release == "" {
		p.SetWeights(nil)
		return
	}
	p.SetWeights(map[string]int{release: 100})
}

// Active returns the release with the largest weight (the newest name on a
// tie, release IDs sorting by time), "" when no release has weight.
func (p *Proxy) Active() string {
	return p.table.Load().active
}

// SetPreview puts release in preview ("" = none) behind token, a secret
// (see NewPreviewToken): the release gets no weighted traffic whatever its
// weight, and only requests that carry token (by PreviewHeader,
// PreviewCookie or PreviewParam) reach it, on the proxy's own listener and
// on PreviewHandler's. Its name in the version header or cookie alone
// does not: every response shows release names. With an empty token no
// request reaches the release.
func (p *Proxy) SetPreview(release, token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if release == "" {
		token = ""
	}
	if p.preview == release && p.previewToken == token {
		return
	}
	p.preview, p.previewToken = release, token
	if release != "" {
		p.releaseLocked(release)
	}
	p.publishLocked()
}

// Preview returns the release in preview, "" when none.
func (p *Proxy) Preview() string {
	return p.table.Load().preview
}

// publishLocked builds a new routing snapshot from the current backends,
// weights and preview, installs it and wakes the requests held on the old
// one. p.mu must be held.
func (p *Proxy) publishLocked() {
	t := &table{preview: p.preview, previewToken: p.previewToken, changed: make(chan struct{})}
	if p.previewToken != "" {
		t.previewCookie = previewSetCookie(p.previewToken)
	}
	for _, b := range p.backends {
		if !b.healthy.Load() || b.down.Load() {
			continue
		}
		pl := t.find(b.rel.name)
		if pl == nil {
			pl = &pool{rel: b.rel}
			t.pools = append(t.pools, pl)
		}
		pl.backends = append(pl.backends, b)
	}
	if p.preview != "" {
		t.previewPool = t.find(p.preview)
	}

	names := slices.Sorted(maps.Keys(p.weights))
	serving := 0
	var best int
	for _, name := range names {
		w := p.weights[name]
		if name == p.preview {
			continue
		}
		serving++
		if w >= best {
			best, t.active = w, name
		}
		if pl := t.find(name); pl != nil {
			t.weighted = append(t.weighted, pl)
		}
	}
	var g uint64
	for _, pl := range t.weighted {
		g = gcd(g, uint64(p.weights[pl.rel.name]))
	}
	for _, pl := range t.weighted {
		t.total += uint64(p.weights[pl.rel.name]) / g
		t.cum = append(t.cum, t.total)
	}
	t.stride = strideFor(t.total)
	t.sticky = p.opts.Sticky && serving > 1
	t.inspect = t.sticky || p.preview != ""
	if p.hold != nil || p.holdFailed != nil {
		// Held: nothing is routed, so the request path finds no backend
		// and waits without looking at the hold (see hold.go).
		t.hold, t.holdFailed = p.hold, p.holdFailed
		t.weighted, t.cum, t.total, t.stride = nil, nil, 0, 1
		t.previewPool, t.sticky = nil, false
	}

	old := p.table.Swap(t)
	close(old.changed)
}

// strideFor returns the number coprime with total closest to total·0.618
// (1 for total ≤ 2).
func strideFor(total uint64) uint64 {
	if total <= 2 {
		return 1
	}
	c := uint64(float64(total)*goldenRatio + 0.5)
	for d := uint64(0); ; d++ {
		if c+d < total && gcd(c+d, total) == 1 {
			return c + d
		}
		if c > d && gcd(c-d, total) == 1 {
			return c - d
		}
	}
}

// gcd returns the greatest common divisor of a and b; gcd(0, b) = b.
func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
