package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
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

func TestContext(t *testing.T) {
	t.Parallel()

	t.Run("canceled when the handler returns", func(t *testing.T) {
		t.Parallel()
		ctxs := make(chan context.Context, 1)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := r.Context().Err(); err != nil {
				panic("context canceled while the handler runs: " + err.Error())
			}
			ctxs <- r.Context()
		}))
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		c.mustResponse("GET", req)
		ctx := recv(t, ctxs, "the handler")
		if !ctxCanceledWithin(ctx, time.Second) {
			t.Fatalf("the request context was not canceled after the handler returned")
		}
	})

	clientLeaves := func(t *testing.T, req string) {
		t.Parallel()
		started := make(chan struct{})
		canceled := make(chan bool, 1)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			close(started)
			canceled <- ctxCanceledWithin(r.Context(), ioTimeout)
		}))
		c := dial(t, addr)
		c.write(req)
		recv(t, started, "the handler to start")
		_ = c.c.Close()
		t0 := time.Now()
		if !recv(t, canceled, "the handler to end") {
			t.Fatalf("sent %q then closed the connection: the request context was not canceled within %v", req, ioTimeout)
		}
		if d := time.Since(t0); d > time.Second {
			t.Errorf("sent %q then closed the connection: the request context was canceled after %v, want within 1s", req, d)
		}
	}
	t.Run("canceled when the client leaves during a GET", func(t *testing.T) {
		clientLeaves(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	})
	t.Run("canceled when the client leaves during a POST whose body was read", func(t *testing.T) {
		clientLeaves(t, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	})
	t.Run("canceled when the client leaves during a chunked POST whose body was read", func(t *testing.T) {
		clientLeaves(t, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	})

	t.Run("Err, Done, children and AfterFunc once the handler returned", func(t *testing.T) {
		t.Parallel()
		type captured struct {
			ctx, child, timeoutChild, valueChild context.Context
			cancels                              []context.CancelFunc
			afterRan                             chan struct{}
			during                               []string // problems seen while the handler ran
		}
		got := make(chan captured, 1)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			var cp captured
			cp.ctx = ctx
			if r.URL.Path == "/done-first" {
				// Done before the cancel: the channel is then closed by it.
				select {
				case <-ctx.Done():
					cp.during = append(cp.during, "Done closed while the handler runs")
				default:
				}
			}
			if err := ctx.Err(); err != nil {
				cp.during = append(cp.during, "Err = "+err.Error())
			}
			if _, ok := ctx.Deadline(); ok {
				cp.during = append(cp.during, "has a deadline")
			}
			if v := ctx.Value(http.ServerContextKey); v != nil {
				cp.during = append(cp.during, fmt.Sprintf("carries http.ServerContextKey = %v", v))
			}
			var cancel1, cancel2 context.CancelFunc
			cp.child, cancel1 = context.WithCancel(ctx)
			cp.timeoutChild, cancel2 = context.WithTimeout(ctx, time.Hour)
			// Called by the test once it checked the children were
			// canceled through their parent.
			cp.cancels = []context.CancelFunc{cancel1, cancel2}
			cp.valueChild = context.WithValue(ctx, ctxKey("k"), "v")
			cp.afterRan = make(chan struct{})
			context.AfterFunc(ctx, func() { close(cp.afterRan) })
			if err := cp.child.Err(); err != nil {
				cp.during = append(cp.during, "child Err = "+err.Error())
			}
			got <- cp
		}))
		for _, path := range []string{"/", "/done-first"} {
			c := dial(t, addr)
			req := "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"
			c.write(req)
			c.mustResponse("GET", req)
			cp := recv(t, got, "the handler")
			if len(cp.during) > 0 {
				t.Errorf("%s: while the handler ran, the request context: %v", path, cp.during)
			}
			for name, ctx := range map[string]context.Context{
				"request": cp.ctx, "WithCancel child": cp.child, "WithTimeout child": cp.timeoutChild, "WithValue child": cp.valueChild,
			} {
				if !ctxCanceledWithin(ctx, time.Second) {
					t.Errorf("%s: %s context not canceled within 1s of the answer", path, name)
					continue
				}
				if !errors.Is(ctx.Err(), context.Canceled) {
					t.Errorf("%s: %s context Err = %v, want context.Canceled", path, name, ctx.Err())
				}
			}
			for _, cancel := range cp.cancels {
				cancel()
			}
			if !errors.Is(context.Cause(cp.ctx), context.Canceled) {
				t.Errorf("%s: context.Cause = %v, want context.Canceled", path, context.Cause(cp.ctx))
			}
			if !wait(cp.afterRan) {
				t.Errorf("%s: the function registered with context.AfterFunc did not run", path)
			}
			after := make(chan struct{})
			if stop := context.AfterFunc(cp.ctx, func() { close(after) }); stop() {
				t.Errorf("%s: stop of an AfterFunc registered on a canceled context reported success", path)
			}
			if !wait(after) {
				t.Errorf("%s: context.AfterFunc on a canceled context did not run", path)
			}
		}
	})

	t.Run("AfterFunc stop functions", func(t *testing.T) {
		t.Parallel()
		type result struct {
			stops []bool
			ran   [4]chan struct{}
		}
		results := make(chan *result, 1)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			res := &result{}
			for i := range res.ran {
				res.ran[i] = make(chan struct{})
			}
			f := func(i int) func() { return func() { close(res.ran[i]) } }
			stop0 := context.AfterFunc(ctx, f(0))
			stop1 := context.AfterFunc(ctx, f(1))
			res.stops = append(res.stops, stop0(), stop0())
			stop2 := context.AfterFunc(ctx, f(2))
			// Stopping the first again must not unregister the callback
			// registered after it.
			res.stops = append(res.stops, stop0(), stop1())
			context.AfterFunc(ctx, f(3))
			_ = stop2
			results <- res
		}))
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		c.mustResponse("GET", req)
		res := recv(t, results, "the handler")
		if want := []bool{true, false, false, true}; !slices.Equal(res.stops, want) {
			t.Errorf("stop results (stop0, stop0 again, stop0 a third time after another AfterFunc, stop1) = %v, want %v", res.stops, want)
		}
		for _, i := range []int{2, 3} {
			if !closedWithin(res.ran[i], time.Second) {
				t.Errorf("callback %d did not run within 1s of the handler returning", i)
			}
		}
		// The callbacks are started together; the stopped ones get a
		// little more time to show up wrongly.
		for _, i := range []int{0, 1} {
			if closedWithin(res.ran[i], 50*time.Millisecond) {
				t.Errorf("callback %d ran though it was stopped", i)
			}
		}
	})

	t.Run("each request of a connection has its own context", func(t *testing.T) {
		t.Parallel()
		ctxs := make(chan context.Context, 2)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Context().Err() != nil {
				w.WriteHeader(http.StatusInternalServerError)
			}
			ctxs <- r.Context()
		}))
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		for i := range 2 {
			c.write(req)
			if resp, _ := c.mustResponse("GET", req); resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d on a connection: its context was already canceled when the handler started", i)
			}
		}
		a, b := recv(t, ctxs, "the first handler"), recv(t, ctxs, "the second handler")
		if a == b {
			t.Errorf("two requests of a connection got the same context")
		}
	})

	t.Run("a pipelined request does not cancel the running one", func(t *testing.T) {
		t.Parallel()
		started := make(chan struct{})
		canceled := make(chan bool, 1)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/first" {
				close(started)
				// Long enough for the client watch (armed after
				// clientGoneDelay) to see the second request arrive.
				canceled <- ctxCanceledWithin(r.Context(), 10*clientGoneDelay)
			}
			_, _ = io.WriteString(w, r.URL.Path)
		}))
		c := dial(t, addr)
		c.write("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
		recv(t, started, "the first handler to start")
		c.write("GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
		if recv(t, canceled, "the first handler") {
			t.Errorf("the context of a running request was canceled when a pipelined request arrived")
		}
		for _, want := range []string{"/first", "/second"} {
			resp, body := c.mustResponse("GET", want)
			if resp.StatusCode != http.StatusOK || body != want {
				t.Errorf("got %s %q, want 200 %q", resp.Status, body, want)
			}
		}
		c.expectOpen("after pipelined requests")
	})
}

func TestPanics(t *testing.T) {
	t.Parallel()

	t.Run("ErrAbortHandler cuts the body short, silently", func(t *testing.T) {
		t.Parallel()
		var logs lockedBuffer
		addr := startH1(t, &Server{ErrorLog: log.New(&logs, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ok" {
				_, _ = io.WriteString(w, "ok")
				return
			}
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "buffered")
			panic(http.ErrAbortHandler)
		})})
		cl := stdClient(t)
		resp, err := cl.Get("http://" + addr + "/abort")
		if err != nil {
			t.Fatalf("the headers were flushed before the panic, but the client got %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("handler panicked with ErrAbortHandler in a chunked body: client read %q and a clean end, want an error", body)
		}
		if !strings.HasPrefix(string(body), "partial") {
			t.Errorf("client read %q before the error, want what was flushed, \"partial\"", body)
		}
		resp, err = cl.Get("http://" + addr + "/ok")
		if err != nil {
			t.Fatalf("server no longer serving after a panic: %v", err)
		}
		resp.Body.Close()
		if l := logs.String(); l != "" {
			t.Errorf("panic(http.ErrAbortHandler) was logged: %q", l)
		}
	})

	t.Run("other panics are logged with their stack", func(t *testing.T) {
		t.Parallel()
		var logs lockedBuffer
		addr := startH1(t, &Server{ErrorLog: log.New(&logs, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ok" {
				_, _ = io.WriteString(w, "ok")
				return
			}
			panic("boom-7f3a")
		})})
		c := dial(t, addr)
		c.write("GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
		c.expectClosed("after a handler panic")
		l := logs.String()
		for _, want := range []string{"boom-7f3a", "goroutine ", "TestPanics"} {
			if !strings.Contains(l, want) {
				t.Errorf("the panic log does not contain %q (value and stack expected):\n%s", want, l)
			}
		}
		c2 := dial(t, addr)
		const req = "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
		c2.write(req)
		if resp, body := c2.mustResponse("GET", req); resp.StatusCode != http.StatusOK || body != "ok" {
			t.Errorf("after a panic on another connection: got %s %q", resp.Status, body)
		}
	})
}

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
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		c.mustResponse("GET", req)
		const partial = "GET / HTTP/1.1\r\nHost: x\r\n"
		c.write(partial)
		t0 := time.Now()
		c.expectClosed("unfinished headers of a second request")
		if d := time.Since(t0); d < timeout/2 {
			t.Errorf("closed after %v, before the timeout of %v", d, timeout)
		}
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
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		c.mustResponse("GET", req)
		t0 := time.Now()
		c.expectClosed("a keep-alive connection left idle")
		if d := time.Since(t0); d < timeout/2 {
			t.Errorf("idle connection closed after %v, before the timeout of %v", d, timeout)
		}
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
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		c.mustResponse("GET", req)
		t0 := time.Now()
		c.expectClosed("a keep-alive connection left idle, IdleTimeout 0")
		if d := time.Since(t0); d < timeout/2 {
			t.Errorf("idle connection closed after %v, before ReadHeaderTimeout %v", d, timeout)
		}
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
