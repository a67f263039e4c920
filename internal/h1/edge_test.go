package h1

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestLargeBodies sends and answers bodies far larger than the buffers,
// written in pieces of several sizes, with and without a Content-Length,
// and checks every byte with a net/http client.
func TestLargeBodies(t *testing.T) {
	t.Parallel()
	const size = 1 << 20
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sum := sha256.Sum256(data)
	addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			// Echo, through a copy whose buffer is not the body's.
			h := sha256.New()
			n, err := io.Copy(io.MultiWriter(h, w), r.Body)
			if err != nil || n != size || !bytes.Equal(h.Sum(nil), sum[:]) {
				panic(fmt.Sprintf("request body: %d bytes, %v, hash ok=%v", n, err, bytes.Equal(h.Sum(nil), sum[:])))
			}
			return
		}
		piece, _ := strconv.Atoi(r.URL.Query().Get("piece"))
		if r.URL.Query().Has("cl") {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		for off := 0; off < size; off += piece {
			p := data[off:min(off+piece, size)]
			var err error
			if off%2 == 0 {
				_, err = w.Write(p)
			} else {
				_, err = io.WriteString(w, string(p))
			}
			if err != nil {
				return
			}
		}
	}))
	cl := stdClient(t)
	check := func(what string, resp *http.Response, err error, wantChunked bool) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: read %d bytes (%v), equal to what was sent: %v", what, len(got), err, bytes.Equal(got, data))
		}
		if chunked := len(resp.TransferEncoding) > 0; chunked != wantChunked {
			t.Errorf("%s: chunked=%v, want %v", what, chunked, wantChunked)
		}
	}
	for _, piece := range []int{1 << 20, 70000, 4096, 4095, 1000, 17} {
		for _, withCL := range []bool{false, true} {
			url := fmt.Sprintf("http://%s/?piece=%d", addr, piece)
			if withCL {
				url += "&cl"
			}
			resp, err := cl.Get(url)
			check(fmt.Sprintf("GET, written in pieces of %d, Content-Length set %v", piece, withCL), resp, err, !withCL)
		}
	}
	resp, err := cl.Post("http://"+addr+"/", "application/octet-stream", bytes.NewReader(data))
	check("POST 1 MiB with a Content-Length, echoed", resp, err, true)
	resp, err = cl.Post("http://"+addr+"/", "application/octet-stream", io.MultiReader(bytes.NewReader(data)))
	check("POST 1 MiB chunked, echoed", resp, err, true)
}

// TestDeepPipeline sends many requests in one write, far more than a read
// buffer holds, and compares with net/http.
func TestDeepPipeline(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	var methods []string
	for i := range 200 {
		if i%3 == 1 {
			fmt.Fprintf(&b, "POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n%03d", i, i)
			methods = append(methods, "POST")
		} else {
			fmt.Fprintf(&b, "GET /%d HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", i, strings.Repeat("p", i))
			methods = append(methods, "GET")
		}
	}
	want := make([]int, len(methods))
	for i := range want {
		want[i] = 200
	}
	runDiffCase(t, diffCase{
		name: "200 pipelined requests", steps: one(b.String(), methods...),
		want: want, open: true, calls: len(methods),
		check: func(t *testing.T, o outcome) {
			for i, r := range o.resps {
				if !strings.Contains(r.body, fmt.Sprintf(" /%d ", i)) {
					t.Fatalf("answer %d is %q: out of order", i, r.body)
				}
			}
		},
	})
}

func TestBodyNotAllowed(t *testing.T) {
	t.Parallel()
	type res struct {
		n   int
		err error
	}
	got := make(chan res, 1)
	addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/")); code != 0 {
			w.WriteHeader(code)
		}
		n, err := io.WriteString(w, "body")
		got <- res{n, err}
	}))
	for _, c := range []struct {
		method, path string
		want         res
	}{
		{"HEAD", "/", res{4, nil}},
		{"GET", "/204", res{0, http.ErrBodyNotAllowed}},
		{"GET", "/304", res{0, http.ErrBodyNotAllowed}},
	} {
		cl := dial(t, addr)
		req := c.method + " " + c.path + " HTTP/1.1\r\nHost: x\r\n\r\n"
		cl.write(req)
		resp, body := cl.mustResponse(c.method, req)
		r := recv(t, got, "the handler")
		if r.n != c.want.n || !errors.Is(r.err, c.want.err) {
			t.Errorf("%s %s: Write returned %d, %v; want %d, %v (as net/http)", c.method, c.path, r.n, r.err, c.want.n, c.want.err)
		}
		if body != "" {
			t.Errorf("%s %s: answered %s with body %q", c.method, c.path, resp.Status, body)
		}
		cl.expectOpen(c.method + " " + c.path)
	}
}

func TestWriteAfterHijack(t *testing.T) {
	t.Parallel()
	type res struct {
		n              int
		err, flushErr  error
		conn           net.Conn
		hijackErr      error
		handlerWritten chan struct{}
	}
	got := make(chan res, 1)
	addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			got <- res{hijackErr: err}
			return
		}
		_, _ = rw.WriteString("raw")
		_ = rw.Flush()
		w.WriteHeader(http.StatusInternalServerError)
		n, werr := w.Write([]byte("through the ResponseWriter"))
		ferr := http.NewResponseController(w).Flush()
		got <- res{n: n, err: werr, flushErr: ferr, conn: conn}
	}))
	c := dial(t, addr)
	c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	r := recv(t, got, "the handler")
	if r.hijackErr != nil {
		t.Fatalf("Hijack: %v", r.hijackErr)
	}
	_ = r.conn.Close()
	if r.n != 0 || !errors.Is(r.err, http.ErrHijacked) {
		t.Errorf("Write after Hijack returned %d, %v; want 0, http.ErrHijacked", r.n, r.err)
	}
	all, _ := io.ReadAll(c.br)
	if string(all) != "raw" {
		t.Errorf("the client of a hijacked connection read %q, want only the hijacker's \"raw\"", all)
	}
}

func TestUpgrade(t *testing.T) {
	t.Parallel()

	t.Run("101 written then Hijack", func(t *testing.T) {
		t.Parallel()
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Upgrade", "echo")
			w.Header().Set("Connection", "Upgrade")
			w.WriteHeader(http.StatusSwitchingProtocols)
			conn, rw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(ioTimeout))
			line, err := rw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = rw.WriteString("echo: " + line)
			_ = rw.Flush()
		}))
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
		c.write(req + "first line\n")
		// The head of the 101 answer; what follows stays in c.br.
		resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("sent %q: %v", req, err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "echo" {
			t.Fatalf("got %s with Upgrade %q, want 101 Switching Protocols, Upgrade: echo", resp.Status, resp.Header.Get("Upgrade"))
		}
		line, err := c.br.ReadString('\n')
		if err != nil || line != "echo: first line\n" {
			t.Fatalf("after the 101: read %q, %v; want the echo of the line sent with the request", line, err)
		}
	})

	t.Run("WebSocket echo with gorilla/websocket", func(t *testing.T) {
		t.Parallel()
		up := websocket.Upgrader{}
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			_ = ws.SetReadDeadline(time.Now().Add(ioTimeout))
			for {
				mt, msg, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if err := ws.WriteMessage(mt, append([]byte("echo: "), msg...)); err != nil {
					return
				}
			}
		}))
		d := websocket.Dialer{HandshakeTimeout: ioTimeout, NetDial: func(network, a string) (net.Conn, error) {
			return net.DialTimeout(network, a, ioTimeout)
		}}
		ws, resp, err := d.Dial("ws://"+addr+"/ws", nil)
		if err != nil {
			t.Fatalf("WebSocket handshake through h1: %v (response %v)", err, resp)
		}
		defer ws.Close()
		_ = ws.SetReadDeadline(time.Now().Add(ioTimeout))
		for i := range 3 {
			msg := strings.Repeat(strconv.Itoa(i), 1+i*40000)
			if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			_, got, err := ws.ReadMessage()
			if err != nil || string(got) != "echo: "+msg {
				t.Fatalf("message %d of %d bytes: echo %d bytes, %v", i, len(msg), len(got), err)
			}
		}
	})
}

func TestCloseCutsRequestsInFlight(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		wait(release)
	})}
	addr := startH1(t, s)
	c := dial(t, addr)
	c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	recv(t, started, "the handler to start")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	c.expectClosed("a connection whose request was in flight when Close was called")
}

// flakyListener fails its first Accept calls with a temporary error.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
	err   error
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "accept timed out (test)" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

func TestAcceptErrors(t *testing.T) {
	t.Parallel()

	t.Run("a temporary error is logged and retried", func(t *testing.T) {
		t.Parallel()
		var logs lockedBuffer
		ln := &flakyListener{Listener: listen(t), err: timeoutError{}}
		ln.fails.Store(3)
		s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ErrorLog: log.New(&logs, "", 0)}
		done := make(chan error, 1)
		go func() { done <- s.Serve(ln) }()
		defer func() {
			_ = s.Close()
			recv(t, done, "Serve to return")
		}()
		c := dial(t, ln.Addr().String())
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		if resp, _ := c.mustResponse("GET", req); resp.StatusCode != http.StatusOK {
			t.Fatalf("got %s after accept errors", resp.Status)
		}
		if n := strings.Count(logs.String(), "accept timed out (test)"); n != 3 {
			t.Errorf("logged %d accept errors, want 3:\n%s", n, logs.String())
		}
	})

	t.Run("another error ends Serve and closes the listener", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("listener broken (test)")
		inner := listen(t)
		ln := &flakyListener{Listener: inner, err: boom}
		ln.fails.Store(1)
		s := &Server{Handler: http.NotFoundHandler()}
		if err := s.Serve(ln); !errors.Is(err, boom) {
			t.Errorf("Serve returned %v, want the listener's error", err)
		}
		if _, err := net.DialTimeout("tcp", inner.Addr().String(), time.Second); err == nil {
			t.Errorf("the listener is still open after Serve returned")
		}
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown after Serve failed: %v", err)
		}
	})
}

func TestNilHandlerIsNotFound(t *testing.T) {
	t.Parallel()
	addr := startH1(t, &Server{})
	c := dial(t, addr)
	const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	c.write(req)
	if resp, _ := c.mustResponse("GET", req); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("Server without a Handler answered %s, want 404", resp.Status)
	}
}

func TestRequestFields(t *testing.T) {
	t.Parallel()
	type fields struct {
		remote, uri, host, proto string
		bodyNil                  bool
		bodyRead                 string
		tls                      bool
		header                   http.Header
	}
	got := make(chan fields, 1)
	addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := fields{remote: r.RemoteAddr, uri: r.RequestURI, host: r.Host, proto: r.Proto, bodyNil: r.Body == nil, tls: r.TLS != nil, header: r.Header}
		if r.Body != nil {
			b, err := io.ReadAll(r.Body)
			f.bodyRead = fmt.Sprintf("%q %v", b, err)
		}
		got <- f
	}))
	c := dial(t, addr)
	const req = "GET /p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
	c.write(req)
	c.mustResponse("GET", req)
	f := recv(t, got, "the handler")
	if f.remote != c.c.LocalAddr().String() || f.uri != "/p?q=1" || f.host != "example.com:8080" || f.proto != "HTTP/1.1" ||
		f.bodyNil || f.bodyRead != `"" <nil>` || f.tls {
		t.Errorf("request fields %+v; want RemoteAddr %s, the target, the Host, a readable empty body, no TLS", f, c.c.LocalAddr())
	}
	if h := f.header; len(h["X-A"]) != 2 || h.Get("Host") != "" {
		t.Errorf("request headers %v: want X-A twice and no Host (as net/http)", h)
	}
}

// TestHostless checks the Host a handler sees for each request without
// one: HTTP/1.1 is refused (RFC 9112 section 3.2); HTTP/1.0, where Host is
// optional, gets the address the client connected to, so that a proxy
// behind the server never fills it with its backend's address.
func TestHostless(t *testing.T) {
	t.Parallel()
	addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Host)
	}))
	for _, c := range []struct {
		name, raw  string
		wantStatus int
		wantHost   string
	}{
		{"HTTP/1.0 without Host", "GET /a HTTP/1.0\r\n\r\n", 200, addr},
		{"HTTP/1.0 with an empty Host", "GET /a HTTP/1.0\r\nHost:\r\n\r\n", 200, addr},
		{"HTTP/1.0 with a Host", "GET /a HTTP/1.0\r\nHost: shop.example\r\n\r\n", 200, "shop.example"},
		{"HTTP/1.0 absolute form", "GET http://shop.example/a HTTP/1.0\r\n\r\n", 200, "shop.example"},
		{"HTTP/1.0 with a body, without Host", "POST /a HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi", 200, addr},
		{"HTTP/1.1 without Host", "GET /a HTTP/1.1\r\n\r\n", 400, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := dial(t, addr)
			cl.write(c.raw)
			resp, body := cl.mustResponse(methodOf(c.raw), c.raw)
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("got %s %q, want %d", resp.Status, body, c.wantStatus)
			}
			if c.wantStatus == 200 && body != c.wantHost {
				t.Errorf("the handler saw Host %q, want %q", body, c.wantHost)
			}
		})
	}
}
