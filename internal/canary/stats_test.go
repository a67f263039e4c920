package canary

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

func close(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestZ(t *testing.T) {
	for _, tt := range []struct{ conf, z float64 }{{0.95, 1.95996}, {0.99, 2.57583}, {0.9, 1.64485}} {
		if got := zOf(tt.conf); !close(got, tt.z, 1e-4) {
			t.Errorf("z at %v: got %v, want %v", tt.conf, got, tt.z)
		}
	}
}

// The worked examples of Newcombe (1998), "Interval estimation for the
// difference between independent proportions", Table II, method 10, at
// 95%.
func TestNewcombe(t *testing.T) {
	z := zOf(0.95)
	for _, tt := range []struct {
		k1, n1, k2, n2 uint64
		lo, hi         float64
	}{
		{56, 70, 48, 80, 0.0524, 0.3339},
		{9, 10, 3, 10, 0.1705, 0.8090},
		{5, 56, 0, 29, -0.0381, 0.1926},
		{0, 10, 0, 20, -0.1611, 0.2775},
	} {
		d, lo, hi := newcombe(tt.k1, tt.n1, tt.k2, tt.n2, z)
		if want := float64(tt.k1)/float64(tt.n1) - float64(tt.k2)/float64(tt.n2); d != want {
			t.Errorf("%d/%d - %d/%d: got %v, want %v", tt.k1, tt.n1, tt.k2, tt.n2, d, want)
		}
		if !close(lo, tt.lo, 5e-4) || !close(hi, tt.hi, 5e-4) {
			t.Errorf("%d/%d - %d/%d: got interval %.4f..%.4f, want %.4f..%.4f", tt.k1, tt.n1, tt.k2, tt.n2, lo, hi, tt.lo, tt.hi)
		}
	}
}

// rawRatio is latencyRatio on the latencies themselves rather than their
// histograms: every pairwise log-ratio, sorted, and the same ranks.
func rawRatio(c, b []time.Duration, z float64) (shift, bool) {
	var ds []float64
	for _, x := range c {
		for _, y := range b {
			ds = append(ds, math.Log(float64(x))-math.Log(float64(y)))
		}
	}
	sort.Float64s(ds)
	n1, n2 := float64(len(c)), float64(len(b))
	m := n1 * n2
	sigma := math.Sqrt(m / 12 * (n1 + n2 + 1))
	k := m/2 - z*sigma - 0.5
	if k < 0 {
		return shift{}, false
	}
	at := func(w float64) float64 { return math.Exp(ds[max(0, min(len(ds)-1, int(math.Round(w))-1))]) }
	return shift{est: at(m / 2), lo: at(k), hi: at(m - k)}, true
}

func hist(ds []time.Duration) *traffic.Histogram {
	var h traffic.Histogram
	for _, d := range ds {
		h.Add(d)
	}
	return &h
}

// lognormal draws n latencies around median with log-sd sigma.
func lognormal(r *rand.Rand, n int, median time.Duration, sigma float64) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = time.Duration(float64(median) * math.Exp(sigma*r.NormFloat64()))
	}
	return ds
}

// The histogram's estimate and interval agree with those of the raw
// latencies to within 2% (3% over 20 requests a side): the cost of
// counting in buckets.
func TestLatencyRatioMatchesRaw(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	z := zOf(0.99)
	for _, tt := range []struct {
		n1, n2 int
		m1, m2 time.Duration
	}{
		{20, 20, 10 * time.Millisecond, 10 * time.Millisecond},
		{25, 300, 12 * time.Millisecond, 10 * time.Millisecond},
		{200, 150, 20 * time.Millisecond, 10 * time.Millisecond},
		{2000, 2000, 44 * time.Millisecond, 40 * time.Millisecond},
		{1000, 3000, 300 * time.Microsecond, 200 * time.Microsecond},
	} {
		c, b := lognormal(r, tt.n1, tt.m1, 0.5), lognormal(r, tt.n2, tt.m2, 0.5)
		got, ok := latencyRatio(hist(c), hist(b), z)
		want, wantOK := rawRatio(c, b, z)
		tol := 0.02
		if tt.n1 < 100 {
			tol = 0.03
		}
		if ok != wantOK || !close(got.est, want.est, tol*want.est) || !close(got.lo, want.lo, tol*want.lo) || !close(got.hi, want.hi, tol*want.hi) {
			t.Errorf("%d×%v vs %d×%v: got %+v %v, want %+v %v", tt.n1, tt.m1, tt.n2, tt.m2, got, ok, want, wantOK)
		}
	}
}

func TestLatencyRatio(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	z := zOf(0.99)
	base := lognormal(r, 2000, 10*time.Millisecond, 0.4)
	same := lognormal(r, 500, 10*time.Millisecond, 0.4)
	s, ok := latencyRatio(hist(same), hist(base), z)
	if !ok || !(s.lo < 1 && s.hi > 1) || !close(s.est, 1, 0.07) || s.hi-s.lo > 0.3 {
		t.Errorf("same distribution: got %+v, want about 1 with 1 inside a narrow interval", s)
	}
	double := make([]time.Duration, len(same))
	for i, d := range same {
		double[i] = 2 * d
	}
	s, ok = latencyRatio(hist(double), hist(base), z)
	if !ok || !close(s.est, 2, 0.15) || !(s.lo > 1.7 && s.hi < 2.3) {
		t.Errorf("twice as slow: got %+v, want about 2", s)
	}
	if _, ok := latencyRatio(hist(base[:3]), hist(base[3:6]), z); ok {
		t.Errorf("three requests each: got a bounded interval, want none")
	}
	// One request a side cannot bound anything.
	if _, ok := latencyRatio(hist(base[:1]), hist(base[1:2]), z); ok {
		t.Errorf("one request each: got a bounded interval, want none")
	}
	if _, ok := latencyRatio(hist(nil), hist(base), z); ok {
		t.Errorf("empty canary: got a bounded interval, want none")
	}
}

// blocks draws k seconds of n requests a side, lognormal around 10ms;
// slow(s) gives the factor by which second s slows the canary's and the
// baseline's requests.
func blocks(r *rand.Rand, k, n int, slow func(s int) (c, b float64)) (c, b traffic.Histogram, cb, bb []traffic.Histogram) {
	for s := range k {
		fc, fb := slow(s)
		var hc, hb traffic.Histogram
		for _, d := range lognormal(r, n, 10*time.Millisecond, 0.4) {
			hc.Add(time.Duration(fc * float64(d)))
		}
		for _, d := range lognormal(r, n, 10*time.Millisecond, 0.4) {
			hb.Add(time.Duration(fb * float64(d)))
		}
		for i := range hc {
			c[i] += hc[i]
			b[i] += hb[i]
		}
		cb, bb = append(cb, hc), append(bb, hb)
	}
	return c, b, cb, bb
}

func TestDesignEffect(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	calm := func(int) (float64, float64) { return 1, 1 }
	c, b, cb, bb := blocks(r, 30, 30, calm)
	if deff, k, ok := designEffect(&c, &b, cb, bb); !ok || k != 30 || deff > 1.6 {
		t.Errorf("independent requests: got design effect %.2f over %d clusters (%v), want about 1 over 30", deff, k, ok)
	}
	// Every third second slows one release 4×, in turn: each release's
	// requests move together, and the rank statistic with them.
	uneven := func(s int) (float64, float64) {
		switch s % 6 {
		case 0:
			return 4, 1
		case 3:
			return 1, 4
		}
		return 1, 1
	}
	c, b, cb, bb = blocks(r, 30, 30, uneven)
	if deff, _, ok := designEffect(&c, &b, cb, bb); !ok || deff < 5 {
		t.Errorf("noise landing on one release at a time: got design effect %.2f (%v), want well above 1", deff, ok)
	}
	// The same noise on both releases at once moves both alike.
	even := func(s int) (float64, float64) {
		if s%3 == 0 {
			return 4, 4
		}
		return 1, 1
	}
	c, b, cb, bb = blocks(r, 30, 30, even)
	if deff, _, ok := designEffect(&c, &b, cb, bb); !ok || deff > 2 {
		t.Errorf("noise on both releases alike: got design effect %.2f (%v), want about 1", deff, ok)
	}
	// One second says nothing of how seconds differ.
	c, b, cb, bb = blocks(r, 1, 100, calm)
	if _, _, ok := designEffect(&c, &b, cb, bb); ok {
		t.Errorf("one second: got a design effect, want none")
	}
}
