package canary

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

// win returns window stats of n requests with errs errors, their
// latencies drawn lognormal around median (log-sd 0.4) from seed.
func win(n, errs uint64, median time.Duration, seed uint64) traffic.WindowStats {
	st := traffic.WindowStats{Requests: n, Errors: errs}
	r := rand.New(rand.NewPCG(seed, 7))
	for _, d := range lognormal(r, int(n), median, 0.4) {
		st.Latency.Add(d)
	}
	if n > 0 {
		st.ErrorRate = float64(errs) / float64(n)
	}
	st.P50, st.P99 = st.Latency.Quantile(0.5), st.Latency.Quantile(0.99)
	return st
}

// defaults are cutover's default criteria.
var defaults = Criteria{Confidence: 0.99, MinLatencyEffect: 0.2, MinErrorEffect: 0.01, MaxErrorRate: 0.05, MinRequests: 20}

func TestJudge(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name             string
		canary, baseline traffic.WindowStats
		c                Criteria
		wantOK, enough   bool
		// reason lists substrings the reason must contain.
		reason []string
	}{
		{
			name:   "healthy canary",
			canary: win(200, 1, 40*ms, 1), baseline: win(2000, 8, 40*ms, 2),
			c: defaults, wantOK: true, enough: true,
			reason: []string{"canary errors 0.5% (1 of 200) vs baseline 0.4% (8 of 2000): +0.10 points (99% CI ", ": not 1 point more",
				"canary p50 ", "vs baseline ", "(99% CI -", ": not 20% slower"},
		},
		{
			name:   "too few canary requests",
			canary: win(19, 19, time.Second, 1), baseline: win(2000, 0, 10*ms, 2),
			c: defaults, wantOK: false, enough: false,
			reason: []string{"the canary served 19, 20 needed (deploy.min_requests)"},
		},
		{
			name:   "exactly min requests is judged",
			canary: win(20, 0, 10*ms, 1), baseline: win(2000, 0, 10*ms, 2),
			c: defaults, wantOK: true, enough: true,
		},
		{
			// The incident: an identical binary whose p99 was 2.8× the
			// baseline's in one window. The medians agree.
			name:   "identical release with a noisy p99 passes",
			canary: withTail(win(1200, 0, 8*ms, 1), 30, 58*ms), baseline: win(1180, 0, 8*ms, 2),
			c: defaults, wantOK: true, enough: true,
			reason: []string{": not 20% slower"},
		},
		{
			name:   "twice as slow",
			canary: win(200, 0, 80*ms, 1), baseline: win(2000, 0, 40*ms, 2),
			c: defaults, wantOK: false, enough: true,
			reason: []string{"canary p50 ", "(99% CI +", "slower by more than 20% (deploy.min_latency_effect = 0.2)", "raise deploy.min_latency_effect or deploy.confidence"},
		},
		{
			name:   "15% slower is under the minimum effect",
			canary: win(2000, 0, 46*ms, 1), baseline: win(2000, 0, 40*ms, 2),
			c: defaults, wantOK: true, enough: true,
			reason: []string{"(99% CI +", ": not 20% slower"},
		},
		{
			name:   "15% slower fails a 5% minimum effect",
			canary: win(2000, 0, 46*ms, 1), baseline: win(2000, 0, 40*ms, 2),
			c: func() Criteria { c := defaults; c.MinLatencyEffect = 0.05; return c }(), wantOK: false, enough: true,
			reason: []string{"slower by more than 5% (deploy.min_latency_effect = 0.05)"},
		},
		{
			name:   "twice as slow over too few requests is not proven",
			canary: win(20, 0, 12*ms, 1), baseline: win(20, 0, 10*ms, 2),
			c: defaults, wantOK: true, enough: true,
		},
		{
			name:   "latency in one second is not judged",
			canary: inOneSecond(win(200, 0, 80*ms, 1)), baseline: inOneSecond(win(2000, 0, 40*ms, 2)),
			c: defaults, wantOK: true, enough: true,
			reason: []string{"latency not judged yet: it needs requests of both releases in at least 2 seconds"},
		},
		{
			name:   "absolute error rate (30% errors)",
			canary: win(100, 30, 20*ms, 1), baseline: win(1000, 40, 20*ms, 2),
			c: defaults, wantOK: false, enough: true,
			reason: []string{"canary error rate 30% (30 of 100 requests; 99% CI 19.7%..42.7%) is above the 5% bound (deploy.max_error_rate)"},
		},
		{
			name:   "an error rate not surely above the bound passes it",
			canary: win(100, 8, 20*ms, 1), baseline: win(1000, 80, 20*ms, 2),
			c: defaults, wantOK: true, enough: true,
		},
		{
			name:   "five points more errors",
			canary: win(1000, 60, 20*ms, 1), baseline: win(5000, 50, 20*ms, 2),
			c: func() Criteria { c := defaults; c.MaxErrorRate = 0; return c }(), wantOK: false, enough: true,
			reason: []string{"canary errors 6% (60 of 1000) vs baseline 1% (50 of 5000): +5.00 points (99% CI +3.28 points..+7.26 points)", "more than the 1 point allowed (deploy.min_error_effect = 0.01)"},
		},
		{
			name:   "a few errors more over few requests is not proven",
			canary: win(50, 2, 20*ms, 1), baseline: win(1000, 0, 20*ms, 2),
			c: defaults, wantOK: true, enough: true,
		},
		{
			name:   "baseline with too few requests is not compared",
			canary: win(100, 3, 80*ms, 1), baseline: win(19, 0, 20*ms, 2),
			c: defaults, wantOK: true, enough: true,
			reason: []string{"no baseline to compare with"},
		},
		{
			name:   "no baseline (the watch): absolute bound only",
			canary: win(100, 60, 20*ms, 1), baseline: traffic.WindowStats{},
			c: defaults, wantOK: false, enough: true,
			reason: []string{"above the 5% bound"},
		},
		{
			name:   "every failed rule is reported",
			canary: win(400, 200, time.Second, 1), baseline: win(1000, 10, 100*ms, 2),
			c: defaults, wantOK: false, enough: true,
			reason: []string{"above the 5% bound", "more than the 1 point allowed", "slower by more than 20%"},
		},
		{
			name:   "zero bounds are not checked",
			canary: win(10, 10, time.Minute, 1), baseline: win(1000, 0, ms, 2),
			c: Criteria{}, wantOK: true, enough: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge(tt.canary, tt.baseline, tt.c)
			if v.OK != tt.wantOK || v.Enough != tt.enough {
				t.Errorf("OK, Enough: got %v, %v, want %v, %v (reason %q)", v.OK, v.Enough, tt.wantOK, tt.enough, v.Reason)
			}
			for _, want := range tt.reason {
				if !strings.Contains(v.Reason, want) {
					t.Errorf("reason: got %q, want it to contain %q", v.Reason, want)
				}
			}
			if v.Reason == "" {
				t.Errorf("reason: got %q, want an explanation", v.Reason)
			}
			if v.Canary.Requests != tt.canary.Requests || v.Baseline.Requests != tt.baseline.Requests {
				t.Errorf("measurements: got other stats than judged")
			}
		})
	}
}

// inOneSecond gives st's latencies as all in the last of two seconds.
func inOneSecond(st traffic.WindowStats) traffic.WindowStats {
	st.LatencyBlocks = []traffic.Histogram{{}, st.Latency}
	return st
}

// withTail replaces the slowest n latencies of st by tail, as a burst of
// CPU noise does.
func withTail(st traffic.WindowStats, n uint64, tail time.Duration) traffic.WindowStats {
	for i := len(st.Latency) - 1; i >= 0 && n > 0; i-- {
		take := min(st.Latency[i], n)
		st.Latency[i] -= take
		n -= take
		st.Latency[traffic.BucketOf(tail)] += take
	}
	st.P50, st.P99 = st.Latency.Quantile(0.5), st.Latency.Quantile(0.99)
	return st
}

func TestJudgeEstimates(t *testing.T) {
	v := Judge(win(500, 30, 80*time.Millisecond, 1), win(5000, 50, 40*time.Millisecond, 2), defaults)
	if !v.LatencyRatio.Known || !close(v.LatencyRatio.Value, 2, 0.15) || !(v.LatencyRatio.Low > 1.2) {
		t.Errorf("latency ratio: got %+v, want about 2, surely above 1.2", v.LatencyRatio)
	}
	if !v.ErrorDiff.Known || !close(v.ErrorDiff.Value, 0.05, 1e-9) || !(v.ErrorDiff.Low > 0.01) {
		t.Errorf("error difference: got %+v, want 0.05, surely above 0.01", v.ErrorDiff)
	}
	if !v.ErrorRate.Known || !close(v.ErrorRate.Value, 0.06, 1e-9) {
		t.Errorf("error rate: got %+v, want 0.06", v.ErrorRate)
	}
	if v := Judge(win(500, 0, time.Millisecond, 1), traffic.WindowStats{}, defaults); v.LatencyRatio.Known || v.ErrorDiff.Known {
		t.Errorf("no baseline: got %+v and %+v, want neither known", v.LatencyRatio, v.ErrorDiff)
	}
}

// BenchmarkJudge is one judgement of a 30s step at 10% of 200 req/s, by
// second: the deploy judges every 100ms during a step.
func BenchmarkJudge(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	hc, hb, cb, bb := blocks(r, 30, 20, func(int) (float64, float64) { return 1, 1 })
	for s := range bb {
		// The baseline serves 9 requests for each of the canary's.
		for range 8 {
			for _, d := range lognormal(r, 20, 10*time.Millisecond, 0.4) {
				bb[s].Add(d)
				hb.Add(d)
			}
		}
	}
	c := traffic.WindowStats{Requests: hc.Count(), Latency: hc, LatencyBlocks: cb}
	base := traffic.WindowStats{Requests: hb.Count(), Latency: hb, LatencyBlocks: bb}
	for b.Loop() {
		Judge(c, base, defaults)
	}
}

// TestJudgeNoiseInSeconds: a burst of CPU load that slowed the canary's
// requests 3× for 4 of the window's 10 seconds, and the baseline's for
// none, is noise, not a slower release: with the requests' seconds, the
// judge sees that the seconds disagree and passes the canary; counting
// every request as independent it would fail it.
func TestJudgeNoiseInSeconds(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	c, b, cb, bb := blocks(r, 10, 40, func(s int) (float64, float64) {
		if s >= 3 && s < 7 {
			return 3, 1
		}
		return 1, 1
	})
	stats := func(h traffic.Histogram, hb []traffic.Histogram) traffic.WindowStats {
		return traffic.WindowStats{Requests: h.Count(), Latency: h, LatencyBlocks: hb, P50: h.Quantile(0.5), P99: h.Quantile(0.99)}
	}
	canary, baseline := stats(c, cb), stats(b, bb)
	v := Judge(canary, baseline, defaults)
	if !v.OK || !(v.LatencyNoise > 4) {
		t.Errorf("noise in 4 seconds of 10: got OK %v, design effect %.1f (%s), want a pass, the noise measured", v.OK, v.LatencyNoise, v.Reason)
	}
	canary.LatencyBlocks, baseline.LatencyBlocks = nil, nil
	if v := Judge(canary, baseline, defaults); v.OK {
		t.Errorf("the same requests as independent: got a pass (%s), want the fail that the seconds prevent", v.Reason)
	}
	// A release slower in every second is slower, noise or not.
	c, b, cb, bb = blocks(r, 10, 40, func(s int) (float64, float64) {
		if s >= 3 && s < 7 {
			return 6, 1
		}
		return 2, 1
	})
	if v := Judge(stats(c, cb), stats(b, bb), defaults); v.OK {
		t.Errorf("2× slower in every second, 6× in four: got a pass (%s), want a fail", v.Reason)
	}
}
