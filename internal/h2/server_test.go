package h2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestRequest checks what a handler sees of a request and what the
// client gets of a small response.
func TestRequest(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s host=%s tls=%v remote=%v cookie=%q ua=%q cl=%d",
			r.Proto, r.Method, r.RequestURI, r.Host, r.TLS != nil && r.TLS.NegotiatedProtocol == "h2",
			r.RemoteAddr != "", r.Header.Get("Cookie"), r.Header.Get("User-Agent"), r.ContentLength)
	}), nil)
	req, _ := http.NewRequest("GET", ts.url()+"a/b?c=d", nil) //nolint:errcheck // a constant URL
	req.Header.Set("User-Agent", "test/1")
	req.AddCookie(&http.Cookie{Name: "a", Value: "1"})
	req.AddCookie(&http.Cookie{Name: "b", Value: "2"})
	resp, err := ts.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body) //nolint:errcheck // compared
	resp.Body.Close()
	want := fmt.Sprintf(`HTTP/2.0 GET /a/b?c=d host=%s tls=true remote=true cookie="a=1; b=2" ua="test/1" cl=0`, ts.addr)
	if string(body) != want {
		t.Errorf("handler saw\n%s\nwant\n%s", body, want)
	}
	if resp.ContentLength != int64(len(body)) || resp.Header.Get("Date") == "" {
		t.Errorf("Content-Length %d, Date %q", resp.ContentLength, resp.Header.Get("Date"))
	}
}

// TestOneWrite checks that a small finished response goes out as one
// write: HEADERS and DATA (END_STREAM) together.
func TestOneWrite(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "abc")
		io.WriteString(w, "hello") //nolint:errcheck // the client checks
	}), nil)
	c := ts.dial(t)
	for i := uint32(1); i <= 9; i += 2 {
		before := ts.writes.Load()
		c.get(i, "/")
		h := c.readUntil(func(f http2.Frame) bool { return f.Header().StreamID == i }).(*http2.MetaHeadersFrame)
		if h.StreamEnded() {
			t.Fatal("HEADERS ended the stream")
		}
		d := c.read().(*http2.DataFrame)
		if string(d.Data()) != "hello" || !d.StreamEnded() {
			t.Fatalf("DATA %q end=%v", d.Data(), d.StreamEnded())
		}
		if n := ts.writes.Load() - before; n != 1 {
			t.Errorf("request %d: %d writes, want 1", i, n)
		}
	}
}

// TestUpload checks request bodies of 1 and 16 MiB: streamed to the
// handler within the flow-control windows, refilled as it reads.
func TestUpload(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}), nil)
	c := ts.client(t)
	for _, size := range []int{1 << 20, 16 << 20} {
		b := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		resp, err := c.Post(ts.url(), "application/octet-stream", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body) //nolint:errcheck // compared
		resp.Body.Close()
		if want := fmt.Sprintf("%d %x", size, sha256.Sum256(b)); string(got) != want {
			t.Errorf("upload of %d: %s, want %s", size, got, want)
		}
	}
}

// TestDownload checks a large response under the client's windows.
func TestDownload(t *testing.T) {
	const size = 8 << 20
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := bytes.Repeat([]byte("x"), 1000)
		for n := 0; n < size; n += len(b) {
			if _, err := w.Write(b[:min(len(b), size-n)]); err != nil {
				return
			}
		}
	}), nil)
	resp, err := ts.client(t).Get(ts.url())
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Errorf("got %d bytes, %v; want %d", n, err, size)
	}
}

// TestSendWindow checks that no DATA goes beyond the client's window:
// with INITIAL_WINDOW_SIZE 10 the server sends 10 bytes and waits; a
// WINDOW_UPDATE lets the rest through; a later SETTINGS change moves the
// open stream's window.
func TestSendWindow(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("a", 30)) //nolint:errcheck // the client checks
	}), nil)
	c := ts.dial(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
	c.get(1, "/")
	d := c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
	if len(d.Data()) != 10 || d.StreamEnded() {
		t.Fatalf("first DATA: %d bytes, end %v; want 10 bytes", len(d.Data()), d.StreamEnded())
	}
	_ = c.tc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if f, err := c.fr.ReadFrame(); err == nil {
		t.Fatalf("frame beyond the window: %v", f.Header())
	}
	_ = c.tc.SetReadDeadline(time.Now().Add(waitLimit))
	if err := c.fr.WriteWindowUpdate(1, 5); err != nil {
		t.Fatal(err)
	}
	d = c.read().(*http2.DataFrame)
	if len(d.Data()) != 5 {
		t.Fatalf("after WINDOW_UPDATE 5: %d bytes", len(d.Data()))
	}
	// INITIAL_WINDOW_SIZE 25 adds 15 to the open stream's window.
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 25}); err != nil {
		t.Fatal(err)
	}
	d = c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
	if len(d.Data()) != 15 || !d.StreamEnded() {
		t.Fatalf("after SETTINGS: %d bytes, end %v; want the last 15", len(d.Data()), d.StreamEnded())
	}
}

// TestRecvWindow checks that DATA beyond the window the server gave is a
// FLOW_CONTROL_ERROR.
func TestRecvWindow(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}), nil)
	c := ts.dial(t, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20})
	c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "x", ":path", "/")
	chunk := make([]byte, 16384)
	for sent := 0; sent <= streamRecvWindow; sent += len(chunk) {
		if err := c.fr.WriteData(1, false, chunk); err != nil {
			t.Fatal(err)
		}
	}
	if kind, code := c.rstCode(1); code != http2.ErrCodeFlowControl {
		t.Errorf("got %s %v, want FLOW_CONTROL_ERROR", kind, code)
	}
}

// TestTrailers checks trailers both ways, declared and with
// http.TrailerPrefix.
func TestTrailers(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // the trailer is the point
		w.Header().Set("Trailer", "Grpc-Status")
		w.WriteHeader(200)
		io.WriteString(w, "body") //nolint:errcheck // the client checks
		w.(http.Flusher).Flush()
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Got", r.Trailer.Get("Client-Sum"))
	}), nil)
	req, _ := http.NewRequest("POST", ts.url(), io.NopCloser(strings.NewReader("up"))) //nolint:errcheck // constant
	req.Trailer = http.Header{"Client-Sum": {"42"}}
	resp, err := ts.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body) //nolint:errcheck // compared
	resp.Body.Close()
	if string(b) != "body" || resp.Trailer.Get("Grpc-Status") != "0" || resp.Trailer.Get("Got") != "42" {
		t.Errorf("body %q trailers %v", b, resp.Trailer)
	}
}

// TestFlush checks that Flush sends what was written while the handler
// goes on.
func TestFlush(t *testing.T) {
	next := make(chan struct{})
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "one") //nolint:errcheck // the client checks
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		<-next
		io.WriteString(w, "two") //nolint:errcheck // the client checks
	}), nil)
	resp, err := ts.client(t).Get(ts.url())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 3)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "one" {
		t.Fatalf("first part %q, %v", buf, err)
	}
	close(next)
	if rest, _ := io.ReadAll(resp.Body); string(rest) != "two" { //nolint:errcheck // compared
		t.Errorf("rest %q", rest)
	}
}

// TestClientReset checks that a client's RST_STREAM cancels the
// request's context, and the connection serves on.
func TestClientReset(t *testing.T) {
	canceled := make(chan struct{})
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			<-r.Context().Done()
			close(canceled)
			return
		}
		io.WriteString(w, "ok") //nolint:errcheck // the client checks
	}), nil)
	c := ts.dial(t)
	c.get(1, "/wait")
	time.Sleep(20 * time.Millisecond)
	if err := c.fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	select {
	case <-canceled:
	case <-time.After(waitLimit):
		t.Fatal("the request's context was not canceled")
	}
	c.get(3, "/")
	d := c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
	if string(d.Data()) != "ok" || d.StreamID != 3 {
		t.Errorf("next stream: %q on %d", d.Data(), d.StreamID)
	}
}

// TestBadRequests checks that requests RFC 9113 section 8 forbids reset
// their stream with PROTOCOL_ERROR, the connection staying up.
func TestBadRequests(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok") //nolint:errcheck // the client checks
	}), nil)
	base := []string{":method", "GET", ":scheme", "https", ":authority", "x", ":path", "/"}
	cases := map[string][]string{
		"connection header":     append(base, "connection", "keep-alive"),
		"te not trailers":       append(base, "te", "gzip"),
		"upper-case name":       append(base, "X-Upper", "1"),
		"no path":               base[:6],
		"empty path":            {":method", "GET", ":scheme", "https", ":path", ""},
		"no method":             base[2:],
		"pseudo after":          {":method", "GET", ":scheme", "https", "a", "b", ":path", "/"},
		"unknown pseudo":        append(base, ":status", "200"),
		"protocol, not offered": {":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":authority", "x", ":path", "/"},
		"bad authority":         {":method", "GET", ":scheme", "https", ":authority", "a b", ":path", "/"},
	}
	c := ts.dial(t)
	id := uint32(1)
	for name, fields := range cases {
		c.headers(id, true, fields...)
		if kind, code := c.rstCode(id); kind != "RST_STREAM" || code != http2.ErrCodeProtocol {
			t.Errorf("%s: %s %v, want RST_STREAM PROTOCOL_ERROR", name, kind, code)
		}
		id += 2
	}
	c.get(id, "/")
	d := c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
	if string(d.Data()) != "ok" {
		t.Errorf("after the bad requests: %q", d.Data())
	}
}

// TestContentLengthMismatch checks that a body longer or shorter than its
// Content-Length resets the stream and fails the handler's read.
func TestContentLengthMismatch(t *testing.T) {
	readErr := make(chan error, 2)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}), nil)
	c := ts.dial(t)
	for i, body := range []string{"abc", "abcdefg"} {
		id := uint32(2*i + 1)
		c.headers(id, false, ":method", "POST", ":scheme", "https", ":authority", "x", ":path", "/", "content-length", "5")
		if err := c.fr.WriteData(id, true, []byte(body)); err != nil {
			t.Fatal(err)
		}
		if kind, code := c.rstCode(id); kind != "RST_STREAM" || code != http2.ErrCodeProtocol {
			t.Errorf("body %q: %s %v, want RST_STREAM PROTOCOL_ERROR", body, kind, code)
		}
		if err := <-readErr; err == nil {
			t.Errorf("body %q: the handler read it without error", body)
		}
	}
}

// TestHeaderListTooLarge checks the 431 for a header list over
// MaxHeaderBytes.
func TestHeaderListTooLarge(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the handler was called")
	}), func(s *Server) { s.MaxHeaderBytes = 1000 })
	c := ts.dial(t)
	// Fields under the bound each (a single one over it is a
	// COMPRESSION_ERROR of the HPACK decoder), over it together.
	a := strings.Repeat("a", 400)
	c.get(1, "/", "x-a", a, "x-b", a, "x-c", a)
	h := c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok }).(*http2.MetaHeadersFrame)
	if st := h.PseudoValue("status"); st != "431" {
		t.Errorf("status %s, want 431", st)
	}
}

// TestConcurrentStreams checks that streams run at once on one
// connection, and that more than MaxConcurrentStreams are refused.
func TestConcurrentStreams(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(3)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Done()
		<-release
		io.WriteString(w, r.URL.Path) //nolint:errcheck // the client checks
	}), func(s *Server) { s.MaxConcurrentStreams = 3 })
	c := ts.dial(t)
	for id := uint32(1); id <= 5; id += 2 {
		c.get(id, fmt.Sprint("/", id))
	}
	started.Wait() // all three at once
	c.get(7, "/7")
	if kind, code := c.rstCode(7); kind != "RST_STREAM" || code != http2.ErrCodeRefusedStream {
		t.Errorf("fourth stream: %s %v, want RST_STREAM REFUSED_STREAM", kind, code)
	}
	close(release)
	got := map[uint32]string{}
	for len(got) < 3 {
		if d, ok := c.read().(*http2.DataFrame); ok {
			got[d.StreamID] = string(d.Data())
		}
	}
	if got[1] != "/1" || got[3] != "/3" || got[5] != "/5" {
		t.Errorf("answers %v", got)
	}
}

// TestShutdown checks that Shutdown sends GOAWAY naming the last stream,
// lets it finish, refuses a later one and closes the connection.
func TestShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done") //nolint:errcheck // the client checks
	}), nil)
	c := ts.dial(t)
	c.get(1, "/")
	<-started
	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(context.Background()) }()
	g := c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok }).(*http2.GoAwayFrame)
	if g.LastStreamID != 1 || g.ErrCode != http2.ErrCodeNo {
		t.Errorf("GOAWAY last %d code %v, want 1 NO_ERROR", g.LastStreamID, g.ErrCode)
	}
	c.get(3, "/")
	if kind, code := c.rstCode(3); kind != "RST_STREAM" || code != http2.ErrCodeRefusedStream {
		t.Errorf("stream after GOAWAY: %s %v, want RST_STREAM REFUSED_STREAM", kind, code)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a stream in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	d := c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
	if string(d.Data()) != "done" || !d.StreamEnded() {
		t.Errorf("stream in flight got %q", d.Data())
	}
	if _, err := c.fr.ReadFrame(); !isEOF(err) {
		t.Errorf("after the last stream: %v, want the connection closed", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestIdleTimeout checks that a connection without streams goes away
// after IdleTimeout.
func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		func(s *Server) { s.IdleTimeout = 100 * time.Millisecond })
	c := ts.dial(t)
	c.get(1, "/")
	start := time.Now()
	g := c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok }).(*http2.GoAwayFrame)
	if g.ErrCode != http2.ErrCodeNo || g.LastStreamID != 1 {
		t.Errorf("GOAWAY %v last %d", g.ErrCode, g.LastStreamID)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("closed after %v, before the idle timeout", d)
	}
	if _, err := c.fr.ReadFrame(); !isEOF(err) {
		t.Errorf("after GOAWAY: %v, want the connection closed", err)
	}
}

// TestPanic checks that a handler's panic resets its stream and leaves
// the connection serving.
func TestPanic(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "ok") //nolint:errcheck // the client checks
	}), nil)
	c := ts.dial(t)
	c.get(1, "/panic")
	if kind, code := c.rstCode(1); kind != "RST_STREAM" || code != http2.ErrCodeInternal {
		t.Errorf("panic: %s %v", kind, code)
	}
	c.get(3, "/")
	d := c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
	if string(d.Data()) != "ok" {
		t.Errorf("after the panic: %q", d.Data())
	}
}

// TestShortBody checks that a body shorter than the Content-Length the
// handler set resets the stream, so the client sees it cut short.
func TestShortBody(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "abc") //nolint:errcheck // the client checks
	}), nil)
	resp, err := ts.client(t).Get(ts.url())
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Error("the client read a short body without error")
	}
}

// TestExpectContinue checks the 100 response when the handler reads.
func TestExpectContinue(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body) //nolint:errcheck // echoed
		w.Write(b)                 //nolint:errcheck // the client checks
	}), nil)
	c := ts.dial(t)
	c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "x", ":path", "/", "expect", "100-continue")
	h := c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok }).(*http2.MetaHeadersFrame)
	if st := h.PseudoValue("status"); st != "100" {
		t.Fatalf("first status %s, want 100", st)
	}
	if err := c.fr.WriteData(1, true, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	h = c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok }).(*http2.MetaHeadersFrame)
	d := c.read().(*http2.DataFrame)
	if h.PseudoValue("status") != "200" || string(d.Data()) != "hi" {
		t.Errorf("final %s %q", h.PseudoValue("status"), d.Data())
	}
}

// TestShutdownStuckClient checks that Shutdown returns when its context
// ends though a client stopped reading while a handler writes to it.
func TestShutdownStuckClient(t *testing.T) {
	writing := make(chan struct{})
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(writing)
		b := make([]byte, 64<<10)
		for i := 0; i < 1024; i++ {
			if _, err := w.Write(b); err != nil {
				return
			}
		}
	}), nil)
	c := ts.dial(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: maxWindow})
	if err := c.fr.WriteWindowUpdate(0, maxWindow-defaultWindow); err != nil {
		t.Fatal(err)
	}
	c.get(1, "/")
	<-writing
	time.Sleep(200 * time.Millisecond) // the socket's buffers fill up
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != context.DeadlineExceeded {
			t.Errorf("Shutdown: %v, want its context's deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown still blocked 5 s after its context ended")
	}
}

// TestPing checks that a PING is acknowledged with its data.
func TestPing(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	c := ts.dial(t)
	data := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	if err := c.fr.WritePing(false, data); err != nil {
		t.Fatal(err)
	}
	p := c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.PingFrame); return ok }).(*http2.PingFrame)
	if !p.IsAck() || p.Data != data {
		t.Errorf("PING answer ack=%v data=%v", p.IsAck(), p.Data)
	}
}

// TestLargeHeaders checks a response header block larger than a frame:
// HEADERS then CONTINUATION.
func TestLargeHeaders(t *testing.T) {
	big := strings.Repeat("v", 40<<10)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", big)
		io.WriteString(w, "ok") //nolint:errcheck // the client checks
	}), nil)
	resp, err := ts.client(t).Get(ts.url())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body) //nolint:errcheck // compared
	resp.Body.Close()
	if resp.Header.Get("X-Big") != big || string(b) != "ok" {
		t.Errorf("header of %d bytes, body %q", len(resp.Header.Get("X-Big")), b)
	}
}

// TestHead checks that a HEAD response carries no body, whatever the
// handler writes, and that writing past a declared Content-Length fails.
func TestHead(t *testing.T) {
	writeErr := make(chan error, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello") //nolint:errcheck // HEAD: discarded
		_, err := io.WriteString(w, "more")
		writeErr <- err
	}), nil)
	c := ts.client(t)
	req, _ := http.NewRequest("HEAD", ts.url(), nil) //nolint:errcheck // constant
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body) //nolint:errcheck // compared
	resp.Body.Close()
	if len(b) != 0 || resp.ContentLength != 5 {
		t.Errorf("HEAD: body %q, Content-Length %d", b, resp.ContentLength)
	}
	<-writeErr
	resp, err = c.Get(ts.url())
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body) //nolint:errcheck // compared
	resp.Body.Close()
	if string(b) != "hello" {
		t.Errorf("GET: body %q", b)
	}
	if err := <-writeErr; err != http.ErrContentLength {
		t.Errorf("writing past Content-Length: %v, want http.ErrContentLength", err)
	}
}

// TestExtendedConnect checks RFC 8441: with ExtendedConnect the server
// announces SETTINGS_ENABLE_CONNECT_PROTOCOL and hands a CONNECT with
// :protocol to the handler as net/http does (Method CONNECT, the path in
// URL, ":protocol" in the header map), whose stream then carries data both
// ways; an extended CONNECT without :path, :scheme or :authority, or
// :protocol on another method, is a stream error; without
// ExtendedConnect :protocol stays one.
func TestExtendedConnect(t *testing.T) {
	type seen struct{ method, path, proto, body string }
	got := make(chan seen, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush() //nolint:errcheck // the client checks
		b := make([]byte, 5)
		n, _ := io.ReadFull(r.Body, b)
		got <- seen{r.Method, r.URL.Path, r.Header.Get(":protocol"), string(b[:n])}
		io.WriteString(w, "pong") //nolint:errcheck // the client checks
	})
	ts := startServer(t, h, func(s *Server) { s.ExtendedConnect = true })
	_, roots := testTLS()
	tc, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(waitLimit))
	io.WriteString(tc, clientPreface) //nolint:errcheck // the reads fail
	fr := http2.NewFramer(tc, tc)
	fr.WriteSettings() //nolint:errcheck // the reads fail
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	offered := false
	f.(*http2.SettingsFrame).ForeachSetting(func(s http2.Setting) error { //nolint:errcheck // never fails
		offered = offered || s.ID == http2.SettingEnableConnectProtocol && s.Val == 1
		return nil
	})
	if !offered {
		t.Fatal("SETTINGS_ENABLE_CONNECT_PROTOCOL not announced")
	}
	tc.Close()

	c := ts.dial(t)
	c.headers(1, false, ":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":authority", "example.com", ":path", "/chat")
	c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok })
	if err := c.fr.WriteData(1, false, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != (seen{"CONNECT", "/chat", "websocket", "hello"}) {
		t.Errorf("handler saw %+v", s)
	}
	d := c.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
	if string(d.Data()) != "pong" {
		t.Errorf("DATA %q, want pong", d.Data())
	}
	for i, fields := range [][]string{
		{":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":authority", "example.com"},
		{":method", "CONNECT", ":protocol", "websocket", ":authority", "example.com", ":path", "/"},
		{":method", "GET", ":protocol", "websocket", ":scheme", "https", ":authority", "example.com", ":path", "/"},
	} {
		id := uint32(3 + 2*i)
		c.headers(id, true, fields...)
		if kind, code := c.rstCode(id); kind != "RST_STREAM" || code != http2.ErrCodeProtocol {
			t.Errorf("%v: %s %v, want RST_STREAM PROTOCOL_ERROR", fields, kind, code)
		}
	}
}

// TestDeadlines checks http.ResponseController's deadlines: a body read
// with nothing coming, and a write with no window left, fail with
// os.ErrDeadlineExceeded once their deadline passes.
func TestDeadlines(t *testing.T) {
	errs := make(chan error, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.URL.Path == "/read" {
			_ = rc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			_, err := r.Body.Read(make([]byte, 1))
			errs <- err
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := w.Write(make([]byte, 64<<10))
		if err == nil {
			err = rc.Flush()
		}
		errs <- err
	})
	ts := startServer(t, h, nil)
	c := ts.dial(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
	c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "example.com", ":path", "/read")
	c.get(3, "/write")
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("got %v, want os.ErrDeadlineExceeded", err)
			}
		case <-time.After(waitLimit):
			t.Fatal("a read or write past its deadline still waits")
		}
	}
}
