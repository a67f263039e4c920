package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// waitLimit bounds waits on channels in tests so a broken proxy fails the
// test instead of hanging it. It is a guard, never an expected duration.
const waitLimit = 10 * time.Second

// startProxy serves a new Proxy on 127.0.0.1 and returns it with its base
// URL. The server is closed when the test ends.
func startProxy(t testing.TB, opts Options) (*Proxy, string) {
	t.Helper()
	return startHandler(t, New(opts), nil)
}

// startHandler serves p on 127.0.0.1, wrapped by wrap when not nil.
func startHandler(t testing.TB, p *Proxy, wrap func(http.Handler) http.Handler) (*Proxy, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := p.NewServer(5*time.Second, 30*time.Second)
	if wrap != nil {
		srv.Handler = wrap(p)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close proxy server: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return p, "http://" + ln.Addr().String()
}

// startBackend starts an httptest backend on 127.0.0.1, closed when the
// test ends, and returns it with its "host:port".
func startBackend(t testing.TB, h http.HandlerFunc) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, strings.TrimPrefix(srv.URL, "http://")
}

// nameBackend starts a backend answering with its name.
func nameBackend(t testing.TB, name string) string {
	t.Helper()
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	})
	return addr
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}
	return addr
}

// newClient returns an HTTP client with its own keep-alive pool, closed
// when the test ends.
func newClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// get sends a GET and returns the status and body.
func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	return do(t, c, http.MethodGet, url, nil)
}

// do sends a request and returns the status and body.
func do(t testing.TB, c *http.Client, method, url string, body io.Reader) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s %s: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

// addHealthy adds a backend and puts it in rotation.
func addHealthy(p *Proxy, id, release, addr string) *Backend {
	b := p.AddBackend(BackendSpec{ID: id, Release: release, Addr: addr})
	b.SetHealthy(true)
	return b
}

// recv waits for a value on ch, failing the test after waitLimit.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
