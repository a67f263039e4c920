package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// backend is an httptest server whose answer to /health the test sets.
type backend struct {
	*httptest.Server
	code atomic.Int32
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.code.Store(http.StatusOK)
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		code := int(b.code.Load())
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/broken")
		}
		w.WriteHeader(code)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // answers only once the client gave up
	})
	b.Server = httptest.NewServer(mux)
	t.Cleanup(b.Close)
	return b
}

func (b *backend) addr() string { return strings.TrimPrefix(b.URL, "http://") }

func TestProbe(t *testing.T) {
	b := newBackend(t)
	for _, tc := range []struct {
		name    string
		code    int
		path    string
		wantErr string // "" for none
	}{
		{"ok", http.StatusOK, "/health", ""},
		{"no content", http.StatusNoContent, "/health", ""},
		{"redirect fails, not followed", http.StatusFound, "/health", "status 302 Found → /broken: a health path must answer 2xx itself; is app.health.path misspelt?"},
		{"not modified", http.StatusNotModified, "/health", "status 304 Not Modified"},
		{"server error", http.StatusServiceUnavailable, "/health", "status 503 Service Unavailable"},
		{"not found", http.StatusOK, "/nope", "status 404 Not Found"},
		{"timeout", http.StatusOK, "/slow", "health check: GET http://" + b.addr() + "/slow: no answer in time: context deadline exceeded"},
		{"bad path", http.StatusOK, "/a b", `health check: path "/a b": must start with /`},
	} {
		b.code.Store(int32(tc.code))
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := Probe(ctx, b.addr(), tc.path)
		cancel()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: got %v, want no error", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: got %v, want an error saying %q", tc.name, err, tc.wantErr)
		}
	}

	b.code.Store(http.StatusMovedPermanently)
	var se *StatusError
	if err := Probe(context.Background(), b.addr(), "/health"); !errors.As(err, &se) || se.Code != http.StatusMovedPermanently || se.Location != "/broken" {
		t.Errorf("got %v, want a *StatusError with code 301 and Location /broken", err)
	}

	b.code.Store(http.StatusBadGateway)
	if err := Probe(context.Background(), b.addr(), "/health"); !errors.As(err, &se) || se.Code != http.StatusBadGateway {
		t.Errorf("got %v, want a *StatusError with code 502", err)
	}
}

func TestProbeConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	err = Probe(context.Background(), addr, "/")
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("got %v, want an error saying connection refused", err)
	}
}

// transitions records onChange calls.
type transitions struct {
	mu   sync.Mutex
	list []bool
	errs []error
}

func (tr *transitions) add(healthy bool, err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.list = append(tr.list, healthy)
	tr.errs = append(tr.errs, err)
}

func (tr *transitions) get() []bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]bool(nil), tr.list...)
}

func TestCheckerHysteresis(t *testing.T) {
	b := newBackend(t)
	var tr transitions
	c := NewChecker(Config{Path: "/health", HealthyAfter: 2, UnhealthyAfter: 3}, b.addr(), tr.add)
	ctx := context.Background()

	if c.Healthy() || c.LastError() != nil {
		t.Fatalf("got healthy %v, last error %v before any round; want unhealthy, nil", c.Healthy(), c.LastError())
	}
	steps := []struct {
		code        int
		wantHealthy bool
	}{
		{200, false}, // 1 pass of 2
		{500, false}, // the streak is broken
		{200, false},
		{200, true}, // 2 passes in a row
		{500, true},
		{500, true},
		{200, true}, // the failure streak is broken
		{500, true},
		{500, true},
		{503, false}, // 3 failures in a row
		{200, false},
		{200, true},
	}
	for n, st := range steps {
		b.code.Store(int32(st.code))
		c.Round(ctx)
		if got := c.Healthy(); got != st.wantHealthy {
			t.Fatalf("round %d (status %d): got healthy %v, want %v", n+1, st.code, got, st.wantHealthy)
		}
		if (c.LastError() == nil) != (st.code == 200) {
			t.Errorf("round %d (status %d): got last error %v", n+1, st.code, c.LastError())
		}
		if n == 2 {
			select {
			case <-c.Ready():
				t.Fatalf("round %d: Ready closed before the instance was healthy", n+1)
			default:
			}
		}
	}
	select {
	case <-c.Ready():
	default:
		t.Error("Ready not closed after the instance became healthy")
	}
	if got, want := tr.get(), []bool{true, false, true}; !equal(got, want) {
		t.Errorf("got transitions %v, want %v", got, want)
	}
	var se *StatusError
	if tr.errs[0] != nil || !errors.As(tr.errs[1], &se) || se.Code != 503 {
		t.Errorf("got transition errors %v, want nil then the 503", tr.errs)
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCounts: every round's result is counted in Config.Counts, which
// outlives the checker (a crash replaces it); a cancelled round is not.
func TestCounts(t *testing.T) {
	b := newBackend(t)
	var n Counts
	for _, codes := range [][]int{{200, 500, 200}, {503, 200}} {
		c := NewChecker(Config{Path: "/health", Counts: &n}, b.addr(), nil)
		for _, code := range codes {
			b.code.Store(int32(code))
			c.Round(context.Background())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	NewChecker(Config{Path: "/health", Counts: &n}, b.addr(), nil).Round(ctx)
	if p, f := n.Passed.Load(), n.Failed.Load(); p != 3 || f != 2 {
		t.Errorf("got %d passed, %d failed; want 3, 2", p, f)
	}
}

func TestRoundCancelledIsNotCounted(t *testing.T) {
	b := newBackend(t)
	c := NewChecker(Config{Path: "/slow", HealthyAfter: 1, UnhealthyAfter: 1}, b.addr(), nil)
	c.healthy = true // as if it had passed before
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.Round(ctx)
	if !c.Healthy() || c.LastError() != nil {
		t.Errorf("got healthy %v, last error %v after a cancelled round; want healthy, nil", c.Healthy(), c.LastError())
	}
}

func TestRun(t *testing.T) {
	b := newBackend(t)
	var tr transitions
	c := NewChecker(Config{Path: "/health", Interval: 5 * time.Millisecond, HealthyAfter: 3}, b.addr(), tr.add)
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr = c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready within 10s of checks every 5ms")
	}
	if !c.Healthy() {
		t.Error("got unhealthy after Ready, want healthy")
	}
	cancel()
	select {
	case <-done:
		if runErr != nil {
			t.Errorf("Run returned %v, want nil", runErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if got := tr.get(); !equal(got, []bool{true}) {
		t.Errorf("got transitions %v, want [true]", got)
	}
}

func TestConfigDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	want := Config{Path: "/", Interval: time.Second, Timeout: 2 * time.Second, HealthyAfter: 2, UnhealthyAfter: 3}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	keep := Config{Path: "/up", Interval: 3 * time.Second, Timeout: time.Second, HealthyAfter: 1, UnhealthyAfter: 1}
	if d := cmp.Diff(keep, keep.withDefaults()); d != "" {
		t.Errorf("set fields changed (-want +got):\n%s", d)
	}
}

// TestStartHealthy: a checker told the instance is serving starts healthy
// and ready, and leaves rotation only after UnhealthyAfter failures.
func TestStartHealthy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	var changes []bool
	c := NewChecker(Config{StartHealthy: true, UnhealthyAfter: 2}, strings.TrimPrefix(srv.URL, "http://"),
		func(ok bool, err error) { changes = append(changes, ok) })
	if !c.Healthy() {
		t.Fatal("Healthy() = false at start; want true")
	}
	select {
	case <-c.Ready():
	default:
		t.Fatal("Ready() not closed at start")
	}
	c.Round(context.Background())
	if !c.Healthy() || len(changes) != 0 {
		t.Fatalf("after 1 failure: healthy %v, changes %v; want still healthy, no change", c.Healthy(), changes)
	}
	c.Round(context.Background())
	if c.Healthy() || len(changes) != 1 || changes[0] {
		t.Fatalf("after 2 failures: healthy %v, changes %v; want unhealthy, one change to false", c.Healthy(), changes)
	}
}

func TestOnFirstPass(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	var calls atomic.Int32
	var healthyAtCall atomic.Bool
	var c *Checker
	c = NewChecker(Config{Path: "/health", HealthyAfter: 3, OnFirstPass: func() {
		calls.Add(1)
		healthyAtCall.Store(c.Healthy())
	}}, b.addr(), nil)
	for i, st := range []struct {
		code      int
		wantCalls int32
	}{
		{503, 0}, // no answer worth a connection yet
		{200, 1}, // it answers: 2 checks to go
		{200, 1},
		{500, 1}, // the streak breaks: no second call
		{200, 1},
		{200, 1},
		{200, 1}, // healthy now
		{200, 1},
	} {
		b.code.Store(int32(st.code))
		c.Round(ctx)
		if got := calls.Load(); got != st.wantCalls {
			t.Fatalf("round %d (%d): OnFirstPass called %d times, want %d", i+1, st.code, got, st.wantCalls)
		}
	}
	if healthyAtCall.Load() {
		t.Error("OnFirstPass ran after the instance was healthy; want it before")
	}

	// One check is enough: the call still comes, with the pass that makes
	// the instance healthy.
	calls.Store(0)
	c = NewChecker(Config{Path: "/health", HealthyAfter: 1, OnFirstPass: func() { calls.Add(1) }}, b.addr(), nil)
	c.Round(ctx)
	c.Round(ctx)
	if got := calls.Load(); got != 1 || !c.Healthy() {
		t.Errorf("HealthyAfter 1: %d calls, healthy %v; want 1 call, healthy", got, c.Healthy())
	}

	// An instance known to serve is healthy from the start: no call.
	calls.Store(0)
	c = NewChecker(Config{Path: "/health", StartHealthy: true, OnFirstPass: func() { calls.Add(1) }}, b.addr(), nil)
	c.Round(ctx)
	if got := calls.Load(); got != 0 {
		t.Errorf("StartHealthy: OnFirstPass called %d times, want 0", got)
	}
}

// rawServer accepts one connection, sends the request line it got to
// lines, and answers with answer (nothing when empty: it then waits for
// the client to give up).
func rawServer(t *testing.T, answer string) (addr string, lines <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		ch <- string(buf[:n])
		if answer == "" {
			c.Read(buf) //nolint:errcheck // returns when the client closes
			return
		}
		c.Write([]byte(answer)) //nolint:errcheck // the client reads what it gets
	}()
	return ln.Addr().String(), ch
}

func TestProbeRaw(t *testing.T) {
	addr, got := rawServer(t, "HTTP/1.1 204 No Content\r\n\r\n")
	if err := Probe(context.Background(), addr, "/up?deep=1"); err != nil {
		t.Errorf("204: got %v, want no error", err)
	}
	want := "GET /up?deep=1 HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: cutover-health\r\nConnection: close\r\n\r\n"
	if req := <-got; req != want {
		t.Errorf("request sent:\n%q\nwant\n%q", req, want)
	}

	addr, _ = rawServer(t, "SSH-2.0-OpenSSH_9.6\r\n")
	if err := Probe(context.Background(), addr, "/"); err == nil || !strings.Contains(err.Error(), "malformed HTTP") {
		t.Errorf("not HTTP: got %v, want an error saying the answer is malformed HTTP", err)
	}

	// Cancelled without a deadline: the check ends at once all the same.
	addr, _ = rawServer(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { done <- Probe(ctx, addr, "/") }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no answer in time: context canceled") {
			t.Errorf("cancelled: got %v, want an error saying no answer in time", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Probe did not return within 5s of its context's cancellation")
	}
}

// BenchmarkProbe is one check of a local instance, connection included.
func BenchmarkProbe(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	b.ReportAllocs()
	for b.Loop() {
		if err := Probe(context.Background(), addr, "/"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOnHung: RestartAfter failures in a row of an instance that was
// healthy call OnHung once, after it left rotation at UnhealthyAfter; an
// instance that never became healthy (booting) is never reported, however
// long it fails.
func TestOnHung(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	type call struct {
		fails int
		err   error
	}
	var calls []call
	onHung := func(fails int, err error) { calls = append(calls, call{fails, err}) }

	booting := NewChecker(Config{Path: "/health", HealthyAfter: 1, UnhealthyAfter: 2, RestartAfter: 3, OnHung: onHung}, b.addr(), nil)
	b.code.Store(http.StatusServiceUnavailable)
	for range 10 {
		booting.Round(ctx)
	}
	if len(calls) != 0 {
		t.Fatalf("OnHung called %v for an instance that never was healthy; want no call", calls)
	}

	c := NewChecker(Config{Path: "/health", HealthyAfter: 1, UnhealthyAfter: 2, RestartAfter: 4, OnHung: onHung}, b.addr(), nil)
	for i, st := range []struct {
		code        int
		wantHealthy bool
		wantCalls   int
	}{
		{200, true, 0},
		{503, true, 0},
		{503, false, 0}, // out of rotation at 2
		{200, true, 0},  // slow, not hung: it came back; the count restarts
		{503, true, 0},
		{503, false, 0},
		{503, false, 0},
		{503, false, 1}, // 4 in a row
		{503, false, 1}, // once
		{503, false, 1},
	} {
		b.code.Store(int32(st.code))
		c.Round(ctx)
		if c.Healthy() != st.wantHealthy || len(calls) != st.wantCalls {
			t.Fatalf("round %d (status %d): got healthy %v, %d OnHung calls; want %v, %d", i+1, st.code, c.Healthy(), len(calls), st.wantHealthy, st.wantCalls)
		}
	}
	var se *StatusError
	if calls[0].fails != 4 || !errors.As(calls[0].err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Errorf("got OnHung(%d, %v), want OnHung(4, the 503)", calls[0].fails, calls[0].err)
	}

	// StartHealthy (an adopted instance) counts as healthy once.
	calls = nil
	adopted := NewChecker(Config{Path: "/health", StartHealthy: true, UnhealthyAfter: 1, RestartAfter: 2, OnHung: onHung}, b.addr(), nil)
	adopted.Round(ctx)
	adopted.Round(ctx)
	if len(calls) != 1 {
		t.Errorf("adopted instance: got %d OnHung calls after 2 failures, want 1", len(calls))
	}
	// RestartAfter 0: never.
	calls = nil
	never := NewChecker(Config{Path: "/health", StartHealthy: true, UnhealthyAfter: 1, OnHung: onHung}, b.addr(), nil)
	for range 10 {
		never.Round(ctx)
	}
	if len(calls) != 0 {
		t.Errorf("RestartAfter 0: got %d OnHung calls, want none", len(calls))
	}
}
