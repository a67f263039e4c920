package h1

// Tests of the response writer: Content-Length, chunking, Flush,
// trailers, interim answers and header injection.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

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
