package main

import (
	"runtime"
	"runtime/debug"
	"time"
)

// loadGCPercent is the harness's GOGC unless the environment sets one.
// vegeta allocates a few KB per request, so at GOGC=100 and a live heap of
// a few MB the harness collected about three times a second: each time a
// pause of up to 3 ms, then milliseconds of marking on one of the two
// CPUs, which slowed the requests in flight as if the target had. At 2000
// it collects about every 100 MB allocated, a handful of times per
// scenario, and its heap stays within 21 times the live one (tens of MB).
const loadGCPercent = 2000

// tuneLoadGC sets loadGCPercent unless GOGC is set, and returns the GOGC
// in force.
func tuneLoadGC(env string) int {
	if env != "" {
		old := debug.SetGCPercent(100)
		debug.SetGCPercent(old)
		return old
	}
	debug.SetGCPercent(loadGCPercent)
	return loadGCPercent
}

// gcPause is one collection of the harness: when its last stop-the-world
// pause ended, and how long its pauses lasted in all.
type gcPause struct {
	End   time.Time
	Pause time.Duration
}

// gcPauses returns the collections after the first `after` of the process
// (a runtime.MemStats.NumGC read earlier), up to the runtime's last 256.
func gcPauses(after uint32) []gcPause {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := min(ms.NumGC-after, uint32(len(ms.PauseEnd)))
	out := make([]gcPause, 0, n)
	for i := range n {
		k := (ms.NumGC - n + i) % uint32(len(ms.PauseEnd))
		out = append(out, gcPause{End: time.Unix(0, int64(ms.PauseEnd[k])), Pause: time.Duration(ms.PauseNs[k])})
	}
	return out
}

// numGC returns the collections the process has run so far.
func numGC() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC
}

// loadGCResult is the load generator's own collections during the deploy
// scenario: the harness is the client, on the same CPUs, and a collection
// delays the requests it has in flight.
type loadGCResult struct {
	// GOGC is the setting the harness ran with.
	GOGC int
	// Collections of [from, to]: in all, inside the deploy windows and
	// inside the control windows.
	Total, InWindows, InControl int
	// Longest is the longest pause of one collection.
	Longest time.Duration
}

// splitLoadGC places the collections of [from, to] in the windows.
func splitLoadGC(gcs []gcPause, deploys, control []window, from, to time.Time) loadGCResult {
	var r loadGCResult
	for _, g := range gcs {
		if g.End.Before(from) || g.End.After(to) {
			continue
		}
		r.Total++
		r.Longest = max(r.Longest, g.Pause)
		switch {
		case inAny(deploys, g.End):
			r.InWindows++
		case inAny(control, g.End):
			r.InControl++
		}
	}
	return r
}
