package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wait blocks until ch is closed or ioTimeout passes, and reports whether
// ch was closed. Handlers use it so that a failed test never leaves one
// blocked forever.
func wait(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(ioTimeout):
		return false
	}
}

// rawExchange sends req on a new connection, reads until the server closes
// it, and returns everything it sent. req must make the server close.
func rawExchange(t *testing.T, addr, req string) string {
	t.Helper()
	c := dial(t, addr)
	c.write(req)
	b, err := io.ReadAll(c.br)
	if err != nil {
		t.Fatalf("sent %q: reading until the server closes: %v (got %q)", req, err, b)
	}
	return string(b)
}

// parseRaw parses the response raw holds, for a request with method.
func parseRaw(t *testing.T, raw, method string) (*http.Response, string) {
	t.Helper()
	resp, body, err := readResponse(bufio.NewReader(strings.NewReader(raw)), method)
	if err != nil {
		t.Fatalf("parsing the answer %q: %v", raw, err)
	}
	return resp, body
}

func TestExpectContinue(t *testing.T) {
	t.Parallel()
	const head = "POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"

	t.Run("sent when the handler reads the body", func(t *testing.T) {
		t.Parallel()
		started, proceed := make(chan struct{}), make(chan struct{})
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			if !wait(proceed) {
				return
			}
			b, err := io.ReadAll(r.Body)
			out := fmt.Sprintf("got %q err=%v", b, err)
			w.Header().Set("Content-Length", strconv.Itoa(len(out)))
			_, _ = io.WriteString(w, out)
		}))
		c := dial(t, addr)
		c.write(head)
		recv(t, started, "the handler to start")
		c.expectSilence(100*time.Millisecond, "sent "+strconv.Quote(head)+", handler running but not reading the body")
		close(proceed)
		resp, _ := c.mustResponse("POST", head)
		if resp.StatusCode != http.StatusContinue || resp.Proto != "HTTP/1.1" {
			t.Fatalf("sent %q, handler reading the body: got %s %s, want HTTP/1.1 100 Continue", head, resp.Proto, resp.Status)
		}
		c.write("hello")
		resp, body := c.mustResponse("POST", "hello")
		if resp.StatusCode != http.StatusOK || body != `got "hello" err=<nil>` {
			t.Fatalf("final answer %s %q, want 200 with the body the handler read", resp.Status, body)
		}
		c.expectOpen("after a 100-continue exchange whose body was read")
	})

	t.Run("not sent when the handler answers without reading", func(t *testing.T) {
		t.Parallel()
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "6")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "denied")
		}))
		c := dial(t, addr)
		c.write(head)
		resp, body := c.mustResponse("POST", head)
		if resp.StatusCode != http.StatusForbidden || body != "denied" {
			t.Fatalf("sent %q, handler not reading: got %s %q, want 403 \"denied\" and no 100 Continue", head, resp.Status, body)
		}
		if !resp.Close {
			t.Errorf("the answer to an Expect: 100-continue request whose body was never asked for does not announce Connection: close")
		}
		c.expectClosed("after answering an Expect: 100-continue request without reading its body")
	})

	t.Run("body read concurrently with the answer being written", func(t *testing.T) {
		t.Parallel()
		// Full duplex: a goroutine reads the body (sending 100 Continue)
		// while the handler writes the answer. A sleep, not a channel,
		// lets the reader go first: any synchronization between the two
		// would hide a data race from the race detector.
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got := make(chan string, 1)
			go func() {
				b, err := io.ReadAll(r.Body)
				got <- fmt.Sprintf("%q %v", b, err)
			}()
			time.Sleep(50 * time.Millisecond)
			w.WriteHeader(http.StatusOK)
			_ = http.NewResponseController(w).Flush()
			select {
			case s := <-got:
				_, _ = io.WriteString(w, s)
			case <-time.After(ioTimeout):
			}
		}))
		c := dial(t, addr)
		c.write(head)
		resp, _ := c.mustResponse("POST", head)
		if resp.StatusCode != http.StatusContinue {
			t.Fatalf("sent %q, body read at once: got %s, want 100 Continue first", head, resp.Status)
		}
		c.write("hello")
		resp, body := c.mustResponse("POST", "hello")
		if resp.StatusCode != http.StatusOK || body != `"hello" <nil>` {
			t.Fatalf("final answer %s %q, want 200 with the body read concurrently", resp.Status, body)
		}
	})
}

func TestFullDuplex(t *testing.T) {
	t.Parallel()
	handlerErr := make(chan error, 1)
	addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			handlerErr <- fmt.Errorf("EnableFullDuplex: %w", err)
			return
		}
		w.WriteHeader(http.StatusOK)
		if err := rc.Flush(); err != nil {
			handlerErr <- err
			return
		}
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					handlerErr <- werr
					return
				}
				if ferr := rc.Flush(); ferr != nil {
					handlerErr <- ferr
					return
				}
			}
			if err == io.EOF {
				handlerErr <- nil
				return
			}
			if err != nil {
				handlerErr <- err
				return
			}
		}
	}))
	c := dial(t, addr)
	const head = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	c.write(head)
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "POST"})
	if err != nil {
		t.Fatalf("sent %q: the handler flushed its headers before reading, but reading them failed: %v", head, err)
	}
	for i := range 5 {
		piece := fmt.Sprintf("piece-%d;", i)
		// The next piece is sent only once this one came back: the
		// handler must answer while the request is still being sent.
		c.write(fmt.Sprintf("%x\r\n%s\r\n", len(piece), piece))
		buf := make([]byte, len(piece))
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != piece {
			t.Fatalf("sent chunk %q, read back %q, %v", piece, buf, err)
		}
	}
	c.write("0\r\n\r\n")
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("after the last chunk: read %q, %v; want the end of the body", rest, err)
	}
	if err := recv(t, handlerErr, "the handler to end"); err != nil {
		t.Fatalf("handler: %v", err)
	}
	c.expectOpen("after a full-duplex exchange")
}

func TestHijack(t *testing.T) {
	t.Parallel()
	type hijacked struct {
		conn       net.Conn
		rw         *bufio.ReadWriter
		err, again error
	}
	got := make(chan hijacked, 1)
	returned := make(chan struct{})
	states := newConnStates()
	s := &Server{ConnState: states.hook, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(returned)
		conn, rw, err := w.(http.Hijacker).Hijack()
		var again error
		if err == nil {
			_, _, again = w.(http.Hijacker).Hijack()
		}
		got <- hijacked{conn, rw, err, again}
	})}
	addr := startH1(t, s)
	c := dial(t, addr)
	const req = "GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n"
	const pipelined = "PIPELINED BYTES"
	c.write(req + pipelined)
	h := recv(t, got, "the handler to hijack")
	if h.err != nil {
		t.Fatalf("Hijack: %v", h.err)
	}
	defer h.conn.Close()
	if !errors.Is(h.again, http.ErrHijacked) {
		t.Errorf("a second Hijack returned %v, want http.ErrHijacked", h.again)
	}
	_ = h.conn.SetDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, len(pipelined))
	if _, err := io.ReadFull(h.rw, buf); err != nil || string(buf) != pipelined {
		t.Fatalf("bytes pipelined after the request, read from the hijacked reader: %q, %v; want %q", buf, err, pipelined)
	}
	recv(t, returned, "the handler to return")
	// Give the server's connection goroutine time to do whatever it does
	// after the handler returned (it must do nothing with the connection).
	time.Sleep(50 * time.Millisecond)

	c.write("ping")
	if _, err := io.ReadFull(h.rw, buf[:4]); err != nil || string(buf[:4]) != "ping" {
		t.Fatalf("after the handler returned, the hijacked connection read %q, %v; want \"ping\" (did the server read or close it?)", buf[:4], err)
	}
	if _, err := h.rw.WriteString("pong"); err != nil {
		t.Fatal(err)
	}
	if err := h.rw.Flush(); err != nil {
		t.Fatalf("writing on the hijacked connection after the handler returned: %v", err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c.br, b); err != nil || string(b) != "pong" {
		t.Fatalf("client read %q, %v; want \"pong\" as the first bytes (the server must write nothing itself)", b, err)
	}
	want := []http.ConnState{http.StateNew, http.StateActive, http.StateHijacked}
	if got := states.get(c.c.LocalAddr().String()); !slices.Equal(got, want) {
		t.Errorf("ConnState sequence %v, want %v", got, want)
	}
	// Shutdown does not wait for a hijacked connection.
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with only a hijacked connection: %v", err)
	}
}

type ctxKey string

// TakePeakConns counts the connections a server held at once, including
// ones that came and went between two calls, and starts again from the
// connections open at each call.
func TestTakePeakConns(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	addr := startH1(t, s)
	if peak, now := s.TakePeakConns(); peak != 0 || now != 0 {
		t.Fatalf("before any connection: TakePeakConns() = %d, %d, want 0, 0", peak, now)
	}
	var cs []*client
	for range 3 {
		c := dial(t, addr)
		c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.mustResponse("GET", "a GET")
		cs = append(cs, c)
	}
	cs[0].c.Close()
	cs[1].c.Close()
	// The server notices a close when it reads; wait until it has.
	deadline := time.Now().Add(ioTimeout)
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still holds %d connections, want 1", n)
		}
		time.Sleep(time.Millisecond)
	}
	if peak, now := s.TakePeakConns(); peak != 3 || now != 1 {
		t.Errorf("after 3 connections, 2 closed: TakePeakConns() = %d, %d, want 3, 1", peak, now)
	}
	if peak, now := s.TakePeakConns(); peak != 1 || now != 1 {
		t.Errorf("called again: TakePeakConns() = %d, %d, want 1, 1", peak, now)
	}
}
