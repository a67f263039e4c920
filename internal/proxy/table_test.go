package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRoundRobinAmongHealthy(t *testing.T) {
	p, url := startProxy(t, Options{})
	for _, name := range []string{"a", "b", "c"} {
		addHealthy(p, name, "r1", nameBackend(t, name))
	}
	p.SetActive("r1")
	c := newClient(t)

	got := map[string]int{}
	for range 9 {
		status, body := get(t, c, url)
		if status != http.StatusOK {
			t.Fatalf("status: got %d, want %d", status, http.StatusOK)
		}
		got[body]++
	}
	want := map[string]int{"a": 3, "b": 3, "c": 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests per backend (-want +got):\n%s", diff)
	}
	if got, want := p.Stats()["r1"].Requests, uint64(9); got != want {
		t.Errorf("r1 requests: got %d, want %d", got, want)
	}
}

func TestUnhealthyExcluded(t *testing.T) {
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", nameBackend(t, "a"))
	b := addHealthy(p, "b", "r1", nameBackend(t, "b"))
	p.AddBackend(BackendSpec{ID: "never", Release: "r1", Addr: nameBackend(t, "never")})
	b.SetHealthy(false)
	p.SetActive("r1")
	c := newClient(t)

	for range 6 {
		if _, body := get(t, c, url); body != "a" {
			t.Errorf("backend: got %q, want %q", body, "a")
		}
	}
	b.SetHealthy(true)
	seen := map[string]bool{}
	for range 4 {
		_, body := get(t, c, url)
		seen[body] = true
	}
	if !seen["b"] || seen["never"] {
		t.Errorf("backends after b healthy again: got %v, want a and b only", seen)
	}
}

func TestSetActiveSwitches(t *testing.T) {
	p, url := startProxy(t, Options{})
	addHealthy(p, "old", "r1", nameBackend(t, "old"))
	addHealthy(p, "new", "r2", nameBackend(t, "new"))
	c := newClient(t)

	p.SetActive("r1")
	if _, body := get(t, c, url); body != "old" {
		t.Errorf("before switch: got %q, want %q", body, "old")
	}
	p.SetActive("r2")
	if got := p.Active(); got != "r2" {
		t.Errorf("Active: got %q, want %q", got, "r2")
	}
	for range 3 {
		if _, body := get(t, c, url); body != "new" {
			t.Errorf("after switch: got %q, want %q", body, "new")
		}
	}
}

func TestRemoveBackend(t *testing.T) {
	p, url := startProxy(t, Options{HoldTimeout: 20 * time.Millisecond})
	addHealthy(p, "a", "r1", nameBackend(t, "a"))
	addHealthy(p, "b", "r1", nameBackend(t, "b"))
	p.SetActive("r1")
	c := newClient(t)

	p.RemoveBackend("a")
	for range 4 {
		if _, body := get(t, c, url); body != "b" {
			t.Errorf("backend: got %q, want %q", body, "b")
		}
	}
	p.RemoveBackend("b")
	if status, _ := get(t, c, url); status != http.StatusServiceUnavailable {
		t.Errorf("status with no backend: got %d, want %d", status, http.StatusServiceUnavailable)
	}
}

// heldProxy starts a proxy whose handler reports each request entering it.
func heldProxy(t *testing.T, opts Options) (*Proxy, string, <-chan struct{}, <-chan struct{}) {
	entered := make(chan struct{}, 1)
	left := make(chan struct{}, 1)
	p, url := startHandler(t, New(opts), func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			h.ServeHTTP(w, r)
			left <- struct{}{}
		})
	})
	return p, url, entered, left
}

func TestHoldUntilHealthy(t *testing.T) {
	p, url, entered, _ := heldProxy(t, Options{HoldTimeout: time.Minute})
	b := p.AddBackend(BackendSpec{ID: "a", Release: "r1", Addr: nameBackend(t, "a")})
	p.SetActive("r1")
	c := newClient(t)

	type result struct {
		status int
		body   string
	}
	results := make(chan result, 1)
	go func() {
		status, body := get(t, c, url)
		results <- result{status, body}
	}()
	recv(t, entered, "request to reach the proxy")
	select {
	case r := <-results:
		t.Fatalf("answered before a backend was healthy: %d %q", r.status, r.body)
	default:
	}
	b.SetHealthy(true)
	r := recv(t, results, "held request")
	if r.status != http.StatusOK || r.body != "a" {
		t.Errorf("held request: got %d %q, want %d %q", r.status, r.body, http.StatusOK, "a")
	}
}

func TestHoldTimeout(t *testing.T) {
	tests := []struct {
		name  string
		setup func(p *Proxy)
	}{
		{"no active release", func(p *Proxy) {}},
		{"no healthy backend", func(p *Proxy) {
			p.AddBackend(BackendSpec{ID: "a", Release: "r1", Addr: deadAddr(t)})
			p.SetActive("r1")
		}},
		{"active release has none", func(p *Proxy) {
			addHealthy(p, "a", "r1", deadAddr(t))
			p.SetActive("r2")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, url := startProxy(t, Options{App: "shop", HoldTimeout: 30 * time.Millisecond})
			tt.setup(p)
			status, body := get(t, newClient(t), url)
			if status != http.StatusServiceUnavailable {
				t.Errorf("status: got %d, want %d", status, http.StatusServiceUnavailable)
			}
			if want := "cutover: no healthy instance of shop after 30ms\n"; body != want {
				t.Errorf("body: got %q, want %q", body, want)
			}
		})
	}
}

func TestHoldReleasedWhenClientGoes(t *testing.T) {
	_, url, entered, left := heldProxy(t, Options{HoldTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	go func() {
		resp, err := newClient(t).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errs <- err
	}()
	recv(t, entered, "request to reach the proxy")
	cancel()
	recv(t, left, "held request to be released")
	if err := recv(t, errs, "client"); err == nil {
		t.Errorf("client: got a response, want the request canceled")
	}
}

func TestPickAvoidsExcluded(t *testing.T) {
	a, b := &Backend{spec: BackendSpec{ID: "a"}}, &Backend{spec: BackendSpec{ID: "b"}}
	tests := []struct {
		pool    []*Backend
		exclude *Backend
		want    string
	}{
		{[]*Backend{a}, a, "a"},
		{[]*Backend{a, b}, a, "b"},
		{[]*Backend{a, b}, b, "a"},
		{nil, nil, ""},
	}
	for _, tt := range tests {
		for n := range uint64(4) {
			got := ""
			if pb := (&pool{backends: tt.pool}).pick(n, tt.exclude); pb != nil {
				got = pb.spec.ID
			}
			if got != tt.want {
				t.Errorf("pick(%d) from %d avoiding %v: got %q, want %q", n, len(tt.pool), tt.exclude != nil, got, tt.want)
			}
		}
	}
}

func BenchmarkPick(b *testing.B) {
	p := New(Options{})
	for i := range 8 {
		addHealthy(p, fmt.Sprint("i", i), "r1", "127.0.0.1:1")
	}
	p.SetActive("r1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var s selection
		for pb.Next() {
			s.t = p.table.Load()
			if tg, ok := p.targetIn(s.t, &s); !ok || tg.b == nil {
				b.Fatal("no backend picked")
			}
		}
	})
}

// Switching releases back and forth under concurrent load must not fail a
// single request.
func TestSwitchUnderLoadNoErrors(t *testing.T) {
	p, url := startProxy(t, Options{})
	addHealthy(p, "a1", "r1", nameBackend(t, "r1"))
	addHealthy(p, "a2", "r1", nameBackend(t, "r1"))
	addHealthy(p, "b1", "r2", nameBackend(t, "r2"))
	p.SetActive("r1")
	c := newClient(t)

	const workers, each = 8, 100
	errs := make(chan string, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				req, err := http.NewRequest(http.MethodGet, url, nil)
				if err != nil {
					errs <- err.Error()
					return
				}
				resp, err := c.Do(req)
				if err != nil {
					errs <- err.Error()
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs <- fmt.Sprintf("%d %q %v", resp.StatusCode, body, err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	switches := 0
	for running := true; running; switches++ {
		select {
		case <-done:
			running = false
		default:
			p.SetActive([]string{"r1", "r2"}[switches%2])
			runtime.Gosched()
		}
	}
	close(errs)
	for e := range errs {
		t.Errorf("request failed during switches: %s", e)
	}
}

// TestForgetRetiredRelease checks that a release whose backends are gone
// is forgotten once nothing was measured for WindowSpan, and not before:
// a daemon deploying for months keeps only the releases that serve.
func TestForgetRetiredRelease(t *testing.T) {
	clk := newFakeClock()
	p, url := startProxy(t, Options{Now: clk.Now})
	addr := startCountingBackendAddr(t)
	addHealthy(p, "a1", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)
	if status, _ := get(t, c, url); status != http.StatusOK {
		t.Fatalf("GET through r1: %d", status)
	}

	// r2 takes over, r1's backend goes.
	addHealthy(p, "b1", "r2", addr)
	p.SetActive("r2")
	p.RemoveBackend("a1")
	waitIdle(t, p, "r1")
	if _, ok := p.Stats()["r1"]; !ok {
		t.Fatal("r1 forgotten at once; its counters should stay while its window is recent")
	}
	clk.Advance(WindowSpan / 2)
	addHealthy(p, "b2", "r2", addr)
	if _, ok := p.Stats()["r1"]; !ok {
		t.Fatalf("r1 forgotten %v after its last request, before WindowSpan", WindowSpan/2)
	}

	clk.Advance(WindowSpan/2 + 2*time.Second)
	stats := p.Stats()
	if _, ok := stats["r1"]; ok {
		t.Errorf("r1 still known %v after its last request with no backend: %v", WindowSpan, stats)
	}
	if _, ok := stats["r2"]; !ok {
		t.Errorf("r2, which serves, was forgotten: %v", stats)
	}
	if status, _ := get(t, c, url); status != http.StatusOK {
		t.Fatalf("GET through r2 after forgetting r1: %d", status)
	}

	// A release coming back (a rollback) starts afresh.
	addHealthy(p, "a2", "r1", addr)
	p.SetActive("r1")
	if status, _ := get(t, c, url); status != http.StatusOK {
		t.Fatalf("GET through r1 again: %d", status)
	}
	if got := p.Stats()["r1"].Requests; got != 1 {
		t.Errorf("r1 requests after coming back: got %d, want 1", got)
	}
}

// TestWeightedReleaseNotForgotten checks that a release with weight but
// no backend yet is kept, however long it waits.
func TestWeightedReleaseNotForgotten(t *testing.T) {
	clk := newFakeClock()
	p := New(Options{Now: clk.Now})
	p.SetWeights(map[string]int{"r1": 100})
	p.AddBackend(BackendSpec{ID: "x", Release: "r1", Addr: "127.0.0.1:9"})
	p.RemoveBackend("x")
	clk.Advance(2 * WindowSpan)
	if _, ok := p.Stats()["r1"]; !ok {
		t.Fatal("a release with weight was forgotten")
	}
}

func startCountingBackendAddr(t *testing.T) string {
	t.Helper()
	addr, _ := startCountingBackend(t, hello, nil)
	return addr
}

// TestRemovedBackendsNotKept checks that a release whose instances are
// replaced again and again (crashes, restarts) does not keep every
// backend it ever had.
func TestRemovedBackendsNotKept(t *testing.T) {
	p := New(Options{})
	p.SetActive("r1")
	for i := range 100 {
		p.AddBackend(BackendSpec{ID: "x", Release: "r1", Addr: "127.0.0.1:9"})
		if i%2 == 0 {
			p.RemoveBackend("x")
		}
	}
	r := p.lookupRelease("r1")
	r.mu.Lock()
	n := len(r.backends)
	r.mu.Unlock()
	if n > 2 {
		t.Fatalf("release keeps %d backends after 100 replacements, want at most 2", n)
	}
}
