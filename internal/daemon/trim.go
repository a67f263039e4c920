package daemon

// Giving memory back after a burst of client connections.

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	// trimTick is how often the daemon looks at its client connections.
	trimTick = time.Second
	// trimMinClosed is how many client connections must have closed since
	// the peak before memory is given back: at some KB each (a goroutine's
	// stack and a read buffer), 256 are a few MB.
	trimMinClosed = 256
	// trimMinInterval spaces two trims: bursts that come back often reuse
	// the memory anyway.
	trimMinInterval = 10 * time.Second
)

// peakCounter is what the trimmer needs of a server: h1.Server.
type peakCounter interface {
	TakePeakConns() (peak, now int)
}

// trimmer decides when to give memory back to the OS. Each open client
// connection costs the daemon a goroutine and its buffers. When a burst of
// them closes, Go's runtime keeps the memory they used until a garbage
// collection finds it free, and an idle daemon's next collection may be
// two minutes away, its scavenger returning the pages over minutes more: a
// storm of a few thousand connections (clients that queue up while the
// machine stalls, then leave) would leave the daemon tens of MB larger for
// minutes. The trimmer collects and returns the memory at once instead,
// when at least trimMinClosed connections closed since the peak and at
// most half the peak are left.
type trimmer struct {
	servers []peakCounter
	now     func() time.Time

	peak     int       // most connections since the last trim
	lastTrim time.Time // zero: never
}

func newTrimmer(servers ...peakCounter) *trimmer {
	return &trimmer{servers: servers, now: time.Now}
}

// freeMemory collects twice, so that what sync.Pools held at the first
// collection (kept one more cycle as their victims) is freed too, and
// returns the free pages to the OS.
func freeMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// observe looks at the servers once and says whether to trim now, with the
// peak and the connections open now; a trim it asks for counts as done.
func (t *trimmer) observe() (peak, open int, ok bool) {
	for _, s := range t.servers {
		p, n := s.TakePeakConns()
		peak += p
		open += n
	}
	t.peak = max(t.peak, peak)
	if t.peak-open < trimMinClosed || open > t.peak/2 {
		return 0, 0, false
	}
	if !t.lastTrim.IsZero() && t.now().Sub(t.lastTrim) < trimMinInterval {
		return 0, 0, false
	}
	peak = t.peak
	t.peak, t.lastTrim = open, t.now()
	return peak, open, true
}

// run observes every trimTick until ctx ends, and logs each trim.
func (t *trimmer) run(ctx context.Context, log *slog.Logger) {
	tick := time.NewTicker(trimTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if peak, open, ok := t.observe(); ok {
			before := retainedBytes()
			freeMemory()
			log.Debug("gave memory back to the OS after client connections closed",
				"peak_conns", peak, "open_conns", open,
				"freed_mib", float64(before-retainedBytes())/(1<<20))
		}
	}
}

// retainedBytes is the memory the Go runtime holds from the OS (mapped
// and not returned).
func retainedBytes() int64 {
	s := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64()) - int64(s[1].Value.Uint64())
}
