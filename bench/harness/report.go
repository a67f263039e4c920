package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// tpSample is one wrk run of one throughput scenario on one target.
type tpSample struct {
	RPS float64
	// CPUus is the target's CPU time per request in µs.
	CPUus float64
	// Syscalls is the target's syscr+syscw (/proc/<pid>/io) per request,
	// kept in results.json only: the kernel counts read, write, readv and
	// writev there but not send and recv, so it compares versions of one
	// program (cutover's net/http uses read and write), not programs.
	Syscalls float64
	Errors   int64
}

// latSample is one fixed-rate run on one target.
type latSample struct {
	latencySummary
	CPUus float64
}

// idleSample is the memory of one target around opening idle connections.
type idleSample struct {
	Conns            int
	BeforeKiB, AtKiB int64
	// PeakKiB is the summed VmHWM: the most memory the target held at
	// any moment of the run, read while the connections are open.
	PeakKiB int64
	Err     string
}

// results gathers every sample of a run; the report is computed from it.
type results struct {
	Rounds   int
	Duration time.Duration
	Rate     int
	// Targets lists target names in the targets file's order.
	Targets []string
	// TP is keyed by scenario then target.
	TP      map[string]map[string][]tpSample
	Latency map[string][]latSample
	Idle    map[string]idleSample
	Deploy  *deployResult
	// DeployErr says why the deploy scenario has no result.
	DeployErr string
}

func newResults(targets []target, rounds int, d time.Duration, rate int) *results {
	r := &results{
		Rounds: rounds, Duration: d, Rate: rate,
		TP:      make(map[string]map[string][]tpSample),
		Latency: make(map[string][]latSample),
		Idle:    make(map[string]idleSample),
	}
	for _, t := range targets {
		r.Targets = append(r.Targets, t.Name)
	}
	return r
}

func (r *results) addTP(scenario, tgt string, s tpSample) {
	m := r.TP[scenario]
	if m == nil {
		m = make(map[string][]tpSample)
		r.TP[scenario] = m
	}
	m[tgt] = append(m[tgt], s)
}

// median returns the median of xs (mean of the middle two for an even
// count); 0 when empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratio formats a/b as "0.64×", or "—" when b is 0.
func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// ms formats d in milliseconds with a precision that suits sub-ms values.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

// tpMedians returns the median req/s, CPU µs/req and summed errors of one
// scenario on one target; ok is false when there is no sample.
func (r *results) tpMedians(scenario, tgt string) (rps, cpu float64, errs int64, ok bool) {
	ss := r.TP[scenario][tgt]
	if len(ss) == 0 {
		return 0, 0, 0, false
	}
	var rr, cc []float64
	for _, s := range ss {
		rr = append(rr, s.RPS)
		cc = append(cc, s.CPUus)
		errs += s.Errors
	}
	return median(rr), median(cc), errs, true
}

// latMedians returns the median p50, p99 and CPU µs/req of the fixed-rate
// runs on tgt, with the summed failures.
func (r *results) latMedians(tgt string) (p50, p99 time.Duration, cpu float64, failed, total int, ok bool) {
	ss := r.Latency[tgt]
	if len(ss) == 0 {
		return 0, 0, 0, 0, 0, false
	}
	var a, b, c []float64
	for _, s := range ss {
		a = append(a, float64(s.P50))
		b = append(b, float64(s.P99))
		c = append(c, s.CPUus)
		failed += s.Failed
		total += s.Requests
	}
	return time.Duration(median(a)), time.Duration(median(b)), median(c), failed, total, true
}

// writeMarkdown writes the result tables.
func (r *results) writeMarkdown(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }

	if len(r.TP) > 0 {
		p("### Throughput (wrk, 1 thread, closed loop; median of %d round(s) × %s)\n\n", r.Rounds, r.Duration)
		p("CPU is the target's own processes (utime+stime); for `direct` it is the backend's.\n\n")
		p("The TLS scenarios compare with nginx-tls (nginx terminating TLS, with HTTP/2, in front of the\n")
		p("same backend); `× direct` stays empty for them: the backend speaks plain HTTP only.\n\n")
		p("| scenario | target | req/s | × direct | × nginx | CPU µs/req | CPU × nginx | errors |\n")
		p("|---|---|---:|---:|---:|---:|---:|---:|\n")
		for _, sc := range throughputScenarios {
			if _, ok := r.TP[sc.Name]; !ok {
				continue
			}
			dRPS, _, _, _ := r.tpMedians(sc.Name, "direct")
			nRPS, nCPU, _, _ := r.tpMedians(sc.Name, refNginx(sc.Name))
			for _, tgt := range r.Targets {
				rps, cpu, errs, ok := r.tpMedians(sc.Name, tgt)
				if !ok {
					continue
				}
				cpuRatio := ratio(cpu, nCPU)
				if tgt == "direct" {
					cpuRatio = "(backend)"
				}
				p("| %s | %s | %.0f | %s | %s | %.1f | %s | %d |\n",
					sc.Title, tgt, rps, ratio(rps, dRPS), ratio(rps, nRPS), cpu, cpuRatio, errs)
			}
		}
		p("\n")
		r.writeRounds(w, "get")
	}

	if len(r.Latency) > 0 {
		p("### Latency at a fixed rate (vegeta, %d req/s, keep-alive, GET /; median of %d round(s) × %s)\n\n", r.Rate, r.Rounds, r.Duration)
		p("| target | p50 | p99 | p99 × direct | p99 × nginx | CPU µs/req | failed / sent |\n")
		p("|---|---:|---:|---:|---:|---:|---:|\n")
		_, dP99, _, _, _, _ := r.latMedians("direct")
		_, nP99, _, _, _, _ := r.latMedians("nginx")
		for _, tgt := range r.Targets {
			p50, p99, cpu, failed, total, ok := r.latMedians(tgt)
			if !ok {
				continue
			}
			p("| %s | %s | %s | %s | %s | %.1f | %d / %d |\n", tgt, ms(p50), ms(p99),
				ratio(float64(p99), float64(dP99)), ratio(float64(p99), float64(nP99)), cpu, failed, total)
		}
		p("\n")
	}

	if len(r.Idle) > 0 {
		var n int
		for _, s := range r.Idle {
			n = max(n, s.Conns)
		}
		p("### Memory with %d idle keep-alive connections (summed VmRSS of the target's processes; one measurement, after the load rounds)\n\n", n)
		p("| target | RSS before | RSS with the connections | KiB per connection | RSS × nginx | peak RSS of the run | peak × nginx |\n")
		p("|---|---:|---:|---:|---:|---:|---:|\n")
		nAt := float64(r.Idle["nginx"].AtKiB)
		nPeak := float64(r.Idle["nginx"].PeakKiB)
		for _, tgt := range r.Targets {
			s, ok := r.Idle[tgt]
			if !ok {
				continue
			}
			if s.Err != "" {
				p("| %s | %s | failed: %s | | | | |\n", tgt, mib(s.BeforeKiB), s.Err)
				continue
			}
			per := 0.0
			if s.Conns > 0 {
				per = float64(s.AtKiB-s.BeforeKiB) / float64(s.Conns)
			}
			p("| %s | %s | %s | %.1f | %s | %s | %s |\n", tgt, mib(s.BeforeKiB), mib(s.AtKiB), per,
				ratio(float64(s.AtKiB), nAt), mib(s.PeakKiB), ratio(float64(s.PeakKiB), nPeak))
		}
		p("\n")
	}

	if r.Deploy != nil || r.DeployErr != "" {
		p("### Deploy under fixed-rate load (cutover only, %d req/s)\n\n", r.Rate)
		if r.DeployErr != "" {
			p("Failed: %s\n\n", r.DeployErr)
		} else {
			d := r.Deploy
			p("| windows | count | time inside | requests inside | failed inside | p99 inside | p99 inside × steady | slower than 2× steady p99, per window |\n")
			p("|---|---:|---:|---:|---:|---:|---:|---:|\n")
			p("| `cutover deploy` | %d | %s | %d | %d | %s | %s | %s |\n", d.Deploys, d.Span.Round(time.Millisecond),
				d.Window.Requests, d.Window.Failed, ms(d.Window.P99),
				ratio(float64(d.Window.P99), float64(d.Steady.P99)), perWindow(d.Slow, d.Deploys))
			if c := d.Control; c != nil {
				p("| control: bare process swap | %d | %s | %d | %d | %s | %s | %s |\n", c.Swaps, c.Span.Round(time.Millisecond),
					c.Window.Requests, c.Window.Failed, ms(c.Window.P99),
					ratio(float64(c.Window.P99), float64(d.Steady.P99)), perWindow(c.Slow, c.Swaps))
			}
			if len(d.BySteps) > 0 {
				p("\nSlow requests per deploy by the step running when they started (the step's mean length; `%s`'s includes the command's start, `%s` is its last line and exit):", d.BySteps[0].Step, afterSteps)
				for i, s := range d.BySteps {
					sep := ","
					if i == 0 {
						sep = ""
					}
					p("%s %s %.1f (%.0f ms)", sep, s.Step, s.PerDeploy, s.MeanMS)
				}
				p(".\n")
			}
			p("\nSteady state (outside every window): %d requests, %d failed, p99 %s.", d.Steady.Requests, d.Steady.Failed, ms(d.Steady.P99))
			if d.StealPct >= 0 {
				p(" CPU time taken by the hypervisor for other work during the scenario (steal, /proc/stat): %.1f %%.", d.StealPct)
			}
			if n := d.Noise; n != nil {
				if n.Realtime {
					p("\n\nThe machine's own stalls (bench/noiseprobe: a real-time thread per CPU, woken every 1 ms; ordinary processes cannot delay it, the hypervisor and the kernel can):")
				} else {
					p("\n\nStalls of a thread per CPU woken every 1 ms (bench/noiseprobe, **without real-time priority** here: run as root for it; the other processes of the run delay it too):")
				}
				p(" woken ≥ 1 ms late %.1f times a second inside the deploy windows and %.1f outside every window; ≥ 2 ms late %.1f and %.1f; the longest %s.",
					n.InWindows1ms, n.Outside1ms, n.InWindows2ms, n.Outside2ms, ms(n.Longest))
				p("%s", windowStalls(n.WindowLongest, d.SlowAt, d.Slow))
			}
			if g := d.LoadGC; g != nil {
				p("\n\nThe load generator's own garbage collector (the harness, GOGC=%d): %d collections during the scenario, %d of them inside the deploy windows and %d inside the control windows; the longest pause %s.",
					g.GOGC, g.Total, g.InWindows, g.InControl, ms(g.Longest))
			}
			p("\n\n")
		}
	}

	r.writeGoals(w)
}

// bigStall is the least stall windowStalls names.
const bigStall = 10 * time.Millisecond

// windowStalls says how many deploy windows a stall of at least bigStall
// overlapped and which held the longest, with its share of the slow
// requests: a window that lost many requests to one stall of the machine.
func windowStalls(longest []time.Duration, slowAt []slowHit, slow int) string {
	if len(longest) == 0 {
		return ""
	}
	worst, n := 0, 0
	for i, l := range longest {
		if l >= bigStall {
			n++
		}
		if l > longest[worst] {
			worst = i
		}
	}
	if n == 0 {
		return fmt.Sprintf(" No stall of %d ms or more overlapped a deploy window.", bigStall/time.Millisecond)
	}
	inWorst := 0
	for _, h := range slowAt {
		if h.Window == worst {
			inWorst++
		}
	}
	return fmt.Sprintf(" Stalls of %d ms or more overlapped %d of the %d deploy windows; the longest, %s, overlapped window %d (counting from 0), which held %d of the %d slow requests of the deploy windows.",
		bigStall/time.Millisecond, n, len(longest), ms(longest[worst]), worst, inWorst, slow)
}

// nginxTLS names the reference target of the TLS scenarios: nginx
// terminating TLS (and HTTP/2) in front of the same backend (bench/run).
const nginxTLS = "nginx-tls"

// refNginx returns the nginx target a scenario's ratios are taken to.
func refNginx(scenario string) string {
	if isTLSScenario(scenario) {
		return nginxTLS
	}
	return "nginx"
}

// bareNginx names the reference target that is nginx without the
// forwarding headers cutover and the "nginx" target send (bench/run).
const bareNginx = "nginx-bare"

// writeRounds lists the req/s of cutover and nginx (and of nginx-bare,
// when measured) in each round of a throughput scenario, with their
// ratios: how far the rounds agree.
func (r *results) writeRounds(w io.Writer, scenario string) {
	c := r.TP[scenario]["cutover"]
	if len(c) < 2 {
		return
	}
	for _, ref := range []string{"nginx", bareNginx} {
		n := r.TP[scenario][ref]
		if len(c) != len(n) {
			continue
		}
		fmt.Fprintf(w, "Small GET, each round (req/s, cutover / %s):", ref)
		for i := range c {
			sep := ";"
			if i == 0 {
				sep = ""
			}
			fmt.Fprintf(w, "%s %.0f / %.0f = %s", sep, c[i].RPS, n[i].RPS, ratio(c[i].RPS, n[i].RPS))
		}
		fmt.Fprintf(w, ".\n\n")
	}
}

// perWindow formats n per window.
func perWindow(n, windows int) string {
	if windows == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(n)/float64(windows))
}

// mib formats KiB as MiB.
func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// writeGoals compares cutover with the targets of the proxy performance
// work (issue 6), when both sides were measured.
func (r *results) writeGoals(w io.Writer) {
	var lines []string
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	if cRPS, cCPU, _, ok := r.tpMedians("get", "cutover"); ok {
		if nRPS, nCPU, _, ok := r.tpMedians("get", "nginx"); ok && nRPS > 0 && nCPU > 0 {
			rps := fmt.Sprintf("small GET req/s, cutover / nginx = %.2f (goal ≥ 0.80): %s", cRPS/nRPS, verdict(cRPS/nRPS >= 0.8))
			cpu := fmt.Sprintf("small GET CPU per request, cutover / nginx = %.2f (goal ≤ 1.50): %s", cCPU/nCPU, verdict(cCPU/nCPU <= 1.5))
			if bRPS, bCPU, _, ok := r.tpMedians("get", bareNginx); ok && bRPS > 0 && bCPU > 0 {
				rps += fmt.Sprintf("; against %s (no forwarding headers): %.2f", bareNginx, cRPS/bRPS)
				cpu += fmt.Sprintf("; against %s: %.2f", bareNginx, cCPU/bCPU)
			}
			lines = append(lines, rps, cpu)
		}
	}
	if cRPS, cCPU, _, ok := r.tpMedians("get", "cutover"); ok && cRPS > 0 && cCPU > 0 {
		if mRPS, mCPU, _, ok := r.tpMedians("get", "cutover-metrics"); ok {
			lines = append(lines, fmt.Sprintf("small GET req/s with metrics on and scraped every second / off = %.2f (goal ≥ 0.97): %s; CPU per request %.2f",
				mRPS/cRPS, verdict(mRPS/cRPS >= 0.97), mCPU/cCPU))
		}
	}
	tlsGoals := []struct {
		scenario, what string
		min            float64
	}{
		{"tls-get", "TLS small GET req/s over HTTP/1.1", 0.8},
		{"tls-h2", "TLS small GET req/s over HTTP/2", 0.8},
		{"tls-close", "TLS handshakes/s (new connection per request)", 0.5},
	}
	for _, g := range tlsGoals {
		cRPS, cCPU, _, ok := r.tpMedians(g.scenario, "cutover-tls")
		nRPS, nCPU, _, nok := r.tpMedians(g.scenario, nginxTLS)
		if !ok || !nok || nRPS <= 0 || nCPU <= 0 {
			continue
		}
		lines = append(lines,
			fmt.Sprintf("%s, cutover / nginx = %.2f (goal ≥ %.2f): %s; CPU per request %.2f (goal ≤ 1.50): %s",
				g.what, cRPS/nRPS, g.min, verdict(cRPS/nRPS >= g.min), cCPU/nCPU, verdict(cCPU/nCPU <= 1.5)))
	}
	if _, cP99, _, _, _, ok := r.latMedians("cutover"); ok {
		if _, nP99, _, _, _, ok := r.latMedians("nginx"); ok && nP99 > 0 {
			q := float64(cP99) / float64(nP99)
			lines = append(lines, fmt.Sprintf("p99 at %d req/s, cutover / nginx = %.2f (goal ≤ 1.50): %s", r.Rate, q, verdict(q <= 1.5)))
		}
	}
	if c, ok := r.Idle["cutover"]; ok && c.Err == "" {
		if n, ok := r.Idle["nginx"]; ok && n.Err == "" && n.AtKiB > 0 {
			q := float64(c.AtKiB) / float64(n.AtKiB)
			lines = append(lines, fmt.Sprintf("RSS with idle connections, cutover / nginx = %.2f (goal ≤ 2.00): %s", q, verdict(q <= 2)))
		}
	}
	if d := r.Deploy; d != nil {
		lines = append(lines, fmt.Sprintf("failed requests during deploys = %d (goal 0): %s", d.Window.Failed+d.Steady.Failed, verdict(d.Window.Failed+d.Steady.Failed == 0)))
		if d.Steady.P99 > 0 {
			q := float64(d.Window.P99) / float64(d.Steady.P99)
			lines = append(lines, fmt.Sprintf("p99 in deploy windows / steady p99 = %.2f (goal ≤ 2.00): %s", q, verdict(q <= 2)))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "### cutover against the goals\n\n")
	for _, l := range lines {
		fmt.Fprintf(w, "- %s\n", l)
	}
	fmt.Fprintln(w)
}
