package canary

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

// The simulation judges canaries the way the deploy does — every look at
// the step so far, failing at the first look that fails — over latencies
// drawn from distributions seen on a busy machine, and counts how often
// the judge is wrong. It is seeded: every run gives the same figures.
//
// One canary is a 30 s step at 10 % (or 50 %) of 300 requests/s, judged every
// 500 ms (the deploy judges every 100 ms; looks that close see nearly the
// same requests). A request's latency is lognormal around 8 ms (log-sd
// 0.35); 2 % of requests have a heavy tail (× a Pareto factor of index
// 1.5, up to 100×: GC pauses, cold connections). Every 1–5 s a burst of
// CPU noise lasts 0.5–2 s and slows the requests it hits 2–9×; it hits a
// share of each release's requests drawn per burst and per release, so
// one release can take all of a burst and the other none. The noise is
// harsh on purpose: at 50% it makes the judge cutover had before (p99
// ratio) roll back about one identical release in ten, as it did on a
// busy 2-core machine.
//
// Run it with figures:
//
//	go test -run Simulation -v ./internal/canary/

// simConfig is one scenario.
type simConfig struct {
	weight    float64 // canary share of requests
	slower    float64 // canary latency multiplier (1: identical)
	baseErr   float64 // baseline error rate
	canaryErr float64 // canary error rate
}

// simResult is what 100 canaries of a scenario gave.
type simResult struct {
	failed int   // canaries judged failed
	needed []int // canary requests served when each failed one was caught
	oldP99 int   // canaries the old p99-ratio rule would have failed
}

const (
	simStep     = 30 * time.Second
	simRate     = 300 // requests per second, both releases
	simLook     = 500 * time.Millisecond
	simCanaries = 100
)

type burst struct {
	start, end time.Duration
	slow       float64    // extra slowdown of a hit request: 1..4
	hit        [2]float64 // share of each release's requests hit
}

func simCanary(r *rand.Rand, cfg simConfig, crit Criteria) (failed bool, needed int, oldFailed bool) {
	var bursts []burst
	for t := time.Duration(0); t < simStep; {
		t += time.Duration((1 + 4*r.Float64()) * float64(time.Second))
		d := time.Duration((0.5 + 1.5*r.Float64()) * float64(time.Second))
		bursts = append(bursts, burst{start: t, end: t + d, slow: 1 + 8*r.Float64(), hit: [2]float64{r.Float64(), r.Float64()}})
	}
	var st [2]traffic.WindowStats // 0 canary, 1 baseline
	gap := time.Second / simRate
	next := simLook
	bi := 0
	for t := time.Duration(0); t < simStep; t += gap {
		if t >= next {
			next += simLook
			if v := judgeSim(st, crit); v.Enough && !v.OK {
				simLastReason = v.Reason
				return true, int(st[0].Requests), oldFailed
			}
			if oldRule(st[0], st[1]) {
				oldFailed = true
			}
		}
		side := 1
		if r.Float64() < cfg.weight {
			side = 0
		}
		lat := 8 * float64(time.Millisecond) * math.Exp(0.35*r.NormFloat64())
		if r.Float64() < 0.02 {
			lat *= min(100, math.Pow(1-r.Float64(), -1/1.5))
		}
		for bi < len(bursts) && bursts[bi].end <= t {
			bi++
		}
		if bi < len(bursts) && t >= bursts[bi].start && r.Float64() < bursts[bi].hit[side] {
			lat *= 1 + bursts[bi].slow
		}
		errRate := cfg.baseErr
		if side == 0 {
			lat *= cfg.slower
			errRate = cfg.canaryErr
		}
		s := &st[side]
		if sec := int(t / time.Second); len(s.LatencyBlocks) <= sec {
			// A new second: both releases get a block, as the proxy's
			// window gives them.
			for i := range st {
				for len(st[i].LatencyBlocks) <= sec {
					st[i].LatencyBlocks = append(st[i].LatencyBlocks, traffic.Histogram{})
				}
			}
		}
		s.LatencyBlocks[len(s.LatencyBlocks)-1].Add(time.Duration(lat))
		s.Requests++
		if r.Float64() < errRate {
			s.Errors++
		}
		s.Latency.Add(time.Duration(lat))
	}
	if v := judgeSim(st, crit); v.Enough && !v.OK {
		return true, int(st[0].Requests), oldFailed
	}
	return false, 0, oldFailed || oldRule(st[0], st[1])
}

// simLastReason is the reason of the last failed verdict, for figures.
var simLastReason string

func judgeSim(st [2]traffic.WindowStats, crit Criteria) Verdict {
	for i := range st {
		st[i].ErrorRate = ratio(st[i].Errors, st[i].Requests)
		st[i].P50, st[i].P99 = st[i].Latency.Quantile(0.5), st[i].Latency.Quantile(0.99)
	}
	return Judge(st[0], st[1], crit)
}

// oldRule is the latency rule of the judge this one replaced: canary p99
// above 2× the baseline's, once it is over 50 ms and both served 400
// requests. Only for comparison in the figures.
func oldRule(c, b traffic.WindowStats) bool {
	if c.Requests < 400 || b.Requests < 400 {
		return false
	}
	cp, bp := c.Latency.Quantile(0.99), b.Latency.Quantile(0.99)
	return cp > 50*time.Millisecond && float64(cp) > 2*float64(bp)
}

func simulate(seed uint64, cfg simConfig, crit Criteria) simResult {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	var res simResult
	for range simCanaries {
		failed, needed, old := simCanary(r, cfg, crit)
		if failed {
			res.failed++
			res.needed = append(res.needed, needed)
		}
		if old {
			res.oldP99++
		}
	}
	slices.Sort(res.needed)
	return res
}

func quantileInt(xs []int, q float64) int {
	if len(xs) == 0 {
		return 0
	}
	return xs[min(len(xs)-1, int(q*float64(len(xs))))]
}

// TestSimulation holds the judge to the figures it is sold on: with the
// default criteria, at most 1 false rollback in 100 canaries of identical
// releases under uneven CPU noise; a canary 2× slower, or failing 5
// points more often, caught in at least 95 of 100.
func TestSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation of 300 canaries")
	}
	crit := Criteria{Confidence: DefaultConfidence, MinLatencyEffect: DefaultMinLatencyEffect,
		MinErrorEffect: DefaultMinErrorEffect, MaxErrorRate: 0.05, MinRequests: 20}
	for _, tt := range []struct {
		name       string
		cfg        simConfig
		atMost     int // failed canaries at most
		atLeast    int // failed canaries at least
		maxNeeded  int // p90 of the canary requests needed at most
		oldAtLeast int // canaries the old p99 rule fails at least: the noise is real
	}{
		{"A/A identical at 10%", simConfig{weight: 0.1, slower: 1, baseErr: 0.005, canaryErr: 0.005}, 1, 0, 0, 0},
		// As in the incident: two releases at 50%, where the old p99 rule
		// rolled back an identical binary.
		{"A/A identical at 50%", simConfig{weight: 0.5, slower: 1, baseErr: 0.005, canaryErr: 0.005}, 1, 0, 0, 5},
		{"A/B 2x slower", simConfig{weight: 0.1, slower: 2, baseErr: 0.005, canaryErr: 0.005}, simCanaries, 95, 300, 0},
		{"A/B +5 points of errors", simConfig{weight: 0.1, slower: 1, baseErr: 0.005, canaryErr: 0.055}, simCanaries, 95, 400, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := simulate(1, tt.cfg, crit)
			t.Logf("%s: %d of %d canaries failed; canary requests when caught: median %d, p90 %d, max %d; the old p99 rule failed %d of those it judged",
				tt.name, res.failed, simCanaries, quantileInt(res.needed, 0.5), quantileInt(res.needed, 0.9),
				quantileInt(res.needed, 1), res.oldP99)
			if res.failed > tt.atMost || res.failed < tt.atLeast {
				t.Errorf("failed canaries: got %d of %d, want %d to %d", res.failed, simCanaries, tt.atLeast, tt.atMost)
			}
			if res.oldP99 < tt.oldAtLeast {
				t.Errorf("old p99 rule: failed %d canaries, want at least %d (noise too mild to prove anything)", res.oldP99, tt.oldAtLeast)
			}
			if p90 := quantileInt(res.needed, 0.9); tt.maxNeeded > 0 && p90 > tt.maxNeeded {
				t.Errorf("canary requests needed to catch it: got p90 %d, want at most %d", p90, tt.maxNeeded)
			}
		})
	}
}
