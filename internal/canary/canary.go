// Package canary judges a new release (the canary) against the release it
// replaces (the baseline), both measured by the proxy over the same recent
// window (proxy.Proxy.Window, as traffic.WindowStats). It owns the rules; deciding when to judge
// and what to do with a verdict belongs to the deploy.
//
// # Rules
//
// Judge applies, in this order:
//
//  1. Enough data: a canary that served fewer than MinRequests requests is
//     not judged (Verdict.Enough is false); the caller waits for more.
//  2. Absolute error rate: the canary's share of failed requests (5xx from
//     its instances, 502/504 from the proxy on their behalf, bodies cut
//     short) must not exceed MaxErrorRate.
//  3. Relative error rate: when the baseline served at least MinRequests
//     too, the canary's error rate must not exceed MaxErrorRatio times the
//     baseline's. A baseline with (almost) no errors would make any canary
//     error fail this bound, so it never goes below MaxErrorRate/10: an
//     error rate that low always passes it.
//  4. Latency: when both p99 latencies are known, the canary's must not
//     exceed MaxP99Ratio times the baseline's, unless it is 50ms or less
//     or either window has fewer than MinP99Samples (400) requests:
//     ratios between tiny latencies are noise, and the p99 of fewer
//     samples is decided by one or two slow requests. A failure names
//     the setting to raise when the release is not in fact slower.
//
// Every bound that fails is reported in Verdict.Reason with the numbers
// that failed it. A bound of 0 (or less) is not checked.
package canary

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

// MinP99 is the canary p99 latency at or under which the latency ratio is
// not checked.
const MinP99 = 50 * time.Millisecond

// MinP99Samples is how many requests each window needs before its p99 is
// compared. Of n requests, n/100 lie above the true p99 on average, and
// the chance that none does is 0.99^n: 37% at 100 requests, where the
// measured "p99" is the slowest request or the one before it, so a single
// cold connection or GC pause decides it. From 400 requests on, about four
// lie above it and the chance that none does is under 2%: the p99 says
// something about the release rather than one request. (Below that the
// latency bound is not checked; the error bounds still are.)
const MinP99Samples = 400

// Criteria are the bounds a canary must stay within. A bound ≤ 0 is not
// checked.
type Criteria struct {
	// MaxErrorRate is the highest share (0..1) of failed requests the
	// canary may show, e.g. 0.05.
	MaxErrorRate float64
	// MaxErrorRatio bounds the canary's error rate relative to the
	// baseline's, e.g. 2 (never tighter than MaxErrorRate/10).
	MaxErrorRatio float64
	// MaxP99Ratio bounds the canary's p99 latency relative to the
	// baseline's, e.g. 2.
	MaxP99Ratio float64
	// MinRequests is how many requests the canary must have served to be
	// judged, and the baseline to be compared with, e.g. 20.
	MinRequests int
}

// Verdict is the outcome of judging a canary.
type Verdict struct {
	// OK is true when there was enough data and every bound held.
	OK bool
	// Enough is false when the canary served fewer than MinRequests
	// requests; OK is then false too and the canary should be judged
	// again later rather than rolled back.
	Enough bool
	// Reason says, for people, why: which bounds failed with the numbers,
	// or the numbers that passed.
	Reason string
	// Canary and Baseline are the measurements judged.
	Canary, Baseline traffic.WindowStats
}

// Judge judges the canary's measurements against the baseline's with the
// criteria c. See the package documentation for the rules.
func Judge(canary, baseline traffic.WindowStats, c Criteria) Verdict {
	v := Verdict{Canary: canary, Baseline: baseline}
	if c.MinRequests > 0 && canary.Requests < uint64(c.MinRequests) {
		v.Reason = fmt.Sprintf("not enough requests to judge: the canary served %d, %d needed",
			canary.Requests, c.MinRequests)
		return v
	}
	v.Enough = true

	var failed []string
	if c.MaxErrorRate > 0 && canary.ErrorRate > c.MaxErrorRate {
		failed = append(failed, fmt.Sprintf("canary error rate %s (%d of %d requests) is above the %s bound",
			percent(canary.ErrorRate), canary.Errors, canary.Requests, percent(c.MaxErrorRate)))
	}
	if c.MaxErrorRatio > 0 && baseline.Requests >= uint64(max(c.MinRequests, 1)) {
		relative := c.MaxErrorRatio * baseline.ErrorRate
		floor := c.MaxErrorRate / 10
		if limit := max(relative, floor); canary.ErrorRate > limit {
			why := fmt.Sprintf("%g× the baseline's %s (%d of %d requests)",
				c.MaxErrorRatio, percent(baseline.ErrorRate), baseline.Errors, baseline.Requests)
			if floor > relative {
				why = fmt.Sprintf("%s, the least this bound allows (%g× the baseline's %s)",
					percent(floor), c.MaxErrorRatio, percent(baseline.ErrorRate))
			}
			failed = append(failed, fmt.Sprintf("canary error rate %s (%d of %d requests) is above %s",
				percent(canary.ErrorRate), canary.Errors, canary.Requests, why))
		}
	}
	if c.MaxP99Ratio > 0 && canary.P99 > 0 && baseline.P99 > 0 && canary.P99 > MinP99 &&
		canary.Requests >= MinP99Samples && baseline.Requests >= MinP99Samples &&
		float64(canary.P99) > c.MaxP99Ratio*float64(baseline.P99) {
		ratio := float64(canary.P99) / float64(baseline.P99)
		failed = append(failed, fmt.Sprintf("canary p99 latency %s is above %g× the baseline's %s (over %d and %d requests); "+
			"if the new release is not slower — on a busy machine p99 latency is noisy — set [deploy] max_p99_ratio "+
			"in cutover.toml above this window's %.1f× (now max_p99_ratio = %g; e.g. max_p99_ratio = %g)",
			round(canary.P99), c.MaxP99Ratio, round(baseline.P99), canary.Requests, baseline.Requests,
			ratio, c.MaxP99Ratio, math.Ceil(ratio)+1))
	}
	if len(failed) > 0 {
		v.Reason = strings.Join(failed, "; ")
		return v
	}
	v.OK = true
	v.Reason = fmt.Sprintf("canary: error rate %s (%d of %d requests), p99 %s; baseline: error rate %s (%d of %d requests), p99 %s",
		percent(canary.ErrorRate), canary.Errors, canary.Requests, round(canary.P99),
		percent(baseline.ErrorRate), baseline.Errors, baseline.Requests, round(baseline.P99))
	return v
}

// percent formats a share (0..1) as a percentage with three significant
// digits: "30%", "1.25%", "0.05%".
func percent(r float64) string {
	return fmt.Sprintf("%.3g%%", r*100)
}

// round shortens a latency for people: whole milliseconds from 1ms up,
// tenths of milliseconds below.
func round(d time.Duration) string {
	if d == 0 {
		return "unknown"
	}
	if d >= time.Millisecond {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}
