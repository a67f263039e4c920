package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// deployer runs `cutover deploy` of a release directory.
type deployer struct {
	// Bin is the cutover binary; Config its cutover.toml; Source the
	// release directory deployed.
	Bin, Config, Source string
}

// window is the span of one deploy command, and the end of each of its
// steps (none for a control swap).
type window struct {
	Start, End time.Time
	Steps      []stepEnd
}

// stepEnd is when the deploy command printed that a step ended.
type stepEnd struct {
	Name string
	At   time.Time
}

// stepLines is the deploy command's output, with the time each line
// arrived: `cutover deploy` prints "  ✓ <step> <duration>  <message>" as
// each step ends.
type stepLines struct {
	mu    sync.Mutex
	out   bytes.Buffer
	part  []byte
	steps []stepEnd
}

func (s *stepLines) Write(p []byte) (int, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.Write(p)
	s.part = append(s.part, p...)
	for {
		i := bytes.IndexByte(s.part, '\n')
		if i < 0 {
			break
		}
		if f := strings.Fields(string(s.part[:i])); len(f) >= 3 && f[0] == "✓" {
			s.steps = append(s.steps, stepEnd{Name: f[1], At: now})
		}
		s.part = s.part[i+1:]
	}
	return len(p), nil
}

// contains reports whether t falls inside w.
func (w window) contains(t time.Time) bool { return !t.Before(w.Start) && !t.After(w.End) }

// deploy runs one deploy and returns its window.
func (d deployer) deploy(ctx context.Context) (window, error) {
	cmd := exec.CommandContext(ctx, d.Bin, "--config", d.Config, "deploy", d.Source)
	out := &stepLines{}
	cmd.Stdout, cmd.Stderr = out, out
	w := window{Start: time.Now()}
	err := cmd.Run()
	w.End = time.Now()
	out.mu.Lock()
	defer out.mu.Unlock()
	w.Steps = out.steps
	if err != nil {
		return w, fmt.Errorf("cutover deploy %s: %w: %s", d.Source, err, out.out.String())
	}
	return w, nil
}

// deployResult compares the deploy windows with the steady state around
// them.
type deployResult struct {
	Deploys int
	// Window holds the requests started inside a deploy window; Steady
	// those started outside every window (deploy and control).
	Window, Steady latencySummary
	// Span is the summed length of the deploy windows.
	Span time.Duration
	// Slow counts the requests in deploy windows slower than twice the
	// steady p99: unlike a p99, a count does not depend on how long the
	// windows are.
	Slow int
	// SlowAt places each of those requests in its deploy window: when it
	// started, in ms after the window's start, and how long it took. It
	// tells which step of a deploy the slow requests follow.
	SlowAt []slowHit `json:",omitempty"`
	// BySteps counts those requests by the step of the deploy that was
	// running when they started, in the steps' order.
	BySteps []stepSlow `json:",omitempty"`
	// Control is the same measurement around the control swaps, nil when
	// none ran.
	Control *controlResult
	// StealPct is the share of the machine's CPU time the hypervisor gave
	// to something else during the scenario (/proc/stat), in percent; -1
	// when unknown. Other guests' work is noise no window can escape.
	StealPct float64
	// Timeline splits the run into buckets of timelineBucket, for
	// results.json: where the slow or failed requests were.
	Timeline []bucket
	// Noise is what bench/noiseprobe saw during the scenario; nil when it
	// did not run.
	Noise *noiseResult `json:",omitempty"`
	// LoadGC is the harness's own garbage collections during the
	// scenario.
	LoadGC *loadGCResult `json:",omitempty"`

	// The windows, and the span of the load from the first request's
	// start to the last one's end: for splitNoise.
	deployWins, controlWins []window
	from, to                time.Time
}

// slowHit is a slow request of a deploy window.
type slowHit struct {
	// Window is the window's index; AtMS the request's start, in ms after
	// the window's; LatencyMS its latency; WindowMS the window's length.
	Window          int
	AtMS, LatencyMS float64
	WindowMS        float64
	// Step is the deploy's step running when the request started
	// (window.stepAt).
	Step string `json:",omitempty"`
}

// timelineBucket is the width of a deploy timeline bucket.
const timelineBucket = 100 * time.Millisecond

// bucket summarizes the requests started in one slice of time.
type bucket struct {
	// OffsetMS is the bucket's start, in ms after the first request.
	OffsetMS int64
	// InWindow says whether the bucket overlaps a deploy window.
	InWindow bool
	latencySummary
}

// controlResult is the deploy measurement of the control swaps.
type controlResult struct {
	Swaps  int
	Window latencySummary
	Span   time.Duration
	Slow   int
}

// deployUnderLoad keeps a fixed rate on url for settle, then runs n
// deploys separated by settle, each followed (when sw is not nil) by a
// control swap after another settle, then settle again; it splits the
// requests by window.
func deployUnderLoad(ctx context.Context, d deployer, sw *swapper, url string, rate, n int, settle time.Duration) (deployResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Bounded in any case; cancel ends the load once the deploys are done.
	events := []func(context.Context) (window, error){d.deploy}
	if sw != nil {
		events = append(events, sw.swap)
		defer sw.close() //nolint:errcheck // best effort at the end; a failed stop shows in the log of the run
	}
	limit := time.Duration(len(events)*n+1)*settle + time.Duration(len(events)*n)*2*time.Minute
	hitsc := make(chan []hit, 1)
	go func() { hitsc <- fixedRate(ctx, url, rate, limit) }()

	windows := make([][]window, len(events))
	var derr error
	timer := time.NewTimer(settle)
	for i := 0; i <= len(events)*n; i++ {
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
		if ctx.Err() != nil || i == len(events)*n {
			break
		}
		k := i % len(events)
		w, err := events[k](ctx)
		if err != nil {
			derr = err
			break
		}
		windows[k] = append(windows[k], w)
		timer.Reset(settle)
	}
	timer.Stop()
	cancel()
	hits := <-hitsc
	if derr != nil {
		return deployResult{}, derr
	}
	var control []window
	if sw != nil {
		control = windows[1]
	}
	return splitByWindows(hits, windows[0], control), nil
}

// splitByWindows summarizes the requests started inside any of the deploy
// windows, inside any of the control windows (none: no control result),
// and outside all of them.
func splitByWindows(hits []hit, deploys, control []window) deployResult {
	var in, ctl, out []hit
	for _, h := range hits {
		switch {
		case inAny(deploys, h.Start):
			in = append(in, h)
		case inAny(control, h.Start):
			ctl = append(ctl, h)
		default:
			out = append(out, h)
		}
	}
	r := deployResult{Deploys: len(deploys), Window: summarize(in), Steady: summarize(out), Span: span(deploys)}
	r.Slow = slower(in, 2*r.Steady.P99)
	r.SlowAt = slowAt(in, deploys, 2*r.Steady.P99)
	r.BySteps = bySteps(r.SlowAt, deploys)
	if len(control) > 0 {
		r.Control = &controlResult{Swaps: len(control), Window: summarize(ctl), Span: span(control), Slow: slower(ctl, 2*r.Steady.P99)}
	}
	r.Timeline = timeline(hits, deploys)
	r.deployWins, r.controlWins = deploys, control
	for i, h := range hits {
		if i == 0 || h.Start.Before(r.from) {
			r.from = h.Start
		}
		if end := h.Start.Add(h.Latency); end.After(r.to) {
			r.to = end
		}
	}
	return r
}

// inAny reports whether t falls inside one of ws.
func inAny(ws []window, t time.Time) bool {
	for _, w := range ws {
		if w.contains(t) {
			return true
		}
	}
	return false
}

// span is the summed length of ws.
func span(ws []window) time.Duration {
	var d time.Duration
	for _, w := range ws {
		d += w.End.Sub(w.Start)
	}
	return d
}

// slower counts the hits slower than d.
func slower(hits []hit, d time.Duration) int {
	n := 0
	for _, h := range hits {
		if h.Latency > d {
			n++
		}
	}
	return n
}

// slowAt places the hits slower than d in the window of ws they started
// in, in start order.
func slowAt(hits []hit, ws []window, d time.Duration) []slowHit {
	var out []slowHit
	for _, h := range hits {
		if h.Latency <= d {
			continue
		}
		for i, w := range ws {
			if w.contains(h.Start) {
				out = append(out, slowHit{Window: i, AtMS: msf(h.Start.Sub(w.Start)),
					LatencyMS: msf(h.Latency), WindowMS: msf(w.End.Sub(w.Start)), Step: w.stepAt(h.Start)})
				break
			}
		}
	}
	return out
}

// afterSteps names the part of a deploy window after its last step: the
// command's last line and its exit.
const afterSteps = "exit"

// stepAt names the step of w running at t: the first step that ended at
// or after t (the first step's span includes the command's start), or
// afterSteps; "" for a window without steps.
func (w window) stepAt(t time.Time) string {
	if len(w.Steps) == 0 {
		return ""
	}
	for _, s := range w.Steps {
		if !t.After(s.At) {
			return s.Name
		}
	}
	return afterSteps
}

// stepSlow is the slow requests of the deploy windows that started during
// one step, and the step's mean length.
type stepSlow struct {
	Step string
	// PerDeploy is slow requests per deploy; MeanMS the step's mean
	// length, in ms, over the windows that had it.
	PerDeploy, MeanMS float64
}

// bySteps counts the slow requests by step, in the order the steps first
// appear in the windows, with every step of the windows listed.
func bySteps(slow []slowHit, ws []window) []stepSlow {
	var order []string
	total := make(map[string]time.Duration)
	count := make(map[string]int)
	add := func(name string, d time.Duration) {
		if _, ok := total[name]; !ok {
			order = append(order, name)
		}
		total[name] += d
		count[name]++
	}
	for _, w := range ws {
		if len(w.Steps) == 0 {
			continue
		}
		from := w.Start
		for _, s := range w.Steps {
			add(s.Name, s.At.Sub(from))
			from = s.At
		}
		add(afterSteps, w.End.Sub(from))
	}
	if len(order) == 0 {
		return nil
	}
	n := make(map[string]int)
	for _, h := range slow {
		n[h.Step]++
	}
	out := make([]stepSlow, 0, len(order))
	for _, name := range order {
		out = append(out, stepSlow{Step: name, PerDeploy: float64(n[name]) / float64(len(ws)), MeanMS: msf(total[name]) / float64(count[name])})
	}
	return out
}

// msf is d in milliseconds.
func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// timeline summarizes hits per timelineBucket, in start order.
func timeline(hits []hit, windows []window) []bucket {
	if len(hits) == 0 {
		return nil
	}
	t0 := hits[0].Start
	for _, h := range hits {
		if h.Start.Before(t0) {
			t0 = h.Start
		}
	}
	groups := make(map[int64][]hit)
	var last int64
	for _, h := range hits {
		k := int64(h.Start.Sub(t0) / timelineBucket)
		groups[k] = append(groups[k], h)
		last = max(last, k)
	}
	out := make([]bucket, 0, last+1)
	for k := int64(0); k <= last; k++ {
		from := t0.Add(time.Duration(k) * timelineBucket)
		to := from.Add(timelineBucket)
		b := bucket{OffsetMS: (time.Duration(k) * timelineBucket).Milliseconds(), latencySummary: summarize(groups[k])}
		for _, w := range windows {
			if w.Start.Before(to) && !w.End.Before(from) {
				b.InWindow = true
			}
		}
		out = append(out, b)
	}
	return out
}
