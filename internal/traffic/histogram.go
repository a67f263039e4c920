package traffic

import (
	"math"
	"math/bits"
	"time"
)

// The latency histogram is log-linear: bucket 0 holds latencies under
// 100µs, then every power-of-two range (octave) from 100µs up is split into
// histogramSub equal buckets, so a bucket is at most an eighth wider than
// its lower bound, and the last bucket holds everything from about 105s on.
// An eighth is fine enough for the canary judge's rank test to tell a 20%
// slowdown (a shift of about two buckets) and cheap enough to count with
// one atomic add per request.
const (
	// histogramUnit is an eighth of the first octave's lower bound (100µs).
	histogramUnit = 12500 * time.Nanosecond
	// histogramSub is the number of buckets per octave: the three bits
	// below the leading one of the latency in histogramUnits, which is
	// why the first octave starts at 8 units.
	histogramSub = 8
	// histogramShift is log2(histogramSub).
	histogramShift = 3
	// histogramOctaves covers 100µs to 100µs·2^20 ≈ 105s.
	histogramOctaves = 20
	// HistogramBuckets counts the underflow bucket, the log-linear ones and
	// the overflow bucket.
	HistogramBuckets = 1 + histogramOctaves*histogramSub + 1
)

// Histogram counts a release's latencies in HistogramBuckets log-linear
// buckets (BucketOf): enough for quantiles within a sixteenth of the value
// and for rank tests between two releases, in a fixed 1.3 KiB.
type Histogram [HistogramBuckets]uint64

// BucketOf returns the histogram bucket of latency d.
func BucketOf(d time.Duration) int {
	if d < histogramSub*histogramUnit {
		return 0
	}
	m := uint64(d / histogramUnit)          // >= histogramSub
	o := bits.Len64(m) - 1 - histogramShift // octave: m in [8<<o, 16<<o)
	if o >= histogramOctaves {
		return HistogramBuckets - 1
	}
	sub := int(m>>o) - histogramSub
	return 1 + o*histogramSub + sub
}

// BucketBounds returns the latencies [lo, hi) bucket i holds; the
// overflow bucket reports lo == hi.
func BucketBounds(i int) (lo, hi time.Duration) {
	switch {
	case i <= 0:
		return 0, histogramSub * histogramUnit
	case i >= HistogramBuckets-1:
		lo = time.Duration(2*histogramSub) << (histogramOctaves - 1) * histogramUnit
		return lo, lo
	}
	o, sub := (i-1)/histogramSub, (i-1)%histogramSub
	lo = time.Duration(histogramSub+sub) << o * histogramUnit
	hi = time.Duration(histogramSub+sub+1) << o * histogramUnit
	return lo, hi
}

// Add counts one latency.
func (h *Histogram) Add(d time.Duration) {
	h[BucketOf(d)]++
}

// Count returns the number of latencies counted.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h {
		n += c
	}
	return n
}

// Quantile returns the q-quantile (0..1) of the latencies as the middle of
// the bucket holding it, 0 when the histogram is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := max(1, uint64(math.Ceil(q*float64(total))))
	var cum uint64
	for i, c := range h {
		cum += c
		if cum >= rank {
			lo, hi := BucketBounds(i)
			return lo + (hi-lo)/2
		}
	}
	// Unreachable: cum reaches total >= rank.
	return 0
}
