package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startCountingBackend starts an httptest backend that counts the
// connections it accepts; configure, when not nil, adjusts its server
// before it starts.
func startCountingBackend(t testing.TB, h http.HandlerFunc, configure func(*http.Server)) (string, *atomic.Int64) {
	t.Helper()
	accepts := new(atomic.Int64)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepts.Add(1)
		}
	}
	if configure != nil {
		configure(srv.Config)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), accepts
}

// waitIdle waits until nothing of release is in flight on p.
func waitIdle(t testing.TB, p *Proxy, release string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if res := p.Drain(ctx, release, 0); res.Cut != 0 {
		t.Fatalf("drain: got %d cut, want 0", res.Cut)
	}
}

func hello(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }

func TestPoolReusesConnection(t *testing.T) {
	addr, accepts := startCountingBackend(t, hello, nil)
	p, url := startProxy(t, Options{})
	b := addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)

	for i := range 20 {
		if status, body := get(t, c, url); status != http.StatusOK || body != "hello" {
			t.Fatalf("request %d: got %d %q, want %d %q", i, status, body, http.StatusOK, "hello")
		}
	}
	if got := accepts.Load(); got != 1 {
		t.Errorf("backend accepts: got %d, want 1", got)
	}
	if got := b.idleConns(); got != 1 {
		t.Errorf("idle conns: got %d, want 1", got)
	}
}

// A backend whose keep-alive timeout is shorter than the proxy's closes
// pooled connections under it; requests that meet such a connection are
// sent again on a fresh one and never fail.
func TestPoolBackendClosesIdleConns(t *testing.T) {
	const backendIdle = 20 * time.Millisecond
	addr, accepts := startCountingBackend(t, hello, func(s *http.Server) { s.IdleTimeout = backendIdle })
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)

	for i := range 200 {
		if i%4 == 3 {
			// Wait around the backend's timeout, on either side of it, so
			// requests meet connections being closed or just closed.
			time.Sleep(backendIdle - 5*time.Millisecond + time.Duration(i%10)*time.Millisecond)
		}
		if status, body := get(t, c, url); status != http.StatusOK || body != "hello" {
			t.Fatalf("request %d: got %d %q, want %d %q", i, status, body, http.StatusOK, "hello")
		}
	}
	if st := p.Stats()["r1"]; st.ConnErrors != 0 || st.Status5xx != 0 {
		t.Errorf("stats: got %d conn errors and %d 5xx, want none", st.ConnErrors, st.Status5xx)
	}
	if got := accepts.Load(); got < 2 {
		t.Errorf("backend accepts: got %d, want several (its idle timeout closed connections)", got)
	}
}

// startOneShotBackend serves one keep-alive response per connection and
// then closes it, without saying so: the proxy can only find out when it
// reuses the connection.
func startOneShotBackend(t testing.TB) (string, *atomic.Int64) {
	return startOneAnswerBackend(t, false)
}

// startHalfClosingBackend is startOneShotBackend with a lingering close:
// after its answer it shuts down its sending side and goes on reading
// (as Apache does for a while), so no reset tells the proxy the
// connection is dead.
func startHalfClosingBackend(t testing.TB) (string, *atomic.Int64) {
	return startOneAnswerBackend(t, true)
}

// startOneAnswerBackend answers one request per connection, then closes
// it, or only its sending side when linger is set (reading what comes
// until the test ends). It returns its address and a count of the
// connections it accepted.
func startOneAnswerBackend(t testing.TB, linger bool) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	accepts := new(atomic.Int64)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			wg.Go(func() {
				defer conn.Close()
				if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
					return
				}
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
				if !linger {
					return
				}
				conn.(*net.TCPConn).CloseWrite()
				go func() {
					<-done
					conn.Close()
				}()
				io.Copy(io.Discard, conn)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		close(done)
		wg.Wait()
	})
	return ln.Addr().String(), accepts
}

func TestPoolRetriesClosedIdleConnOnFreshDial(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) (string, *atomic.Int64)
	}{
		{"closed", startOneShotBackend},
		{"half-closed", startHalfClosingBackend},
	} {
		t.Run(tc.name, func(t *testing.T) { testPoolRetriesClosedIdleConn(t, tc.start) })
	}
}

func testPoolRetriesClosedIdleConn(t *testing.T, start func(testing.TB) (string, *atomic.Int64)) {
	addr, accepts := start(t)
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)

	const n = 10
	for i := range n {
		if i > 0 {
			// Let the backend's close reach the proxy while the
			// connection is idle.
			time.Sleep(10 * time.Millisecond)
		}
		begin := time.Now()
		if status, body := get(t, c, url); status != http.StatusOK || body != "hello" {
			t.Fatalf("request %d: got %d %q, want %d %q", i, status, body, http.StatusOK, "hello")
		}
		if d := time.Since(begin); d > 2*time.Second {
			t.Fatalf("request %d took %v: the dead connection was not noticed", i, d)
		}
	}
	if st := p.Stats()["r1"]; st.ConnErrors != 0 || st.Status5xx != 0 {
		t.Errorf("stats: got %d conn errors and %d 5xx, want none", st.ConnErrors, st.Status5xx)
	}
	if got := accepts.Load(); got != n {
		t.Errorf("backend accepts: got %d, want %d", got, n)
	}
}

func TestPoolConnectionCloseNotReused(t *testing.T) {
	addr, accepts := startCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "hello")
	}, nil)
	p, url := startProxy(t, Options{})
	b := addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)

	const n = 5
	for i := range n {
		if status, body := get(t, c, url); status != http.StatusOK || body != "hello" {
			t.Fatalf("request %d: got %d %q, want %d %q", i, status, body, http.StatusOK, "hello")
		}
	}
	if got := accepts.Load(); got != n {
		t.Errorf("backend accepts: got %d, want %d", got, n)
	}
	if got := b.idleConns(); got != 0 {
		t.Errorf("idle conns: got %d, want 0", got)
	}
}

// A client that leaves in the middle of a download leaves the upstream
// connection with an unread body: it must be closed, not pooled.
func TestPoolClientGoneMidBodyClosesConn(t *testing.T) {
	addr, accepts := startCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, "hello")
			return
		}
		chunk := make([]byte, 64<<10)
		for range 256 { // 16 MiB, far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}, nil)
	p, url := startProxy(t, Options{})
	b := addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/big", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET /big: %v", err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
		t.Fatalf("read start of body: %v", err)
	}
	// Closing an unfinished body closes the client's connection.
	resp.Body.Close()
	waitIdle(t, p, "r1")
	if got := b.idleConns(); got != 0 {
		t.Errorf("idle conns after the client left: got %d, want 0", got)
	}
	if status, body := get(t, c, url+"/small"); status != http.StatusOK || body != "hello" {
		t.Fatalf("next request: got %d %q, want %d %q", status, body, http.StatusOK, "hello")
	}
	if got := accepts.Load(); got != 2 {
		t.Errorf("backend accepts: got %d, want 2 (a new connection after the cut one)", got)
	}
	if st := p.Stats()["r1"]; st.ConnErrors != 0 {
		t.Errorf("conn errors: got %d, want 0 (the client left)", st.ConnErrors)
	}
}

func TestPoolHeaderTimeoutGives504AndDropsConn(t *testing.T) {
	unblock := make(chan struct{})
	addr, accepts := startCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-unblock:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "hello")
	}, nil)
	t.Cleanup(func() { close(unblock) })
	p, url := startProxy(t, Options{ResponseHeaderTimeout: 50 * time.Millisecond})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)

	if status, _ := get(t, c, url+"/slow"); status != http.StatusGatewayTimeout {
		t.Errorf("slow: got %d, want %d", status, http.StatusGatewayTimeout)
	}
	if status, body := get(t, c, url); status != http.StatusOK || body != "hello" {
		t.Errorf("next: got %d %q, want %d %q", status, body, http.StatusOK, "hello")
	}
	if got := accepts.Load(); got != 2 {
		t.Errorf("backend accepts: got %d, want 2 (the timed-out connection is not reused)", got)
	}
}

// TestPoolHeaderDeadlineOnReusedConn checks the header deadline of a
// connection reused after sitting idle longer than the timeout: the
// deadline its last exchange set has passed, and must not cut the next
// answer short; a slow answer on it still gets 504 within the timeout.
func TestPoolHeaderDeadlineOnReusedConn(t *testing.T) {
	const rht = 200 * time.Millisecond
	unblock := make(chan struct{})
	addr, accepts := startCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			select {
			case <-unblock:
			case <-r.Context().Done():
			}
		case "/late":
			time.Sleep(rht / 2)
		}
		io.WriteString(w, "hello")
	}, nil)
	t.Cleanup(func() { close(unblock) })
	p, url := startProxy(t, Options{ResponseHeaderTimeout: rht})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)

	if status, _ := get(t, c, url); status != http.StatusOK {
		t.Fatalf("first: got %d, want %d", status, http.StatusOK)
	}
	time.Sleep(rht + rht/2)
	// Half the timeout, on a connection whose last deadline passed while
	// it was idle.
	if status, body := get(t, c, url+"/late"); status != http.StatusOK || body != "hello" {
		t.Errorf("late: got %d %q, want %d %q", status, body, http.StatusOK, "hello")
	}
	start := time.Now()
	if status, _ := get(t, c, url+"/slow"); status != http.StatusGatewayTimeout {
		t.Errorf("slow: got %d, want %d", status, http.StatusGatewayTimeout)
	}
	if took := time.Since(start); took < rht-rht/16 {
		t.Errorf("slow: 504 after %v, want at least %v", took, rht-rht/16)
	}
	if got := accepts.Load(); got != 1 {
		t.Errorf("backend accepts: got %d, want 1 (one connection until the 504)", got)
	}
}

func TestNoUserAgentAdded(t *testing.T) {
	uas := make(chan []string, 2)
	addr, _ := startCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		uas <- r.Header["User-Agent"]
	}, nil)
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)

	for _, ua := range []string{"", "curl/8.0"} {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		// An empty value keeps the Go client from sending its own.
		req.Header.Set("User-Agent", ua)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		resp.Body.Close()
		got := recv(t, uas, "backend request")
		switch {
		case ua == "" && got != nil:
			t.Errorf("User-Agent at the backend: got %q, want none", got)
		case ua != "" && (len(got) != 1 || got[0] != ua):
			t.Errorf("User-Agent at the backend: got %q, want %q", got, ua)
		}
	}
}

// A backend may answer before it has read the upload (a 413, say): the
// answer reaches the client while the upload goes on, the upstream
// connection is dropped, and the client connection keeps working.
func TestPoolEarlyAnswerDuringUpload(t *testing.T) {
	addr, _ := startCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			// Without full duplex the server would read the body before
			// answering.
			http.NewResponseController(w).EnableFullDuplex()
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			io.WriteString(w, "too big")
			return
		}
		io.WriteString(w, "hello")
	}, nil)
	p, url := startProxy(t, Options{})
	b := addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)

	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(io.ErrClosedPipe) })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	resps := make(chan *http.Response, 1)
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			t.Errorf("POST: %v", err)
		}
		resps <- resp
	}()
	if _, err := io.WriteString(pw, "part one"); err != nil {
		t.Fatalf("write upload: %v", err)
	}
	resp := recv(t, resps, "response to the upload")
	if resp == nil {
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || string(body) != "too big" || err != nil {
		t.Errorf("upload: got %d %q (%v), want %d %q", resp.StatusCode, body, err, http.StatusRequestEntityTooLarge, "too big")
	}
	// The rest of the upload may go nowhere; the writer must still end.
	io.WriteString(pw, "part two")
	pw.Close()
	waitIdle(t, p, "r1")
	for i := range 3 {
		if status, body := get(t, c, url); status != http.StatusOK || body != "hello" {
			t.Errorf("request %d after the upload: got %d %q, want %d %q", i, status, body, http.StatusOK, "hello")
		}
	}
	if got := b.idleConns(); got != 1 {
		t.Errorf("idle conns: got %d, want 1", got)
	}
}
