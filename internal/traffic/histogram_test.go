package traffic

import (
	"testing"
	"time"
)

// near reports whether got is within a bucket's precision (a sixteenth)
// of want.
func near(got, want time.Duration) bool {
	diff := got - want
	if diff < 0 {
		diff = -diff
	}
	return diff <= want/16
}

func TestBuckets(t *testing.T) {
	last := -1
	for d := time.Duration(0); d < 200*time.Second; d = d*21/20 + time.Microsecond {
		i := BucketOf(d)
		if i < last {
			t.Fatalf("bucket of %v: got %d, below the bucket %d of a smaller latency", d, i, last)
		}
		last = i
		lo, hi := BucketBounds(i)
		if i == HistogramBuckets-1 {
			if d < lo {
				t.Fatalf("%v in the overflow bucket starting at %v", d, lo)
			}
			continue
		}
		if d < lo || d >= hi {
			t.Fatalf("bucket %d of %v: got [%v, %v)", i, d, lo, hi)
		}
		if i > 0 && hi-lo > lo/8 {
			t.Fatalf("bucket %d [%v, %v) wider than an eighth of its start", i, lo, hi)
		}
	}
	if last != HistogramBuckets-1 {
		t.Errorf("200s: got bucket %d, want the overflow bucket %d", last, HistogramBuckets-1)
	}
	if lo, _ := BucketBounds(HistogramBuckets - 1); lo < time.Minute {
		t.Errorf("overflow bucket starts at %v, want at least 60s", lo)
	}
	if lo, hi := BucketBounds(1); lo != 100*time.Microsecond || hi != 112500*time.Nanosecond {
		t.Errorf("first log-linear bucket: got [%v, %v), want [100µs, 112.5µs)", lo, hi)
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	if got := h.Quantile(0.99); got != 0 {
		t.Errorf("empty: got %v, want 0", got)
	}
	for range 99 {
		h.Add(3 * time.Millisecond)
	}
	h.Add(2 * time.Second)
	if got := h.Count(); got != 100 {
		t.Errorf("count: got %d, want 100", got)
	}
	if got := h.Quantile(0.99); !near(got, 3*time.Millisecond) {
		t.Errorf("p99 of 99×3ms + 1×2s: got %v, want about 3ms", got)
	}
	if got := h.Quantile(1); !near(got, 2*time.Second) {
		t.Errorf("max: got %v, want about 2s", got)
	}
}
