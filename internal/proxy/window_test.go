package proxy

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 22, 9, 35, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// clockBackend starts a backend that advances clk by the duration in its
// "took" query parameter (so the proxy measures exactly that latency) and
// answers with the status in "status" (default 200).
func clockBackend(t *testing.T, clk *fakeClock) string {
	t.Helper()
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("took")); err == nil {
			clk.Advance(d)
		}
		status := http.StatusOK
		if s, err := strconv.Atoi(r.URL.Query().Get("status")); err == nil {
			status = s
		}
		w.WriteHeader(status)
	})
	return addr
}

// near reports whether got is within a bucket's precision (a sixteenth)
// of want.
func near(got, want time.Duration) bool {
	diff := got - want
	if diff < 0 {
		diff = -diff
	}
	return diff <= want/16
}

func TestWindowStats(t *testing.T) {
	clk := newFakeClock()
	p, url := startProxy(t, Options{Now: clk.Now})
	addHealthy(p, "a1", "r1", clockBackend(t, clk))
	p.SetActive("r1")
	c := newClient(t)

	// 98 fast requests, 2 slow ones failing with 500: p50 is the fast
	// latency, p99 the slow one.
	for i := range 100 {
		q := "?took=10ms"
		if i%50 == 49 {
			q = "?took=800ms&status=500"
		}
		if resp, _ := send(t, c, url+q, nil); resp.StatusCode >= 500 && i%50 != 49 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	// The clock moved 98·10ms + 2·800ms = 2.58s.
	st := p.Window("r1", time.Minute)
	if st.Requests != 100 || st.Errors != 2 {
		t.Errorf("requests, errors: got %d, %d, want 100, 2", st.Requests, st.Errors)
	}
	if st.ErrorRate != 0.02 {
		t.Errorf("error rate: got %v, want 0.02", st.ErrorRate)
	}
	if !near(st.P50, 10*time.Millisecond) {
		t.Errorf("p50: got %v, want about 10ms", st.P50)
	}
	if !near(st.P99, 800*time.Millisecond) {
		t.Errorf("p99: got %v, want about 800ms", st.P99)
	}
	// The histogram holds every request for the judge's rank test.
	if n := st.Latency.Count(); n != 100 {
		t.Errorf("latency histogram: got %d latencies, want 100", n)
	}
	if n := st.Latency[traffic.BucketOf(10*time.Millisecond)]; n != 98 {
		t.Errorf("latency histogram: got %d in the 10ms bucket, want 98", n)
	}

	// Ten seconds later, the last 5 seconds hold nothing; the last minute
	// all of it.
	clk.Advance(10 * time.Second)
	if st := p.Window("r1", 5*time.Second); st.Requests != 0 || st.P99 != 0 {
		t.Errorf("last 5s: got %+v, want nothing", st)
	}
	if st := p.Window("r1", time.Minute); st.Requests != 100 {
		t.Errorf("last minute: got %d requests, want 100", st.Requests)
	}
	send(t, c, url+"?took=2ms", nil)
	if st := p.Window("r1", 5*time.Second); st.Requests != 1 || !near(st.P50, 2*time.Millisecond) {
		t.Errorf("last 5s after one more request: got %d requests, p50 %v, want 1 of about 2ms", st.Requests, st.P50)
	}

	// Past the span everything expires, and reused buckets start afresh.
	clk.Advance(WindowSpan)
	if st := p.Window("r1", time.Hour); st.Requests != 0 {
		t.Errorf("after %v: got %d requests, want 0", WindowSpan, st.Requests)
	}
	send(t, c, url+"?took=1ms", nil)
	if st := p.Window("r1", WindowSpan); st.Requests != 1 || st.Errors != 0 {
		t.Errorf("after reuse: got %d requests, %d errors, want 1, 0", st.Requests, st.Errors)
	}
	if got := p.Stats()["r1"].Requests; got != 102 {
		t.Errorf("Stats requests: got %d, want 102 (since start, unaffected)", got)
	}
	if st := p.Window("nope", time.Minute); st.Requests != 0 || st.Latency.Count() != 0 || st.LatencyBlocks != nil {
		t.Errorf("unknown release: got %+v, want zero", st)
	}
}

// TestWindowBlocks: the window's latencies come split by second too, the
// judge's unit of shared noise, in at most traffic.MaxBlocks blocks.
func TestWindowBlocks(t *testing.T) {
	clk := newFakeClock()
	p, url := startProxy(t, Options{Now: clk.Now})
	addHealthy(p, "a1", "r1", clockBackend(t, clk))
	p.SetActive("r1")
	c := newClient(t)

	// Two requests in one second, three seconds later one more.
	send(t, c, url+"?took=1ms", nil)
	send(t, c, url+"?took=1ms", nil)
	clk.Advance(3 * time.Second)
	send(t, c, url+"?took=20ms", nil)

	st := p.Window("r1", 10*time.Second)
	if len(st.LatencyBlocks) != 10 {
		t.Fatalf("blocks of a 10s window: got %d, want 10", len(st.LatencyBlocks))
	}
	for i, b := range st.LatencyBlocks {
		want := uint64(0)
		switch i {
		case 9: // the current second
			want = 1
		case 6: // three seconds earlier
			want = 2
		}
		if got := b.Count(); got != want {
			t.Errorf("block %d: got %d latencies, want %d", i, got, want)
		}
	}
	if got := st.LatencyBlocks[9][traffic.BucketOf(20*time.Millisecond)]; got != 1 {
		t.Errorf("last block: got %d in the 20ms bucket, want 1", got)
	}

	// A 5-minute window: 60 blocks of 5 seconds, every request in one.
	st = p.Window("r1", WindowSpan)
	if len(st.LatencyBlocks) != traffic.MaxBlocks {
		t.Fatalf("blocks of a %v window: got %d, want %d", WindowSpan, len(st.LatencyBlocks), traffic.MaxBlocks)
	}
	if got := st.LatencyBlocks[traffic.MaxBlocks-1].Count(); got != 3 {
		t.Errorf("last 5-second block: got %d latencies, want 3", got)
	}
}

func TestWindowCountsProxyErrors(t *testing.T) {
	clk := newFakeClock()
	p, url := startProxy(t, Options{Now: clk.Now})
	addHealthy(p, "reset", "r1", resetBackend(t))
	addHealthy(p, "live", "r1", nameBackend(t, "live"))
	p.SetActive("r1")
	c := newClient(t)

	// GETs are retried on the live backend: no error seen, but the failed
	// attempts (reset after the request was sent) count as connection
	// errors.
	for range 4 {
		send(t, c, url, nil)
	}
	// POSTs are not retried: every other one is a 502.
	for range 4 {
		do(t, c, http.MethodPost, url, nil)
	}
	st := p.Window("r1", time.Second)
	if st.Requests != 8 || st.Errors != 2 || st.ConnErrors != 4 {
		t.Errorf("requests, errors, conn errors: got %d, %d, %d, want 8, 2, 4", st.Requests, st.Errors, st.ConnErrors)
	}
}

// BenchmarkWindowStats is what the deploy's judge pays every 100ms per
// release: the sums and blocks of a 30s window.
func BenchmarkWindowStats(b *testing.B) {
	w := newWindow()
	now := time.Date(2026, 11, 22, 9, 35, 0, 0, time.UTC)
	for s := range 30 {
		at := now.Add(time.Duration(s-29) * time.Second)
		for i := range 200 {
			w.add(at, 200, time.Duration(1+i%50)*time.Millisecond)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		w.stats(now, 30*time.Second)
	}
}
