package proxy

// Tests of the idle-connection pool (pool.go): its bound, idle timeout,
// eviction, warming and use under concurrency.

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPoolBound(t *testing.T) {
	const n, maxIdle = 5, 2
	arrived := make(chan struct{}, n)
	release := make(chan struct{})
	addr, accepts := startCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "hello")
	}, nil)
	p, url := startProxy(t, Options{MaxIdleConnsPerBackend: maxIdle})
	b := addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	t.Cleanup(c.CloseIdleConnections)

	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if status, body := get(t, c, url); status != http.StatusOK || body != "hello" {
				t.Errorf("got %d %q, want %d %q", status, body, http.StatusOK, "hello")
			}
		})
	}
	for range n {
		recv(t, arrived, "requests at the backend")
	}
	close(release)
	wg.Wait()
	if got := accepts.Load(); got != n {
		t.Errorf("backend accepts: got %d, want %d", got, n)
	}
	if got := b.idleConns(); got != maxIdle {
		t.Errorf("idle conns: got %d, want %d", got, maxIdle)
	}
}

func TestPoolIdleTimeout(t *testing.T) {
	addr, accepts := startCountingBackend(t, hello, nil)
	const idle = time.Minute
	p, url := startProxy(t, Options{IdleConnTimeout: idle})
	b := addHealthy(p, "a", "r1", addr)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.pool.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	p.SetActive("r1")
	c := newClient(t)

	steps := []struct {
		wait        time.Duration
		wantAccepts int64
	}{
		{0, 1},
		{idle - time.Second, 1}, // still fresh: reused
		{idle, 2},               // expired: closed, a new one dialled
		{0, 2},
	}
	for i, s := range steps {
		advance(s.wait)
		if status, body := get(t, c, url); status != http.StatusOK || body != "hello" {
			t.Fatalf("step %d: got %d %q, want %d %q", i, status, body, http.StatusOK, "hello")
		}
		if got := accepts.Load(); got != s.wantAccepts {
			t.Errorf("step %d: backend accepts: got %d, want %d", i, got, s.wantAccepts)
		}
	}
	if got := b.idleConns(); got != 1 {
		t.Errorf("idle conns: got %d, want 1", got)
	}
}

// A put evicts connections idle for too long from the bottom of the stack,
// which take never reaches while the load stays low.
func TestPoolPutEvictsStale(t *testing.T) {
	addr, _ := startCountingBackend(t, hello, nil)
	p := New(Options{IdleConnTimeout: time.Minute})
	b := p.AddBackend(BackendSpec{ID: "a", Release: "r1", Addr: addr})
	t.Cleanup(func() { p.RemoveBackend("a") })
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.pool.now = func() time.Time { return now }
	ctx := context.Background()
	for range 3 {
		c, err := b.dial(ctx)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		b.put(c)
	}
	now = now.Add(2 * time.Minute)
	c, err := b.dial(ctx)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	b.put(c)
	if got := b.idleConns(); got != 1 {
		t.Errorf("idle conns: got %d, want 1", got)
	}
}
func TestPoolConcurrentRequests(t *testing.T) {
	addr, accepts := startCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Query().Get("n"))
	}, nil)
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	const workers, each = 50, 20
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	t.Cleanup(c.CloseIdleConnections)

	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := range each {
				want := strings.Repeat("x", g) + string(rune('a'+i))
				status, body := get(t, c, url+"/?n="+want)
				if status != http.StatusOK || body != want {
					t.Errorf("worker %d request %d: got %d %q, want %d %q", g, i, status, body, http.StatusOK, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := accepts.Load(); got > workers {
		t.Errorf("backend accepts: got %d, want at most %d", got, workers)
	}
	if st := p.Stats()["r1"]; st.Requests != workers*each || st.ConnErrors != 0 {
		t.Errorf("stats: got %d requests and %d conn errors, want %d and 0", st.Requests, st.ConnErrors, workers*each)
	}
}
func TestWarmOpensIdleConns(t *testing.T) {
	addr, accepts := startCountingBackend(t, hello, nil)
	p, url := startProxy(t, Options{MaxIdleConnsPerBackend: 4})
	b := addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")

	b.Warm(10) // bounded by MaxIdleConnsPerBackend
	b.warmWG.Wait()
	if got := b.idleConns(); got != 4 {
		t.Errorf("idle conns after warm-up: got %d, want 4", got)
	}
	if status, body := get(t, newClient(t), url); status != http.StatusOK || body != "hello" {
		t.Errorf("got %d %q, want %d %q", status, body, http.StatusOK, "hello")
	}
	if got := accepts.Load(); got != 4 {
		t.Errorf("backend accepts: got %d, want 4 (the request used a warm connection)", got)
	}

	p.RemoveBackend("a")
	if got := b.idleConns(); got != 0 {
		t.Errorf("idle conns after removal: got %d, want 0", got)
	}
	b.Warm(2)
	b.warmWG.Wait()
	if got := b.idleConns(); got != 0 {
		t.Errorf("idle conns after warming a removed backend: got %d, want 0", got)
	}
}

func TestWarmDeadBackendGivesUp(t *testing.T) {
	p := New(Options{})
	b := p.AddBackend(BackendSpec{ID: "a", Release: "r1", Addr: deadAddr(t)})
	b.Warm(3)
	b.warmWG.Wait()
	if got := b.idleConns(); got != 0 {
		t.Errorf("idle conns: got %d, want 0", got)
	}
}
