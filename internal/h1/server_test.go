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

func TestResponseWriter(t *testing.T) {
	t.Parallel()

	t.Run("Content-Length set by the handler is used", func(t *testing.T) {
		t.Parallel()
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hel")
			_, _ = w.Write([]byte("lo"))
		}))
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		resp, body := c.mustResponse("GET", req)
		if resp.ContentLength != 5 || len(resp.TransferEncoding) != 0 || body != "hello" {
			t.Fatalf("got Content-Length %d, Transfer-Encoding %v, body %q; want Content-Length 5, no chunking, \"hello\"",
				resp.ContentLength, resp.TransferEncoding, body)
		}
		c.expectOpen("after a complete Content-Length body")
	})

	t.Run("writing past Content-Length fails with ErrContentLength", func(t *testing.T) {
		t.Parallel()
		errs := make(chan []error, 1)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			_, e1 := w.Write([]byte("ab"))
			n2, e2 := w.Write([]byte("cd"))
			n3, e3 := io.WriteString(w, "cd")
			_, e4 := w.Write([]byte("c"))
			_, e5 := io.WriteString(w, "x")
			errs <- []error{e1, e2, e3, e4, e5, fmt.Errorf("n2=%d n3=%d", n2, n3)}
		}))
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		resp, body := c.mustResponse("GET", req)
		if resp.ContentLength != 3 || body != "abc" {
			t.Fatalf("got Content-Length %d body %q, want 3 \"abc\"", resp.ContentLength, body)
		}
		e := recv(t, errs, "the handler's write errors")
		if e[0] != nil || !errors.Is(e[1], http.ErrContentLength) || !errors.Is(e[2], http.ErrContentLength) ||
			e[3] != nil || !errors.Is(e[4], http.ErrContentLength) || e[5].Error() != "n2=0 n3=0" {
			t.Fatalf("Content-Length 3: Write(ab), Write(cd), WriteString(cd), Write(c), WriteString(x) returned %v; "+
				"want nil, ErrContentLength, ErrContentLength, nil, ErrContentLength with nothing written past the length", e)
		}
		c.expectOpen("after a body that reached its Content-Length")
	})

	t.Run("writing less than Content-Length closes the connection", func(t *testing.T) {
		t.Parallel()
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "hello")
		}))
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		resp, body, err := c.response("GET")
		if resp == nil || resp.ContentLength != 10 || body != "hello" || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("handler announced 10 bytes and wrote 5: got body %q, error %v; want \"hello\" then io.ErrUnexpectedEOF", body, err)
		}
		c.expectClosed("after a body shorter than its Content-Length")
	})

	t.Run("Flush sends the headers and a chunk at once", func(t *testing.T) {
		t.Parallel()
		flushed, ack := make(chan error, 1), make(chan struct{})
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "part1")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part2")
			flushed <- http.NewResponseController(w).Flush()
			if !wait(ack) {
				return
			}
			_, _ = io.WriteString(w, "part3")
		}))
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		if err := recv(t, flushed, "the handler to flush"); err != nil {
			t.Fatalf("ResponseController.Flush returned %v", err)
		}
		// The handler is blocked until ack: what is read now was flushed.
		resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("reading the flushed headers: %v", err)
		}
		if !slices.Equal(resp.TransferEncoding, []string{"chunked"}) {
			t.Errorf("flushed answer has Transfer-Encoding %v, want chunked", resp.TransferEncoding)
		}
		buf := make([]byte, len("part1part2"))
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "part1part2" {
			t.Fatalf("reading the flushed chunks before the handler ends: got %q, %v", buf, err)
		}
		close(ack)
		rest, err := io.ReadAll(resp.Body)
		if err != nil || string(rest) != "part3" {
			t.Fatalf("rest of the body %q, %v; want \"part3\"", rest, err)
		}
		c.expectOpen("after a flushed chunked answer")
	})

	t.Run("trailers declared or set with TrailerPrefix", func(t *testing.T) {
		t.Parallel()
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum, X-Other")
			_, _ = io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
			w.Header().Set("X-Other", "yes")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
			w.Header()[http.TrailerPrefix+"Bad Name"] = []string{"no"}
		}))
		resp, err := stdClient(t).Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != "body" {
			t.Fatalf("body %q, %v", body, err)
		}
		want := http.Header{"X-Sum": {"42"}, "X-Other": {"yes"}, "X-Late": {"late"}}
		if !equalTrailers(resp.Trailer, want) {
			t.Errorf("net/http client got trailers %v, want %v", resp.Trailer, want)
		}
		for _, k := range []string{"X-Sum", "X-Late", http.TrailerPrefix + "X-Late"} {
			if v := resp.Header.Get(k); v != "" {
				t.Errorf("trailer %s also sent as a header: %q", k, v)
			}
		}
	})

	t.Run("1xx interim answers then the final one", func(t *testing.T) {
		t.Parallel()
		ack := make(chan struct{})
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			if !wait(ack) {
				return
			}
			w.Header().Set("Content-Length", "2")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "ok")
		}))
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		// The handler waits for ack: the 103 must have been sent already.
		resp, _ := c.mustResponse("GET", req)
		if resp.StatusCode != http.StatusEarlyHints || resp.Header.Get("Link") != "</style.css>; rel=preload" {
			t.Fatalf("first answer %s with Link %q, want 103 Early Hints with the Link header", resp.Status, resp.Header.Get("Link"))
		}
		close(ack)
		resp, body := c.mustResponse("GET", req)
		if resp.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("final answer %s %q, want 200 \"ok\"", resp.Status, body)
		}
		c.expectOpen("after 103 then 200")
	})

	t.Run("WriteHeader twice keeps the first status", func(t *testing.T) {
		t.Parallel()
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "x")
			w.WriteHeader(http.StatusBadGateway)
		}))
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		resp, body := c.mustResponse("GET", req)
		if resp.StatusCode != http.StatusCreated || body != "x" {
			t.Fatalf("WriteHeader(201), WriteHeader(500), Write, WriteHeader(502): got %s %q, want 201 \"x\"", resp.Status, body)
		}
		c.expectOpen("after a repeated WriteHeader")
	})

	t.Run("line breaks in header values cannot inject headers", func(t *testing.T) {
		t.Parallel()
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["X-Inj"] = []string{"a\r\nX-Evil: 1"}
			w.Header()["X-Split"] = []string{"b\r\n\r\nHTTP/1.1 200 OK\r\nX-Evil2: 1\r\n\r\n"}
			w.Header()["X-Lf"] = []string{"c\nX-Evil3: 1"}
			w.Header().Set("Content-Length", "4")
			_, _ = io.WriteString(w, "body")
		}))
		raw := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		hdr := headerBlock(raw)
		for _, evil := range []string{"\nX-Evil", "\r\nHTTP/1.1", "\rX-Evil"} {
			if strings.Contains(hdr, evil) {
				t.Errorf("header values with line breaks injected %q into the answer:\n%s", evil, raw)
			}
		}
		resp, body := parseRaw(t, raw, "GET")
		if body != "body" || resp.Header.Get("X-Evil") != "" || resp.Header.Get("X-Evil2") != "" || resp.Header.Get("X-Evil3") != "" {
			t.Errorf("answer parsed to headers %v body %q: injected", resp.Header, body)
		}
		if v := resp.Header.Get("X-Inj"); !strings.HasPrefix(v, "a") || !strings.HasSuffix(v, "X-Evil: 1") {
			t.Errorf("X-Inj = %q, want the value with its line break neutralised", v)
		}
	})

	t.Run("invalid header names are not sent", func(t *testing.T) {
		t.Parallel()
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Bad Name"] = []string{"1"}
			w.Header()["Bad:Name"] = []string{"2"}
			w.Header()["Bad\r\nName"] = []string{"3"}
			w.Header()[""] = []string{"4"}
			w.Header()["X-Ok"] = []string{"5"}
			w.Header().Set("Content-Length", "0")
		}))
		raw := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if strings.Contains(raw, "Bad") || strings.Contains(raw, "\r\n: 4") {
			t.Errorf("invalid header names were sent:\n%s", raw)
		}
		if !strings.Contains(raw, "\r\nX-Ok: 5\r\n") {
			t.Errorf("the valid header X-Ok is missing:\n%s", raw)
		}
		parseRaw(t, raw, "GET")
	})

	t.Run("Date is added when the handler sets none", func(t *testing.T) {
		t.Parallel()
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/set":
				w.Header().Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
			case "/suppress":
				w.Header()["Date"] = nil
			}
			w.Header().Set("Content-Length", "0")
		}))
		before := time.Now().Add(-time.Second)
		raw := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, _ := parseRaw(t, raw, "GET")
		d, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil || d.Before(before.Truncate(time.Second)) || d.After(time.Now().Add(time.Second)) {
			t.Errorf("Date %q (%v) is not the current time in the HTTP format:\n%s", resp.Header.Get("Date"), err, raw)
		}
		raw = rawExchange(t, addr, "GET /set HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if strings.Count(raw, "Date:") != 1 || !strings.Contains(raw, "\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n") {
			t.Errorf("the handler's Date is not the only one sent:\n%s", raw)
		}
		raw = rawExchange(t, addr, "GET /suppress HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if strings.Contains(raw, "Date:") {
			t.Errorf("Date sent though the handler suppressed it with a nil value, as net/http allows:\n%s", raw)
		}
	})

	t.Run("ResponseController", func(t *testing.T) {
		t.Parallel()
		type result struct{ flush, duplex, read, write error }
		results := make(chan result, 1)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			var res result
			res.duplex = rc.EnableFullDuplex()
			switch r.URL.Path {
			case "/read":
				// The client sends 3 of the 10 bytes announced.
				if err := rc.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
					res.read = fmt.Errorf("SetReadDeadline: %w", err)
				} else {
					_, res.read = io.ReadAll(r.Body)
				}
				w.WriteHeader(http.StatusRequestTimeout)
			case "/write":
				if err := rc.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
					res.write = fmt.Errorf("SetWriteDeadline: %w", err)
				} else if _, err := w.Write(make([]byte, 64<<10)); err != nil {
					res.write = err
				} else {
					res.write = rc.Flush()
				}
			default:
				_, _ = io.WriteString(w, "x")
				res.flush = rc.Flush()
			}
			results <- res
		}))

		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		c.mustResponse("GET", req)
		res := recv(t, results, "the handler")
		if res.duplex != nil || res.flush != nil {
			t.Errorf("EnableFullDuplex returned %v, Flush returned %v; want nil, nil", res.duplex, res.flush)
		}

		c = dial(t, addr)
		const post = "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
		c.write(post)
		resp, _ := c.mustResponse("POST", post)
		res = recv(t, results, "the handler")
		if !isDeadlineErr(res.read) {
			t.Errorf("body read past a read deadline set with SetReadDeadline returned %v, want a deadline error", res.read)
		}
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("got %s, want the handler's 408", resp.Status)
		}
		c.expectClosed("after a body read that failed")

		c = dial(t, addr)
		c.write("GET /write HTTP/1.1\r\nHost: x\r\n\r\n")
		res = recv(t, results, "the handler")
		if !isDeadlineErr(res.write) {
			t.Errorf("writing past a write deadline set with SetWriteDeadline returned %v, want a deadline error", res.write)
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

// TestChunkAllocs checks that writing a chunk of a chunked body costs no
// allocation (not parallel: AllocsPerRun).
func TestChunkAllocs(t *testing.T) {
	allocs := make(chan float64, 1)
	addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte("0123456789")
		w.WriteHeader(http.StatusOK)
		allocs <- testing.AllocsPerRun(50, func() { _, _ = w.Write(chunk) })
	}))
	c := dial(t, addr)
	const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	c.write(req)
	resp, body := c.mustResponse("GET", req)
	if len(resp.TransferEncoding) == 0 || len(body) != 51*10 {
		t.Fatalf("got Transfer-Encoding %v and %d body bytes, want chunked and %d", resp.TransferEncoding, len(body), 51*10)
	}
	if a := recv(t, allocs, "the handler"); a != 0 {
		t.Errorf("%v allocations per chunk written, want 0", a)
	}
}
