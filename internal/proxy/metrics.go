package proxy

import (
	"sort"
	"sync/atomic"
	"time"
)

// DurationBounds are the upper bounds of the request duration histogram
// kept per release (Prometheus's default buckets, 5ms to 10s): a request
// is counted in the first bucket whose bound is at least its duration,
// or above the last.
var DurationBounds = [...]time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// counters are what a release counts for metrics beyond the counters the
// deploy engine reads (release.requests and the rest). Every field is an
// atomic counter added to by the request path: no lock, no allocation.
type counters struct {
	// status counts answers by status class: index 1 to 5 for 1xx to
	// 5xx, 0 for anything else.
	status [6]atomic.Uint64
	// duration counts requests by DurationBounds bucket, not cumulative;
	// the last one counts those above the last bound. durationSum is
	// their total in nanoseconds.
	duration    [len(DurationBounds) + 1]atomic.Uint64
	durationSum atomic.Uint64
	// retries counts attempts sent again after one of the release's
	// failed.
	retries atomic.Uint64
	// connectErrors counts connections to a backend that could not be
	// opened (refused, timed out).
	connectErrors atomic.Uint64
	// held counts the requests that waited for a backend before they
	// reached the release, heldTime their waits in nanoseconds.
	held     atomic.Uint64
	heldTime atomic.Uint64
}

// observe counts one answer with status, d after the proxy began routing
// the request, held of which it waited.
func (c *counters) observe(status int, d, held time.Duration) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	c.status[class].Add(1)
	i := 0
	for i < len(DurationBounds) && d > DurationBounds[i] {
		i++
	}
	c.duration[i].Add(1)
	c.durationSum.Add(uint64(max(d, 0)))
	if held > 0 {
		c.held.Add(1)
		c.heldTime.Add(uint64(held))
	}
}

// ReleaseMetrics are a release's counters since the proxy first saw it
// (a release retired WindowSpan ago and seen again starts afresh).
type ReleaseMetrics struct {
	Release string
	// Weight is the release's share of new requests now (0 to 100).
	Weight int
	// Status counts answers by status class: 1 to 5 for 1xx to 5xx, 0
	// for anything else (a websocket's 101 counts as 1xx).
	Status [6]uint64
	// Duration counts answered requests by DurationBounds bucket (not
	// cumulative; the last counts those above the last bound): from
	// sending the request to a backend to the response headers, retries
	// included, plus the wait for a backend before it; DurationSum is
	// their total.
	Duration    [len(DurationBounds) + 1]uint64
	DurationSum time.Duration
	// InFlight is the number of requests, streams and websockets under
	// way.
	InFlight int64
	// Held counts requests that waited for a healthy backend (or in a
	// held switch) before reaching the release; HeldTime their waits.
	Held     uint64
	HeldTime time.Duration
	// Retries counts attempts sent again after an attempt on the release
	// failed.
	Retries uint64
	// ConnectErrors counts connections to its backends that could not be
	// opened; UpstreamErrors every failed upstream attempt (connect
	// errors, resets, timeouts, bodies cut short).
	ConnectErrors  uint64
	UpstreamErrors uint64
}

// Metrics are a proxy's counters for metrics (package metrics reads them
// at scrape time).
type Metrics struct {
	// Releases are the releases the proxy knows, as Stats, by name.
	Releases []ReleaseMetrics
	// Unserved counts requests the proxy answered itself without a
	// release: 503 after holding (no healthy instance, a held switch
	// too long or failed), 503/403 of the preview listener. A client
	// that went away while held is not counted.
	Unserved uint64
}

// Metrics returns the counters of every release the proxy knows (those
// Stats returns), sorted by name.
func (p *Proxy) Metrics() Metrics {
	p.mu.Lock()
	p.forgetLocked()
	rels := make([]*release, 0, len(p.releases))
	for _, r := range p.releases {
		rels = append(rels, r)
	}
	weights := make(map[string]int, len(p.weights))
	for k, v := range p.weights {
		weights[k] = v
	}
	p.mu.Unlock()
	sort.Slice(rels, func(i, j int) bool { return rels[i].name < rels[j].name })
	m := Metrics{Releases: make([]ReleaseMetrics, len(rels)), Unserved: p.unserved.Load()}
	for i, r := range rels {
		rm := &m.Releases[i]
		rm.Release, rm.Weight = r.name, weights[r.name]
		for j := range rm.Status {
			rm.Status[j] = r.m.status[j].Load()
		}
		for j := range rm.Duration {
			rm.Duration[j] = r.m.duration[j].Load()
		}
		rm.DurationSum = time.Duration(r.m.durationSum.Load())
		rm.InFlight = r.inFlight.Load()
		rm.Held, rm.HeldTime = r.m.held.Load(), time.Duration(r.m.heldTime.Load())
		rm.Retries = r.m.retries.Load()
		rm.ConnectErrors = r.m.connectErrors.Load()
		rm.UpstreamErrors = r.connErrors.Load()
	}
	return m
}
