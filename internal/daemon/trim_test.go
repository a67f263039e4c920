package daemon

import (
	"testing"
	"time"
)

// fakePeaks is a server whose peak and open connections the test sets.
type fakePeaks struct{ peak, now int }

func (f *fakePeaks) TakePeakConns() (int, int) {
	p := max(f.peak, f.now)
	f.peak = f.now
	return p, f.now
}

func TestTrimmerObserve(t *testing.T) {
	clock := time.Unix(1000, 0)
	a, b := &fakePeaks{}, &fakePeaks{}
	tr := newTrimmer(a, b)
	tr.now = func() time.Time { return clock }
	step := func(peakA, nowA, nowB int, want bool) {
		t.Helper()
		a.peak, a.now, b.now = peakA, nowA, nowB
		_, _, got := tr.observe()
		if got != want {
			t.Fatalf("peak %d, open %d+%d (trimmer's peak %d): trim = %v, want %v", peakA, nowA, nowB, tr.peak, got, want)
		}
		clock = clock.Add(trimTick)
	}
	step(0, 100, 10, false)   // steady
	step(300, 100, 10, false) // 300+10 at the peak, 110 open: 200 closed, too few
	// A burst between two looks, gone by the second: 2,000 opened and
	// closed within one tick still counts.
	step(2000, 100, 10, true)
	step(0, 100, 10, false) // nothing new since
	// Another burst soon after: not within trimMinInterval...
	step(1000, 50, 10, false)
	// ...but its peak is kept until then.
	clock = clock.Add(trimMinInterval)
	step(0, 50, 10, true)
	// Half the peak still open: the memory is still in use.
	clock = clock.Add(trimMinInterval)
	step(1200, 700, 0, false)
	step(0, 700, 0, false)
	// Then they close slowly, over several looks, until half are gone.
	step(0, 650, 0, false)
	step(0, 600, 0, true)
}
