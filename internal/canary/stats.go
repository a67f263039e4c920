package canary

import (
	"math"
	"sync"

	"github.com/cutover/cutover/internal/traffic"
)

// wilson returns the share k/n and its Wilson score interval for the
// standard normal quantile z.
func wilson(k, n uint64, z float64) (p, lo, hi float64) {
	if n == 0 {
		return 0, 0, 1
	}
	nf := float64(n)
	p = float64(k) / nf
	z2 := z * z
	denom := 1 + z2/nf
	centre := (p + z2/(2*nf)) / denom
	half := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / denom
	return p, max(0, centre-half), min(1, centre+half)
}

// newcombe returns the difference of two shares k1/n1 - k2/n2 and its
// hybrid score interval (Newcombe 1998, method 10), built from each
// share's Wilson interval.
func newcombe(k1, n1, k2, n2 uint64, z float64) (d, lo, hi float64) {
	p1, l1, u1 := wilson(k1, n1, z)
	p2, l2, u2 := wilson(k2, n2, z)
	d = p1 - p2
	lo = d - math.Sqrt((p1-l1)*(p1-l1)+(u2-p2)*(u2-p2))
	hi = d + math.Sqrt((u1-p1)*(u1-p1)+(p2-l2)*(p2-l2))
	return d, lo, hi
}

// shift is a Hodges–Lehmann ratio with its confidence interval.
type shift struct{ est, lo, hi float64 }

// logBounds returns the natural logs of the latencies bucket i holds,
// [lo, hi). The underflow bucket is taken as 50µs..100µs and the overflow
// bucket as an eighth of an octave, so every bucket has a finite width.
func logBounds(i int) (lo, hi float64) {
	l, h := traffic.BucketBounds(i)
	switch {
	case i == 0:
		l = h / 2
	case l == h:
		h = l + l/8
	}
	return math.Log(float64(l)), math.Log(float64(h))
}

var bucketLogs = sync.OnceValue(func() (b [traffic.HistogramBuckets][2]float64) {
	for i := range b {
		b[i][0], b[i][1] = logBounds(i)
	}
	return b
})

// pairs is the weight of the pairs of a canary bucket and a baseline
// bucket: the log-ratio of a canary latency to a baseline latency in them
// is spread as the difference of two uniforms, from lo over widths w1 and
// w2 (w1 <= w2).
type pairs struct {
	lo, w1, w2, weight float64
}

// cdf returns the weight of the pairwise log-ratios below t.
func cdf(ps []pairs, t float64) float64 {
	var f float64
	for _, p := range ps {
		s := t - p.lo
		switch {
		case s <= 0:
		case s >= p.w1+p.w2:
			f += p.weight
		case s <= p.w1:
			f += p.weight * s * s / (2 * p.w1 * p.w2)
		case s <= p.w2:
			f += p.weight * (s - p.w1/2) / p.w2
		default:
			r := p.w1 + p.w2 - s
			f += p.weight * (1 - r*r/(2*p.w1*p.w2))
		}
	}
	return f
}

// latencyRatio returns the Hodges–Lehmann estimate of the ratio of the
// canary's latencies c to the baseline's b — the median of the n1·n2
// pairwise ratios — and its confidence interval for the standard normal
// quantile z, by inverting the Mann–Whitney U test (Lehmann 1975, ch. 2):
// the interval runs from the k-th smallest pairwise ratio to the
// (n1·n2-k)-th, with k = n1·n2/2 - z·σ - 1/2 (σ the tie-corrected
// standard deviation of U, 1/2 the continuity correction). Latencies are
// taken as spread evenly (in log) across their bucket, so the pairwise
// ratios of two buckets spread over the ratios of their bounds. ok is
// false when either side is empty or the samples are too small for a
// bounded interval (k < 0).
func latencyRatio(c, b *traffic.Histogram, z float64) (s shift, ok bool) {
	return latencyRatioSigma(c, b, z, 1)
}

// latencyRatioSigma is latencyRatio with the standard deviation of U
// multiplied by inflate (≥ 1).
func latencyRatioSigma(c, b *traffic.Histogram, z, inflate float64) (s shift, ok bool) {
	n1, n2 := float64(c.Count()), float64(b.Count())
	n := n1 + n2
	if n1 == 0 || n2 == 0 || n < 3 {
		return shift{}, false
	}
	var ties float64
	for k := range c {
		if t := float64(c[k] + b[k]); t > 1 {
			ties += t*t*t - t
		}
	}
	m := n1 * n2
	sigma := inflate * math.Sqrt(m/12*((n+1)-ties/(n*(n-1))))
	k := m/2 - z*sigma - 0.5
	if k < 0 {
		return shift{}, false
	}
	logs := bucketLogs()
	var ps []pairs
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, ci := range c {
		if ci == 0 {
			continue
		}
		for j, bj := range b {
			if bj == 0 {
				continue
			}
			w1, w2 := logs[i][1]-logs[i][0], logs[j][1]-logs[j][0]
			p := pairs{lo: logs[i][0] - logs[j][1], w1: min(w1, w2), w2: max(w1, w2), weight: float64(ci) * float64(bj)}
			ps = append(ps, p)
			lo, hi = min(lo, p.lo), max(hi, p.lo+w1+w2)
		}
	}
	// at returns the log-ratio below which the pairs weigh w, by
	// bisection to a ten-thousandth (0.01%).
	at := func(w float64) float64 {
		l, h := lo, hi
		for h-l > 1e-4 {
			mid := (l + h) / 2
			if cdf(ps, mid) < w {
				l = mid
			} else {
				h = mid
			}
		}
		return (l + h) / 2
	}
	return shift{est: math.Exp(at(m / 2)), lo: math.Exp(at(k)), hi: math.Exp(at(m - k))}, true
}

// designEffect returns how much larger the variance of the Mann–Whitney
// statistic of c against b is when requests are taken in clusters — the
// blocks of time cb and cb, requests of one block sharing its noise —
// than when every request is independent, with the number of clusters K
// that saw requests. It is the clustered variance of Obuchowski (1997,
// "Nonparametric analysis of clustered ROC curve data", Biometrics 53)
// over the usual tie-corrected one, both for θ = U/(n1·n2); a burst of CPU
// noise that slows a block of one release's requests raises it, one that
// slows both alike does not (the covariance term). blocks of c and b must
// line up in time; ok is false without two clusters.
func designEffect(c, b *traffic.Histogram, cb, bb []traffic.Histogram) (deff float64, clusters int, ok bool) {
	if len(cb) != len(bb) || len(cb) == 0 {
		return 0, 0, false
	}
	n1, n0 := float64(c.Count()), float64(b.Count())
	if n1 == 0 || n0 == 0 {
		return 0, 0, false
	}
	// fb[k]: share of baseline latencies below bucket k, ties counting
	// half (a canary latency's placement); fc[k] likewise of the canary's.
	var fb, fc [traffic.HistogramBuckets]float64
	var below1, below0 float64
	for k := range c {
		fc[k] = (below1 + float64(c[k])/2) / n1
		fb[k] = (below0 + float64(b[k])/2) / n0
		below1 += float64(c[k])
		below0 += float64(b[k])
	}
	var theta float64
	for k, x := range c {
		theta += float64(x) * fb[k]
	}
	theta /= n1
	type cluster struct{ v10, m, v01, n float64 }
	cs := make([]cluster, 0, len(cb))
	var i10, i01 int
	for s := range cb {
		var cl cluster
		for k := range cb[s] {
			if x := cb[s][k]; x > 0 {
				cl.v10 += float64(x) * fb[k]
				cl.m += float64(x)
			}
			if y := bb[s][k]; y > 0 {
				cl.v01 += float64(y) * (1 - fc[k])
				cl.n += float64(y)
			}
		}
		if cl.m > 0 {
			i10++
		}
		if cl.n > 0 {
			i01++
		}
		if cl.m > 0 || cl.n > 0 {
			cs = append(cs, cl)
		}
	}
	if i10 < 2 || i01 < 2 {
		return 0, len(cs), false
	}
	var s10, s01, s11 float64
	for _, cl := range cs {
		d10, d01 := cl.v10-cl.m*theta, cl.v01-cl.n*theta
		s10 += d10 * d10
		s01 += d01 * d01
		s11 += d10 * d01
	}
	ki := float64(len(cs))
	s10 *= float64(i10) / (float64(i10-1) * n1)
	s01 *= float64(i01) / (float64(i01-1) * n0)
	s11 *= ki / (ki - 1)
	clustered := s10/n1 + s01/n0 + 2*s11/(n1*n0)
	n := n1 + n0
	var ties float64
	for k := range c {
		if t := float64(c[k] + b[k]); t > 1 {
			ties += t*t*t - t
		}
	}
	iid := ((n + 1) - ties/(n*(n-1))) / (12 * n1 * n0)
	if iid <= 0 {
		return 0, len(cs), false
	}
	return clustered / iid, len(cs), true
}
