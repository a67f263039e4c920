package canary

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

// win returns window stats of n requests with errs errors and the given
// p99 (p50 a tenth of it).
func win(n, errs uint64, p99 time.Duration) traffic.WindowStats {
	st := traffic.WindowStats{Requests: n, Errors: errs, P50: p99 / 10, P99: p99}
	if n > 0 {
		st.ErrorRate = float64(errs) / float64(n)
	}
	return st
}

// defaults are cutover's default bounds.
var defaults = Criteria{MaxErrorRate: 0.05, MaxErrorRatio: 2, MaxP99Ratio: 2, MinRequests: 20}

func TestJudge(t *testing.T) {
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
			canary: win(200, 1, 40*time.Millisecond), baseline: win(2000, 8, 35*time.Millisecond),
			c: defaults, wantOK: true, enough: true,
			reason: []string{"canary: error rate 0.5% (1 of 200 requests), p99 40ms", "baseline: error rate 0.4% (8 of 2000 requests), p99 35ms"},
		},
		{
			name:   "too few canary requests",
			canary: win(19, 19, time.Second), baseline: win(2000, 0, 10*time.Millisecond),
			c: defaults, wantOK: false, enough: false,
			reason: []string{"the canary served 19, 20 needed"},
		},
		{
			name:   "exactly min requests is judged",
			canary: win(20, 0, 10*time.Millisecond), baseline: win(2000, 0, 10*time.Millisecond),
			c: defaults, wantOK: true, enough: true,
		},
		{
			name:   "absolute error rate (30% errors)",
			canary: win(100, 30, 20*time.Millisecond), baseline: win(1000, 40, 20*time.Millisecond),
			c: defaults, wantOK: false, enough: true,
			reason: []string{"canary error rate 30% (30 of 100 requests) is above the 5% bound"},
		},
		{
			name:   "error rate at the bound passes",
			canary: win(100, 5, 20*time.Millisecond), baseline: win(1000, 40, 20*time.Millisecond),
			c: defaults, wantOK: true, enough: true,
		},
		{
			name:   "relative error rate",
			canary: win(100, 3, 20*time.Millisecond), baseline: win(1000, 10, 20*time.Millisecond),
			c: defaults, wantOK: false, enough: true,
			reason: []string{"canary error rate 3% (3 of 100 requests) is above 2× the baseline's 1% (10 of 1000 requests)"},
		},
		{
			name:   "relative bound not below a tenth of the absolute one",
			canary: win(1000, 4, 20*time.Millisecond), baseline: win(1000, 0, 20*time.Millisecond),
			c: defaults, wantOK: true, enough: true,
		},
		{
			name:   "above the floor with a clean baseline",
			canary: win(1000, 6, 20*time.Millisecond), baseline: win(1000, 0, 20*time.Millisecond),
			c: defaults, wantOK: false, enough: true,
			reason: []string{"canary error rate 0.6% (6 of 1000 requests) is above 0.5%, the least this bound allows (2× the baseline's 0%)"},
		},
		{
			name:   "baseline with too few requests is not compared",
			canary: win(100, 3, 20*time.Millisecond), baseline: win(19, 0, 20*time.Millisecond),
			c: defaults, wantOK: true, enough: true,
		},
		{
			name:   "p99 ratio",
			canary: win(400, 0, 300*time.Millisecond), baseline: win(1000, 0, 100*time.Millisecond),
			c: defaults, wantOK: false, enough: true,
			reason: []string{"canary p99 latency 300ms is above 2× the baseline's 100ms (over 400 and 1000 requests)"},
		},
		{
			// A busy 2-core machine, an identical binary at 50%.
			name:   "p99 failure names the setting to change",
			canary: win(1200, 0, 58*time.Millisecond), baseline: win(1180, 0, 21*time.Millisecond),
			c: defaults, wantOK: false, enough: true,
			reason: []string{"set [deploy] max_p99_ratio in cutover.toml above this window's 2.8× (now max_p99_ratio = 2; e.g. max_p99_ratio = 4)"},
		},
		{
			name:   "p99 ratio ignored under 400 canary samples",
			canary: win(399, 0, 300*time.Millisecond), baseline: win(1000, 0, 100*time.Millisecond),
			c: defaults, wantOK: true, enough: true,
		},
		{
			name:   "p99 ratio ignored under 400 baseline samples",
			canary: win(500, 0, 300*time.Millisecond), baseline: win(399, 0, 100*time.Millisecond),
			c: defaults, wantOK: true, enough: true,
		},
		{
			name:   "p99 ratio ignored under 50ms",
			canary: win(400, 0, 50*time.Millisecond), baseline: win(1000, 0, 5*time.Millisecond),
			c: defaults, wantOK: true, enough: true,
		},
		{
			name:   "p99 unknown for the baseline",
			canary: win(100, 0, 2*time.Second), baseline: win(0, 0, 0),
			c: defaults, wantOK: true, enough: true,
			reason: []string{"p99 unknown"},
		},
		{
			name:   "every failed bound is reported",
			canary: win(400, 200, time.Second), baseline: win(1000, 10, 100*time.Millisecond),
			c: defaults, wantOK: false, enough: true,
			reason: []string{"above the 5% bound", "above 2× the baseline's 1%", "p99 latency 1s is above 2× the baseline's 100ms"},
		},
		{
			name:   "zero bounds are not checked",
			canary: win(10, 10, time.Minute), baseline: win(1000, 0, time.Millisecond),
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
			if v.Canary != tt.canary || v.Baseline != tt.baseline {
				t.Errorf("measurements: got %+v / %+v, want %+v / %+v", v.Canary, v.Baseline, tt.canary, tt.baseline)
			}
		})
	}
}
