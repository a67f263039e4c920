package proxy

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

// WindowSpan is how far back Window can look: measurements are kept in
// one-second buckets for this long.
const WindowSpan = 5 * time.Minute

// windowSeconds is the number of one-second buckets in a release's ring.
const windowSeconds = int64(WindowSpan / time.Second)

// WindowStats are a release's measurements over a recent window of time
// (traffic.WindowStats).
type WindowStats = traffic.WindowStats

// second holds one second of a release's measurements.
type second struct {
	// mu serializes resets of the bucket for a new second; counting takes
	// no lock.
	mu sync.Mutex
	// sec is the Unix second counted here, math.MinInt64 before the first.
	sec        atomic.Int64
	requests   atomic.Uint64
	errors     atomic.Uint64
	connErrors atomic.Uint64
	latency    [traffic.HistogramBuckets]atomic.Uint32
}

// window is a ring of one-second buckets covering WindowSpan, written by
// every request of a release without a shared lock.
type window struct {
	ring [windowSeconds]second
}

func newWindow() *window {
	w := new(window)
	for i := range w.ring {
		w.ring[i].sec.Store(math.MinInt64)
	}
	return w
}

// slot returns the bucket for Unix second s, reset for it when it last
// counted an older second, or nil when it already counts a newer one (a
// writer stalled for more than WindowSpan; its sample is dropped).
func (w *window) slot(s int64) *second {
	b := &w.ring[((s%windowSeconds)+windowSeconds)%windowSeconds]
	cur := b.sec.Load()
	if cur == s {
		return b
	}
	if cur > s {
		return nil
	}
	b.mu.Lock()
	if cur := b.sec.Load(); cur < s {
		b.requests.Store(0)
		b.errors.Store(0)
		b.connErrors.Store(0)
		for i := range b.latency {
			b.latency[i].Store(0)
		}
		// Stored last: a writer that sees s counts into zeroed counters.
		b.sec.Store(s)
	}
	b.mu.Unlock()
	if b.sec.Load() != s {
		return nil
	}
	return b
}

// last returns the latest Unix second the window counted something in,
// math.MinInt64 when it never did.
func (w *window) last() int64 {
	last := int64(math.MinInt64)
	for i := range w.ring {
		last = max(last, w.ring[i].sec.Load())
	}
	return last
}

// add counts one answered request at time now.
func (w *window) add(now time.Time, status int, latency time.Duration) {
	b := w.slot(now.Unix())
	if b == nil {
		return
	}
	b.requests.Add(1)
	if status >= 500 {
		b.errors.Add(1)
	}
	b.latency[traffic.BucketOf(latency)].Add(1)
}

// connError counts one failed upstream attempt at time now; seen marks
// one that the client saw although its status was already counted (a body
// cut short), which counts as an error too.
func (w *window) connError(now time.Time, seen bool) {
	if b := w.slot(now.Unix()); b != nil {
		b.connErrors.Add(1)
		if seen {
			b.errors.Add(1)
		}
	}
}

// stats sums the buckets of the last d (rounded up to whole seconds,
// counting the current one) before now.
func (w *window) stats(now time.Time, d time.Duration) WindowStats {
	n := int64((d + time.Second - 1) / time.Second)
	n = max(1, min(n, windowSeconds))
	s := now.Unix()
	var st WindowStats
	// Blocks of whole seconds, at most traffic.MaxBlocks, aligned on Unix
	// seconds counted back from now so that two releases' windows taken
	// in the same second split alike; the oldest may be partial.
	per := (n + traffic.MaxBlocks - 1) / traffic.MaxBlocks
	st.LatencyBlocks = make([]traffic.Histogram, (n+per-1)/per)
	var one [traffic.HistogramBuckets]uint64
	for i := range n {
		sec := s - i
		b := &w.ring[((sec%windowSeconds)+windowSeconds)%windowSeconds]
		if b.sec.Load() != sec {
			continue
		}
		req, errs, conn := b.requests.Load(), b.errors.Load(), b.connErrors.Load()
		for j := range b.latency {
			one[j] = uint64(b.latency[j].Load())
		}
		if b.sec.Load() != sec {
			// Reset for a newer second while being read.
			continue
		}
		st.Requests += req
		st.Errors += errs
		st.ConnErrors += conn
		blk := &st.LatencyBlocks[len(st.LatencyBlocks)-1-int(i/per)]
		for j, c := range one {
			st.Latency[j] += c
			blk[j] += c
		}
	}
	if st.Requests > 0 {
		st.ErrorRate = float64(st.Errors) / float64(st.Requests)
	}
	st.P50 = st.Latency.Quantile(0.50)
	st.P99 = st.Latency.Quantile(0.99)
	return st
}

// Window returns the release's measurements over the last d, rounded up
// to whole seconds and counting the current one, at most WindowSpan. An
// unknown release gives zero stats.
func (p *Proxy) Window(release string, d time.Duration) WindowStats {
	r := p.lookupRelease(release)
	if r == nil {
		return WindowStats{}
	}
	return r.window.stats(p.now(), d)
}
