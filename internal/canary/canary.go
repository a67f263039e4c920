// Package canary judges a new release (the canary) against the release it
// replaces (the baseline), both measured by the proxy over the same recent
// window (proxy.Proxy.Window, as traffic.WindowStats). It owns the rules; deciding when to judge
// and what to do with a verdict belongs to the deploy.
//
// # Why statistical tests
//
// The judge it replaces compared raw p99 latencies: on a busy 2-core
// machine it rolled back an identical binary ("p99 58ms above 2× the
// baseline's 21ms"), because a p99 over a few hundred requests is decided
// by a handful of them, and CPU noise lands on one release more than the
// other. A judge that fires on noise teaches users to turn it off. So the
// judge asks, for latency and for errors, two questions a user can read:
// how much worse is the canary, with what uncertainty; and is the whole
// of that uncertainty beyond the minimum effect the user cares about?
//
// # Rules
//
// Judge applies, in this order:
//
//  1. Enough data: a canary that served fewer than MinRequests requests is
//     not judged (Verdict.Enough is false); the caller waits for more.
//  2. Absolute error rate: the canary fails when the Wilson score interval
//     of its error rate (failed requests: 5xx from its instances, 502/504
//     from the proxy on their behalf, bodies cut short) at Confidence lies
//     wholly above MaxErrorRate. This is the only rule that needs no
//     baseline (the watch after the switch uses it alone).
//  3. Error rate against the baseline (which served MinRequests too): the
//     canary fails when the confidence interval of the difference of the
//     two error rates lies wholly above MinErrorEffect (in points: 0.01 is
//     one percentage point). The interval is Newcombe's hybrid score
//     interval (Newcombe 1998, method 10), the inversion of the score form
//     of the two-proportion z-test: unlike the Wald interval it keeps its
//     coverage with few requests and with no error at all on one side
//     (where Wald collapses to a zero width), and unlike Fisher's exact
//     test it can test a difference of at least a margin rather than of
//     zero, in closed form.
//  4. Latency against the baseline (both served MinRequests): the
//     Hodges–Lehmann estimate of the canary/baseline latency ratio — the
//     median of the ratios of every canary latency to every baseline
//     latency — and its distribution-free confidence interval at
//     Confidence, obtained by inverting the Mann–Whitney U test (normal
//     approximation with tie correction and continuity correction, widened
//     for noise shared within seconds: see below). The
//     canary fails when the interval lies wholly above 1+MinLatencyEffect:
//     "at 99% confidence, the canary's typical request is at least 20%
//     slower". Testing on log latencies makes the shift a ratio, which is
//     what "20% slower" means whatever the app's own latency is.
//
// Every rule that fails is reported in Verdict.Reason with its numbers;
// a pass reports them too. A bound or effect of 0 (or less) is not checked.
//
// # Choices
//
// Kayenta, the judge of Netflix's and Spinnaker's automated canary
// analysis, classifies each metric the same way: a Mann–Whitney U test
// between canary and baseline, the Hodges–Lehmann confidence interval of
// their difference, and an effect-size threshold the difference must also
// pass. cutover uses the interval alone for the decision: a rank test on
// its own, with thousands of requests, calls a 1% slowdown significant;
// the interval answers "at least 20% slower?" directly and is what the
// verdict shows. Using the two-sided interval at Confidence (rather than
// a one-sided bound) keeps what the user reads and what decides the same
// numbers; it makes each test one-sided at (1-Confidence)/2.
//
// The samples are the proxy's latency histograms (traffic.Histogram,
// buckets an eighth of an octave wide), not raw latencies, so the request
// path pays an atomic add and no lock. Latencies in one bucket are ties;
// the ratios are those of bucket centres, so the estimate and its bounds
// are precise to about ±6%, fine against effects of 10% and more.
//
// # Noise comes in seconds
//
// Latencies are not independent: a burst of CPU load slows a run of
// requests together, and on a small machine it can land on one release's
// instances and not the other's. Treating each request as independent
// then makes the latency interval far too narrow: in the simulation, 3 of
// 100 identical releases at 50% were rolled back, and 29 in 1000 at 10%.
// So the proxy's window also hands out the latencies per second
// (traffic.WindowStats.LatencyBlocks), and the judge measures how much the
// rank statistic varies from second to second — the clustered variance of
// Obuchowski (1997), seconds as clusters, with the covariance term that
// cancels noise hitting both releases alike — and widens the interval by
// the square root of that design effect when it is above 1, with a
// Student t quantile on (seconds − 1) degrees of freedom, which makes
// the early looks of a step (a few seconds) cautious. A slowdown that
// holds in every second is proven in a few seconds all the same.
//
// Mann–Whitney compares whole distributions by rank: it catches a canary
// whose typical request is slower, not one whose median is unchanged and
// whose slowest 1% doubled. The simulation in sim_test.go gives the
// figures: false rollbacks of identical releases under uneven CPU noise,
// and how many requests a 2× slower or a +5-point-errors canary needs to
// be caught.
package canary

import (
	"fmt"
	"math"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/cutover/cutover/internal/traffic"
)

// Default criteria: cutover's defaults for [deploy].
const (
	DefaultConfidence       = 0.99
	DefaultMinLatencyEffect = 0.20
	DefaultMinErrorEffect   = 0.01
)

// Criteria say when a canary fails. A bound or effect ≤ 0 is not checked.
type Criteria struct {
	// Confidence (0.5..1, exclusive) is the confidence level of every
	// interval, e.g. 0.99: a failing rule's interval lies wholly on the
	// wrong side of its bound.
	Confidence float64
	// MinLatencyEffect is the smallest slowdown worth a rollback, as a
	// share of the baseline's latency: 0.2 fails a canary only when its
	// typical request is at least 20% slower at Confidence.
	MinLatencyEffect float64
	// MinErrorEffect is the smallest rise of the error rate over the
	// baseline's worth a rollback, in points (0.01 is one percentage
	// point).
	MinErrorEffect float64
	// MaxErrorRate is the highest share (0..1) of failed requests the
	// canary may show whatever the baseline's, e.g. 0.05.
	MaxErrorRate float64
	// MinRequests is how many requests the canary must have served to be
	// judged, and the baseline to be compared with, e.g. 20.
	MinRequests int
}

// Estimate is a point estimate with its confidence interval.
type Estimate struct {
	// Known is false when the rule was not applied (a side with too few
	// requests, or the rule turned off); the numbers are then 0.
	Known bool
	// Value is the estimate, Low and High the ends of its interval at the
	// criteria's confidence.
	Value, Low, High float64
}

// Verdict is the outcome of judging a canary.
type Verdict struct {
	// OK is true when there was enough data and no rule failed.
	OK bool
	// Enough is false when the canary served fewer than MinRequests
	// requests; OK is then false too and the canary should be judged
	// again later rather than rolled back.
	Enough bool
	// Reason says, for people, why: the rules that failed with their
	// numbers, or the numbers that passed.
	Reason string
	// LatencyRatio estimates the canary's typical latency over the
	// baseline's (1.05: 5% slower).
	LatencyRatio Estimate
	// LatencyNoise is the design effect the latency interval was widened
	// by: how much more the canary-over-baseline rank statistic varies
	// across seconds than independent requests would make it (1: not at
	// all; widened by its square root when above 1). 0 when not measured.
	LatencyNoise float64
	// ErrorDiff estimates the canary's error rate minus the baseline's
	// (0.01: one point more).
	ErrorDiff Estimate
	// ErrorRate estimates the canary's error rate on its own.
	ErrorRate Estimate
	// Canary and Baseline are the measurements judged.
	Canary, Baseline traffic.WindowStats
}

// Judge judges the canary's measurements against the baseline's with the
// criteria c. See the package documentation for the rules. A baseline
// with no requests (traffic.WindowStats{}) leaves the absolute error rate
// only.
func Judge(canary, baseline traffic.WindowStats, c Criteria) Verdict {
	v := Verdict{Canary: canary, Baseline: baseline}
	if c.MinRequests > 0 && canary.Requests < uint64(c.MinRequests) {
		v.Reason = fmt.Sprintf("not enough requests to judge: the canary served %d, %d needed (deploy.min_requests)",
			canary.Requests, c.MinRequests)
		return v
	}
	v.Enough = true
	conf := c.Confidence
	if !(conf > 0.5 && conf < 1) {
		conf = DefaultConfidence
	}
	z := zOf(conf)
	cl := fmt.Sprintf("%.3g%% CI", conf*100)
	var failed, passed []string

	if c.MaxErrorRate > 0 && canary.Requests > 0 {
		p, lo, hi := wilson(canary.Errors, canary.Requests, z)
		v.ErrorRate = Estimate{Known: true, Value: p, Low: lo, High: hi}
		if lo > c.MaxErrorRate {
			failed = append(failed, fmt.Sprintf("canary error rate %s (%d of %d requests; %s %s..%s) is above the %s bound (deploy.max_error_rate)",
				percent(p), canary.Errors, canary.Requests, cl, percent(lo), percent(hi), percent(c.MaxErrorRate)))
		}
	}

	compared := baseline.Requests > 0 && baseline.Requests >= uint64(max(c.MinRequests, 1))
	if c.MinErrorEffect > 0 && compared {
		d, lo, hi := newcombe(canary.Errors, canary.Requests, baseline.Errors, baseline.Requests, z)
		v.ErrorDiff = Estimate{Known: true, Value: d, Low: lo, High: hi}
		what := fmt.Sprintf("canary errors %s (%d of %d) vs baseline %s (%d of %d): %s (%s %s..%s)",
			percent(ratio(canary.Errors, canary.Requests)), canary.Errors, canary.Requests,
			percent(ratio(baseline.Errors, baseline.Requests)), baseline.Errors, baseline.Requests,
			points(d), cl, points(lo), points(hi))
		if lo > c.MinErrorEffect {
			failed = append(failed, fmt.Sprintf("%s: more than the %s allowed (deploy.min_error_effect = %g)",
				what, effectPoints(c.MinErrorEffect), c.MinErrorEffect))
		} else {
			passed = append(passed, fmt.Sprintf("%s: not %s more", what, effectPoints(c.MinErrorEffect)))
		}
	}

	if c.MinLatencyEffect > 0 && compared {
		q, inflate, judged := z, 1.0, true
		if len(canary.LatencyBlocks) > 0 || len(baseline.LatencyBlocks) > 0 {
			// Requests of one second share its noise: widen the interval
			// by how much the seconds disagree, with a Student t quantile
			// for the few seconds of an early look.
			deff, clusters, ok := designEffect(&canary.Latency, &baseline.Latency, canary.LatencyBlocks, baseline.LatencyBlocks)
			judged = ok
			if ok {
				q = tOf(conf, clusters-1)
				inflate = math.Sqrt(max(1, deff))
				v.LatencyNoise = deff
			}
		}
		r, ok := latencyRatioSigma(&canary.Latency, &baseline.Latency, q, inflate)
		switch {
		case !judged:
			passed = append(passed, "latency not judged yet: it needs requests of both releases in at least 2 seconds")
		case !ok:
			passed = append(passed, "latency not judged yet: too few requests to bound the ratio")
		default:
			v.LatencyRatio = Estimate{Known: true, Value: r.est, Low: r.lo, High: r.hi}
			what := fmt.Sprintf("canary p50 %s vs baseline %s: %s (%s %s..%s)",
				round(canary.P50), round(baseline.P50), change(r.est), cl, change(r.lo), change(r.hi))
			limit := fmt.Sprintf("%.3g%%", c.MinLatencyEffect*100)
			if r.lo > 1+c.MinLatencyEffect {
				failed = append(failed, fmt.Sprintf("%s: slower by more than %s (deploy.min_latency_effect = %g); "+
					"if the new release is not in fact slower, raise deploy.min_latency_effect or deploy.confidence in cutover.toml",
					what, limit, c.MinLatencyEffect))
			} else {
				passed = append(passed, fmt.Sprintf("%s: not %s slower", what, limit))
			}
		}
	}

	if len(failed) > 0 {
		v.Reason = strings.Join(failed, "; ")
		return v
	}
	v.OK = true
	if len(passed) == 0 {
		passed = append(passed, fmt.Sprintf("canary error rate %s (%d of %d requests), p50 %s; no baseline to compare with",
			percent(ratio(canary.Errors, canary.Requests)), canary.Errors, canary.Requests, round(canary.P50)))
	}
	v.Reason = strings.Join(passed, "; ")
	return v
}

// tOf returns the Student t quantile with df degrees of freedom for a
// two-sided interval at confidence conf: 4.60 for 0.99 and 4.
func tOf(conf float64, df int) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(df)}.Quantile(1 - (1-conf)/2)
}

// zOf returns the standard normal quantile for a two-sided interval at
// confidence conf: 2.576 for 0.99.
func zOf(conf float64) float64 {
	return math.Sqrt2 * math.Erfinv(conf)
}

func ratio(k, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return float64(k) / float64(n)
}

// percent formats a share (0..1) as a percentage with three significant
// digits: "30%", "1.25%", "0.05%".
func percent(r float64) string {
	return fmt.Sprintf("%.3g%%", r*100)
}

// points formats a difference of shares in percentage points, signed,
// with two decimals below 10 (so a bound just over one point does not
// read as one point): "+5.10 points", "-0.30 points", "+17 points".
func points(d float64) string {
	p := d * 100
	if math.Abs(p) >= 10 {
		return fmt.Sprintf("%+.0f points", p)
	}
	return fmt.Sprintf("%+.2f points", p)
}

// effectPoints formats a minimum effect in points: "1 point", "2.5 points".
func effectPoints(d float64) string {
	if d == 0.01 {
		return "1 point"
	}
	return fmt.Sprintf("%.3g points", d*100)
}

// change formats a ratio as a signed change, with a decimal below 100%:
// 1.052 is "+5.2%", 0.9 "-10.0%", 2.04 "+104%".
func change(r float64) string {
	p := (r - 1) * 100
	if math.Abs(p) >= 100 {
		return fmt.Sprintf("%+.0f%%", p)
	}
	return fmt.Sprintf("%+.1f%%", p)
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
