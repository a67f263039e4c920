package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"time"
)

// deployer runs `cutover deploy` of a release directory.
type deployer struct {
	// Bin is the cutover binary; Config its cutover.toml; Source the
	// release directory deployed.
	Bin, Config, Source string
}

// window is the span of one deploy command.
type window struct{ Start, End time.Time }

// contains reports whether t falls inside w.
func (w window) contains(t time.Time) bool { return !t.Before(w.Start) && !t.After(w.End) }

// deploy runs one deploy and returns its window.
func (d deployer) deploy(ctx context.Context) (window, error) {
	cmd := exec.CommandContext(ctx, d.Bin, "--config", d.Config, "deploy", d.Source)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	w := window{Start: time.Now()}
	err := cmd.Run()
	w.End = time.Now()
	if err != nil {
		return w, fmt.Errorf("cutover deploy %s: %w: %s", d.Source, err, out.String())
	}
	return w, nil
}

// deployResult compares the deploy windows with the steady state around
// them.
type deployResult struct {
	Deploys int
	// Window holds the requests started inside a deploy window; Steady
	// those started outside every window.
	Window, Steady latencySummary
	// Span is the summed length of the deploy windows.
	Span time.Duration
	// Timeline splits the run into buckets of timelineBucket, for
	// results.json: where the slow or failed requests were.
	Timeline []bucket
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

// deployUnderLoad keeps a fixed rate on url for settle, then runs n
// deploys separated by settle, then settle again, and splits the requests
// by deploy window.
func deployUnderLoad(ctx context.Context, d deployer, url string, rate, n int, settle time.Duration) (deployResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Bounded in any case; cancel ends the load once the deploys are done.
	limit := time.Duration(n+1)*settle + time.Duration(n)*2*time.Minute
	hitsc := make(chan []hit, 1)
	go func() { hitsc <- fixedRate(ctx, url, rate, limit) }()

	var windows []window
	var derr error
	timer := time.NewTimer(settle)
	for i := 0; i <= n; i++ {
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
		if ctx.Err() != nil || i == n {
			break
		}
		w, err := d.deploy(ctx)
		if err != nil {
			derr = err
			break
		}
		windows = append(windows, w)
		timer.Reset(settle)
	}
	timer.Stop()
	cancel()
	hits := <-hitsc
	if derr != nil {
		return deployResult{}, derr
	}
	return splitByWindows(hits, windows), nil
}

// splitByWindows summarizes the requests started inside any of windows
// and those started outside all of them.
func splitByWindows(hits []hit, windows []window) deployResult {
	var in, out []hit
	for _, h := range hits {
		inside := false
		for _, w := range windows {
			if w.contains(h.Start) {
				inside = true
				break
			}
		}
		if inside {
			in = append(in, h)
		} else {
			out = append(out, h)
		}
	}
	r := deployResult{Deploys: len(windows), Window: summarize(in), Steady: summarize(out)}
	for _, w := range windows {
		r.Span += w.End.Sub(w.Start)
	}
	r.Timeline = timeline(hits, windows)
	return r
}

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
