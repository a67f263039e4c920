package proxy

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

// releaseMetrics returns the metrics of release name, failing the test
// when the proxy does not know it.
func releaseMetrics(t *testing.T, p *Proxy, name string) ReleaseMetrics {
	t.Helper()
	for _, r := range p.Metrics().Releases {
		if r.Release == name {
			return r
		}
	}
	t.Fatalf("release %s not in Metrics", name)
	panic("unreachable")
}

func TestMetricsCountStatusClassesAndDurations(t *testing.T) {
	p, url := startProxy(t, Options{})
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		case "/broken":
			w.WriteHeader(http.StatusInternalServerError)
		case "/slow":
			time.Sleep(30 * time.Millisecond)
		case "/moved":
			http.Redirect(w, r, "/", http.StatusFound)
		}
	})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, path := range []string{"/", "/", "/missing", "/broken", "/slow", "/moved"} {
		get(t, c, url+path)
	}
	m := releaseMetrics(t, p, "r1")
	if want := [6]uint64{0, 0, 3, 1, 1, 1}; m.Status != want {
		t.Errorf("status classes: got %v, want %v", m.Status, want)
	}
	var n uint64
	for _, b := range m.Duration {
		n += b
	}
	if n != 6 {
		t.Errorf("duration histogram counts %d requests, want 6", n)
	}
	// The slow one is above 25ms; the others usually below.
	var above uint64
	for i, b := range m.Duration {
		if i >= 3 { // bounds from 50ms on: counts above 25ms
			above += b
		}
	}
	if above < 1 {
		t.Errorf("no request counted above 25ms: %v", m.Duration)
	}
	if m.DurationSum < 30*time.Millisecond {
		t.Errorf("duration sum %v, want at least the slow request's 30ms", m.DurationSum)
	}
	if m.Weight != 100 {
		t.Errorf("weight: got %d, want 100", m.Weight)
	}
}

func TestMetricsCountRetriesAndConnectErrors(t *testing.T) {
	p, url := startProxy(t, Options{})
	addHealthy(p, "dead", "r1", deadAddr(t))
	addHealthy(p, "live", "r1", nameBackend(t, "live"))
	p.SetActive("r1")
	c := newClient(t)
	for range 4 {
		if status, body := get(t, c, url); status != http.StatusOK || body != "live" {
			t.Fatalf("got %d %q, want 200 live", status, body)
		}
	}
	m := releaseMetrics(t, p, "r1")
	if m.Retries != 1 || m.ConnectErrors != 1 || m.UpstreamErrors != 1 {
		t.Errorf("retries, connect errors, upstream errors: got %d, %d, %d, want 1, 1, 1 (the dead backend left rotation at once)",
			m.Retries, m.ConnectErrors, m.UpstreamErrors)
	}
	if m.Status[2] != 4 {
		t.Errorf("2xx: got %d, want 4", m.Status[2])
	}
}

func TestMetricsCountHeldRequests(t *testing.T) {
	p, url := startProxy(t, Options{})
	b := p.AddBackend(BackendSpec{ID: "a", Release: "r1", Addr: nameBackend(t, "a")})
	p.SetActive("r1")
	c := newClient(t)
	done := make(chan int, 1)
	sent := time.Now()
	go func() {
		s, _ := get(t, c, url)
		done <- s
	}()
	// Held until the backend is healthy.
	time.Sleep(50 * time.Millisecond)
	b.SetHealthy(true)
	if s := recv(t, done, "held request"); s != http.StatusOK {
		t.Fatalf("held request: got %d, want 200", s)
	}
	elapsed := time.Since(sent)
	get(t, c, url) // not held
	m := releaseMetrics(t, p, "r1")
	if m.Held != 1 {
		t.Errorf("held: got %d, want 1", m.Held)
	}
	// The request may reach the proxy some time after it was sent.
	if m.HeldTime <= 0 || m.HeldTime > elapsed {
		t.Errorf("held time: got %v, want more than 0 and at most the %v the request took", m.HeldTime, elapsed)
	}
}

func TestMetricsCountUnserved(t *testing.T) {
	p, url := startProxy(t, Options{HoldTimeout: 20 * time.Millisecond})
	if s, _ := get(t, newClient(t), url); s != http.StatusServiceUnavailable {
		t.Fatalf("got %d, want 503", s)
	}
	if got := p.Metrics().Unserved; got != 1 {
		t.Errorf("unserved: got %d, want 1", got)
	}
}

// recorder is an AccessLogger keeping what it is given.
type recorder struct {
	mu      sync.Mutex
	entries []traffic.Access
}

func (r *recorder) Log(a traffic.Access) {
	r.mu.Lock()
	r.entries = append(r.entries, a)
	r.mu.Unlock()
}

func (r *recorder) all() []traffic.Access {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]traffic.Access(nil), r.entries...)
}

// wait returns the entries once there are n: an entry is logged when the
// handler returns, which may be after the client has its answer.
func (r *recorder) wait(t *testing.T, n int) []traffic.Access {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		es := r.all()
		if len(es) >= n || time.Now().After(deadline) {
			if len(es) != n {
				t.Fatalf("got %d entries, want %d", len(es), n)
			}
			return es
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAccessEntryOfRetriedRequest(t *testing.T) {
	rec := &recorder{}
	p, url := startProxy(t, Options{App: "shop", AccessLog: rec})
	addHealthy(p, "dead", "r1", deadAddr(t))
	addHealthy(p, "live", "r1", nameBackend(t, "live"))
	p.SetActive("r1")
	c := newClient(t)
	for range 2 {
		get(t, c, url+"/x?q=1")
	}
	es := rec.wait(t, 2)
	retried := es[0]
	if es[1].Retries > 0 {
		retried = es[1]
	}
	if retried.Retries != 1 || retried.Release != "r1" || retried.Instance != "live" || retried.Status != 200 ||
		retried.Bytes != 4 || retried.URI != "/x?q=1" || retried.Method != "GET" || retried.App != "shop" {
		t.Errorf("retried request's entry: %+v", retried)
	}
	if retried.RequestID == "" || retried.ClientAddr == "" || retried.Upstream <= 0 || retried.Duration < retried.Upstream {
		t.Errorf("retried request's id, client, times: %+v", retried)
	}
}

func TestAccessEntryOfHeldRequest(t *testing.T) {
	rec := &recorder{}
	p, url := startProxy(t, Options{AccessLog: rec, HoldTimeout: waitLimit})
	b := p.AddBackend(BackendSpec{ID: "a", Release: "r1", Addr: nameBackend(t, "a")})
	p.SetActive("r1")
	done := make(chan int, 1)
	sent := time.Now()
	go func() {
		s, _ := get(t, newClient(t), url)
		done <- s
	}()
	time.Sleep(50 * time.Millisecond)
	b.SetHealthy(true)
	recv(t, done, "held request")
	elapsed := time.Since(sent)
	es := rec.wait(t, 1)
	e := es[0]
	if e.Held <= 0 || e.Held > elapsed || e.Duration < e.Held || e.Release != "r1" || e.Instance != "a" || e.Status != 200 {
		t.Errorf("held request's entry: %+v (the request took %v)", e, elapsed)
	}
}

func TestAccessEntryOfUnservedRequest(t *testing.T) {
	rec := &recorder{}
	_, url := startProxy(t, Options{AccessLog: rec, HoldTimeout: 30 * time.Millisecond})
	get(t, newClient(t), url)
	es := rec.wait(t, 1)
	e := es[0]
	if e.Status != 503 || e.Release != "" || e.Held < 30*time.Millisecond || e.Bytes == 0 {
		t.Errorf("503 after holding: %+v", e)
	}
}

// BenchmarkCount is what the metrics add to a request: the counting of
// its answer (no clock read: record's latency is reused).
func BenchmarkCount(b *testing.B) {
	r := newRelease("r1", DefaultCookie, time.Now)
	b.ReportAllocs()
	for b.Loop() {
		r.m.observe(http.StatusOK, 3*time.Millisecond, 0)
	}
}
