package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTimeouts(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "body: %v", err)
			return
		}
		_, _ = w.Write(b)
	})

	// expectClosedAfter checks that the server closes the connection, not
	// before the timeout, and that what it sent first is what net/http's
	// server sends for the same bytes (a 400 for an unfinished request
	// line: bufio.Reader.ReadLine hands a partial line over without the
	// timeout error, so the line is parsed and refused; nothing for
	// unfinished headers).
	expectClosedAfter := func(t *testing.T, c *client, stdAddr string, sent string, timeout time.Duration) {
		t.Helper()
		t0 := time.Now()
		got, err := io.ReadAll(c.br)
		d := time.Since(t0)
		if err != nil && !isClosedErr(err) {
			t.Fatalf("sent %q: the connection should close after %v; read %q then %v", sent, timeout, got, err)
		}
		if d < timeout/2 {
			t.Errorf("sent %q: closed after %v, before the timeout of %v", sent, d, timeout)
		}
		std := dial(t, stdAddr)
		std.write(sent)
		want, _ := io.ReadAll(std.br)
		if string(got) != string(want) {
			t.Errorf("sent %q, then nothing: h1 sent %q before closing, net/http %q", sent, got, want)
		}
	}
	std := startStdServer(t, &http.Server{Handler: echo, ReadHeaderTimeout: timeout})
	// answeredThenClosed sends req, reads its answer, sends more (if any)
	// and expects the connection closed, not before half the timeout.
	answeredThenClosed := func(t *testing.T, c *client, req, more, what string) {
		t.Helper()
		c.write(req)
		c.mustResponse("GET", req)
		if more != "" {
			c.write(more)
		}
		t0 := time.Now()
		c.expectClosed(what)
		if d := time.Since(t0); d < timeout/2 {
			t.Errorf("%s: closed after %v, before the timeout of %v", what, d, timeout)
		}
	}

	t.Run("ReadHeaderTimeout closes a connection stuck in its request line", func(t *testing.T) {
		t.Parallel()
		addr := startH1(t, &Server{Handler: echo, ReadHeaderTimeout: timeout})
		c := dial(t, addr)
		c.write("GET / HT")
		expectClosedAfter(t, c, std, "GET / HT", timeout)
	})

	t.Run("ReadHeaderTimeout closes a connection stuck in its headers", func(t *testing.T) {
		t.Parallel()
		addr := startH1(t, &Server{Handler: echo, ReadHeaderTimeout: timeout})
		answeredThenClosed(t, dial(t, addr), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n",
			"unfinished headers of a second request")
	})

	t.Run("ReadHeaderTimeout closes a connection stuck in its first headers", func(t *testing.T) {
		t.Parallel()
		addr := startH1(t, &Server{Handler: echo, ReadHeaderTimeout: timeout})
		c := dial(t, addr)
		c.write("GET / HTTP/1.1\r\nHost: x\r\n")
		expectClosedAfter(t, c, std, "GET / HTTP/1.1\r\nHost: x\r\n", timeout)
	})

	t.Run("IdleTimeout closes an idle keep-alive connection", func(t *testing.T) {
		t.Parallel()
		addr := startH1(t, &Server{Handler: echo, IdleTimeout: timeout})
		answeredThenClosed(t, dial(t, addr), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "", "a keep-alive connection left idle")
	})

	for _, c := range []struct{ name, head, part1, part2 string }{
		{"Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n", "hello", "world"},
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nhello\r\n", "5\r\nworld\r\n0\r\n\r\n"},
	} {
		t.Run("a slow "+c.name+" body upload is not cut by ReadHeaderTimeout", func(t *testing.T) {
			t.Parallel()
			addr := startH1(t, &Server{Handler: echo, ReadHeaderTimeout: timeout, IdleTimeout: timeout})
			cl := dial(t, addr)
			for i := range 2 {
				cl.write(c.head + c.part1)
				// A slow client: the rest of the body comes after the
				// header timeout has passed.
				time.Sleep(2 * timeout)
				cl.write(c.part2)
				resp, body := cl.mustResponse("POST", "a body sent slowly")
				if resp.StatusCode != http.StatusOK || body != "helloworld" {
					t.Fatalf("request %d: body sent in two parts %v apart: got %s %q, want 200 \"helloworld\"", i, 2*timeout, resp.Status, body)
				}
			}
		})
	}

	t.Run("a handler slower than ReadHeaderTimeout keeps its connection", func(t *testing.T) {
		t.Parallel()
		const timeout = 100 * time.Millisecond
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			time.Sleep(2 * timeout)
			_, _ = io.WriteString(w, r.URL.Path)
		})
		addr := startH1(t, &Server{Handler: slow, ReadHeaderTimeout: timeout})
		cl := dial(t, addr)
		for _, req := range []string{
			"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n",
			"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab",
			// Pipelined: the second request waits in the buffer while the
			// first handler outlives the header deadline.
			"GET /3 HTTP/1.1\r\nHost: x\r\n\r\nGET /4 HTTP/1.1\r\nHost: x\r\n\r\n",
		} {
			cl.write(req)
			for range strings.Count(req, "HTTP/1.1\r\n") {
				resp, body, err := cl.response("GET")
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("sent %q to a handler taking %v with ReadHeaderTimeout %v: %v", req, 2*timeout, timeout, err)
				}
				t.Logf("answer %q", body)
			}
		}
	})

	t.Run("IdleTimeout defaults to ReadHeaderTimeout", func(t *testing.T) {
		t.Parallel()
		addr := startH1(t, &Server{Handler: echo, ReadHeaderTimeout: timeout})
		answeredThenClosed(t, dial(t, addr), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "",
			"a keep-alive connection left idle, IdleTimeout 0 (ReadHeaderTimeout bounds it)")
	})

	t.Run("IdleTimeout does not bound the headers when ReadHeaderTimeout is 0", func(t *testing.T) {
		t.Parallel()
		h1 := startH1(t, &Server{Handler: echo, IdleTimeout: timeout})
		std := startStdServer(t, &http.Server{Handler: echo, IdleTimeout: timeout})
		for _, srv := range []struct{ name, addr string }{{"net/http", std}, {"h1", h1}} {
			c := dial(t, srv.addr)
			const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
			c.write(req)
			c.mustResponse("GET", req)
			// The next request starts within IdleTimeout, and its headers
			// end after it.
			time.Sleep(timeout / 2)
			c.write("GET /second HTTP/1.1\r\n")
			time.Sleep(timeout)
			c.write("Host: x\r\n\r\n")
			if resp, _, err := c.response("GET"); err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("%s: second request, its headers ending %v after the idle wait began (IdleTimeout %v, no ReadHeaderTimeout): %v",
					srv.name, 3*timeout/2, timeout, err)
			}
		}
	})

	t.Run("IdleTimeout bounds each wait, not the connection's life", func(t *testing.T) {
		t.Parallel()
		addr := startH1(t, &Server{Handler: echo, ReadHeaderTimeout: timeout, IdleTimeout: timeout})
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		for i := range 5 {
			c.write(req)
			if _, _, err := c.response("GET"); err != nil {
				t.Fatalf("request %d, sent %v after the previous answer (IdleTimeout %v): %v", i, timeout/2, timeout, err)
			}
			time.Sleep(timeout / 2)
		}
	})
}

func TestUnreadBody(t *testing.T) {
	t.Parallel()
	addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "7")
		_, _ = io.WriteString(w, "ignored")
	}))

	for _, c := range []struct{ name, req string }{
		{"small Content-Length body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"},
		{"small chunked body", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	} {
		t.Run(c.name+" keeps the connection", func(t *testing.T) {
			t.Parallel()
			cl := dial(t, addr)
			cl.write(c.req)
			resp, body := cl.mustResponse("POST", c.req)
			if resp.StatusCode != http.StatusOK || body != "ignored" || resp.Close {
				t.Fatalf("got %s %q close=%v, want 200 \"ignored\" keeping the connection", resp.Status, body, resp.Close)
			}
			cl.expectOpen("after a small body the handler ignored")
		})
	}

	t.Run("body over 256 KiB closes the connection after the answer", func(t *testing.T) {
		t.Parallel()
		cl := dial(t, addr)
		const size = 300 << 10
		head := fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
		wrote := make(chan error, 1)
		go func() {
			// The server stops reading: the write may fail, and must not
			// block the test.
			_, err := io.WriteString(cl.c, head+strings.Repeat("b", size))
			wrote <- err
		}()
		resp, body := cl.mustResponse("POST", head)
		if resp.StatusCode != http.StatusOK || body != "ignored" {
			t.Fatalf("got %s %q, want the handler's complete answer 200 \"ignored\"", resp.Status, body)
		}
		cl.expectClosed("after a body of 300 KiB the handler ignored")
		_ = cl.c.Close()
		recv(t, wrote, "the client's write to end")
	})
}

func TestServerLifecycle(t *testing.T) {
	t.Parallel()

	serve := func(t *testing.T, s *Server) (string, <-chan error) {
		t.Helper()
		if s.ErrorLog == nil {
			s.ErrorLog = log.New(io.Discard, "", 0)
		}
		ln := listen(t)
		done := make(chan error, 1)
		go func() { done <- s.Serve(ln) }()
		t.Cleanup(func() { _ = s.Close() })
		return ln.Addr().String(), done
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })

	t.Run("Serve returns ErrServerClosed after Shutdown and Close", func(t *testing.T) {
		t.Parallel()
		for _, stop := range []struct {
			name string
			f    func(*Server) error
		}{
			{"Shutdown", func(s *Server) error { return s.Shutdown(context.Background()) }},
			{"Close", (*Server).Close},
		} {
			s := &Server{Handler: ok}
			addr, done := serve(t, s)
			c := dial(t, addr)
			const req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
			c.write(req)
			c.mustResponse("GET", req)
			if err := stop.f(s); err != nil {
				t.Errorf("%s: %v", stop.name, err)
			}
			if err := recv(t, done, "Serve to return"); !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v after %s, want http.ErrServerClosed", err, stop.name)
			}
			ln := listen(t)
			if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve called after %s returned %v, want http.ErrServerClosed", stop.name, err)
			}
			_ = ln.Close()
			if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				t.Errorf("the listener still accepts connections after %s", stop.name)
			}
		}
	})

	t.Run("Shutdown waits for a request in flight, answered with Connection: close", func(t *testing.T) {
		t.Parallel()
		started, release := make(chan struct{}), make(chan struct{})
		s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			wait(release)
			_, _ = io.WriteString(w, "late")
		})}
		addr, served := serve(t, s)
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		recv(t, started, "the handler to start")
		shut := make(chan error, 1)
		go func() { shut <- s.Shutdown(context.Background()) }()
		// Serve returns once Shutdown closed the listener, after it
		// marked the server as shutting down.
		if err := recv(t, served, "Serve to return"); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned %v while a request was in flight", err)
		default:
		}
		close(release)
		resp, body := c.mustResponse("GET", req)
		if body != "late" || !resp.Close {
			t.Errorf("answer finished during Shutdown: %q close=%v, want \"late\" with Connection: close", body, resp.Close)
		}
		if err := recv(t, shut, "Shutdown to return"); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		c.expectClosed("after the last answer during Shutdown")
	})

	t.Run("Shutdown closes idle connections", func(t *testing.T) {
		t.Parallel()
		s := &Server{Handler: ok}
		addr, _ := serve(t, s)
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		c.mustResponse("GET", req)
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		t0 := time.Now()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown with an idle connection: %v", err)
		}
		if d := time.Since(t0); d > time.Second {
			t.Errorf("Shutdown with one idle connection took %v", d)
		}
		c.expectClosed("an idle connection after Shutdown")
	})

	t.Run("Shutdown closes a new connection that sent nothing, at once", func(t *testing.T) {
		// A connection accepted but silent (a client's spare dial, a
		// preconnect) is idle: a shutdown that waited for it held a
		// stopping daemon, and the next one's start, for seconds.
		t.Parallel()
		states := newConnStates()
		s := &Server{Handler: ok, ConnState: states.hook}
		addr, _ := serve(t, s)
		c := dial(t, addr)
		states.waitFor(t, c.c.LocalAddr().String(), http.StateNew)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		t0 := time.Now()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown with a connection that sent nothing: %v after %v", err, time.Since(t0))
		}
		if d := time.Since(t0); d > 1500*time.Millisecond {
			t.Errorf("Shutdown with a connection that sent nothing took %v, want well under a second", d)
		}
		c.expectClosed("a connection that sent nothing, after Shutdown")
	})

	t.Run("Shutdown serves a request sent just after the connect", func(t *testing.T) {
		// A request in transit on a fresh connection must not meet a
		// close: clients do not retry a request on a fresh connection.
		t.Parallel()
		states := newConnStates()
		s := &Server{Handler: ok, ConnState: states.hook}
		addr, _ := serve(t, s)
		c := dial(t, addr)
		states.waitFor(t, c.c.LocalAddr().String(), http.StateNew)
		shut := make(chan error, 1)
		go func() { shut <- s.Shutdown(context.Background()) }()
		time.Sleep(50 * time.Millisecond)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		resp, body := c.mustResponse("GET", req)
		if body != "ok" || !resp.Close {
			t.Errorf("request on a new connection during Shutdown: %q close=%v, want \"ok\" with Connection: close", body, resp.Close)
		}
		if err := recv(t, shut, "Shutdown to return"); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})

	t.Run("Shutdown returns the context's error when a handler outlives it", func(t *testing.T) {
		t.Parallel()
		started, release := make(chan struct{}), make(chan struct{})
		defer close(release)
		s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			wait(release)
		})}
		addr, _ := serve(t, s)
		c := dial(t, addr)
		c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		recv(t, started, "the handler to start")
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown with a handler blocked past the context's deadline returned %v, want context.DeadlineExceeded", err)
		}
	})

	t.Run("ConnState New, Active, Idle, Closed", func(t *testing.T) {
		t.Parallel()
		states := newConnStates()
		addr, _ := serve(t, &Server{Handler: ok, ConnState: states.hook})
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		for range 2 {
			c.write(req)
			c.mustResponse("GET", req)
		}
		_ = c.c.Close()
		got := states.waitFor(t, c.c.LocalAddr().String(), http.StateClosed)
		want := []http.ConnState{http.StateNew, http.StateActive, http.StateIdle, http.StateActive, http.StateIdle, http.StateClosed}
		if !slices.Equal(got, want) {
			t.Errorf("ConnState sequence for two requests then a close: %v, want %v", got, want)
		}

		c = dial(t, addr)
		c.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		c.mustResponse("GET", req)
		got = states.waitFor(t, c.c.LocalAddr().String(), http.StateClosed)
		want = []http.ConnState{http.StateNew, http.StateActive, http.StateClosed}
		if !slices.Equal(got, want) {
			t.Errorf("ConnState sequence for a Connection: close request: %v, want %v", got, want)
		}
	})
}
