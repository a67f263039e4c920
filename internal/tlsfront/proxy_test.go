package tlsfront

// What the proxy does, over the TLS listener with HTTP/2 and HTTP/1.1
// clients: the same as on the plain listener (see package proxy's tests),
// with the requests' TLS state telling the app and the cookie.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cutover/cutover/internal/proxy"
)

// backend starts an httptest server with h and returns its address.
func backend(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// named answers with its release's name and what it was told of the
// client's connection.
func named(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s proto=%s", name, r.Header.Get("X-Forwarded-Proto"))
	}
}

// tlsProxy serves p behind a Router on a TLS listener with a default
// certificate for shop.example.com; it returns the listener and the
// certificate.
func tlsProxy(t testing.TB, p *proxy.Proxy) (*front, testCert) {
	t.Helper()
	cert := newCert(t, "shop", "shop.example.com")
	rt := proxy.NewRouter(proxy.RouterOptions{})
	if err := rt.SetRoutes([]proxy.Route{{App: "shop", Default: true, Proxy: p}}); err != nil {
		t.Fatal(err)
	}
	return startFront(t, rt, defaultChain(t, cert)), cert
}

// both runs f with an HTTP/2 client and an HTTP/1.1 one.
func both(t *testing.T, f func(t *testing.T, h2 bool)) {
	for _, h2 := range []bool{true, false} {
		name := "h2"
		if !h2 {
			name = "http1.1"
		}
		t.Run(name, func(t *testing.T) { f(t, h2) })
	}
}

func do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

func newReq(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

const shopURL = "https://shop.example.com/"

// TestProxyPinsOverTLS checks the version cookie over TLS: marked Secure,
// and a client that carries it stays on its release while two serve;
// the app is told X-Forwarded-Proto: https.
func TestProxyPinsOverTLS(t *testing.T) {
	both(t, func(t *testing.T, h2 bool) {
		p := proxy.New(proxy.Options{App: "shop", Sticky: true})
		p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(t, named("a"))}).SetHealthy(true)
		p.AddBackend(proxy.BackendSpec{ID: "b1", Release: "b", Addr: backend(t, named("b"))}).SetHealthy(true)
		p.SetWeights(map[string]int{"a": 50, "b": 50})
		f, cert := tlsProxy(t, p)
		c := f.client(t, pool(cert), h2)

		resp, body := do(t, c, newReq(t, "GET", shopURL, nil))
		wantProto := "HTTP/2.0"
		if !h2 {
			wantProto = "HTTP/1.1"
		}
		if resp.Proto != wantProto {
			t.Errorf("proto %s, want %s", resp.Proto, wantProto)
		}
		rel, _, _ := strings.Cut(body, " ")
		if !strings.HasSuffix(body, "proto=https") {
			t.Errorf("the app was told %q, want proto=https", body)
		}
		sc := resp.Header.Get("Set-Cookie")
		if !strings.Contains(sc, "cutover_release="+rel) || !strings.HasSuffix(sc, "; Secure") {
			t.Fatalf("Set-Cookie %q: want the pin to %s, Secure", sc, rel)
		}
		for i := range 20 {
			req := newReq(t, "GET", shopURL, nil)
			req.Header.Set("Cookie", "cutover_release="+rel)
			if _, body := do(t, c, req); !strings.HasPrefix(body, rel+" ") {
				t.Fatalf("request %d with the pin to %s went to %q", i, rel, body)
			}
		}
		// By the version header as well.
		other := map[string]string{"a": "b", "b": "a"}[rel]
		req := newReq(t, "GET", shopURL, nil)
		req.Header.Set("X-Cutover-Release", other)
		if _, body := do(t, c, req); !strings.HasPrefix(body, other+" ") {
			t.Errorf("request for %s by header went to %q", other, body)
		}
	})
}

// TestProxyPreviewOverTLS checks that the release in preview is reached
// with its token by header and by cookie, and by nothing else.
func TestProxyPreviewOverTLS(t *testing.T) {
	both(t, func(t *testing.T, h2 bool) {
		p := proxy.New(proxy.Options{App: "shop", Sticky: true})
		p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(t, named("a"))}).SetHealthy(true)
		p.AddBackend(proxy.BackendSpec{ID: "b1", Release: "b", Addr: backend(t, named("b"))}).SetHealthy(true)
		p.SetActive("a")
		p.SetPreview("b", "tok")
		f, cert := tlsProxy(t, p)
		c := f.client(t, pool(cert), h2)
		if _, body := do(t, c, newReq(t, "GET", shopURL, nil)); !strings.HasPrefix(body, "a ") {
			t.Errorf("no token: %q", body)
		}
		req := newReq(t, "GET", shopURL, nil)
		req.Header.Set(proxy.PreviewHeader, "tok")
		if _, body := do(t, c, req); !strings.HasPrefix(body, "b ") {
			t.Errorf("token by header: %q", body)
		}
		req = newReq(t, "GET", shopURL, nil)
		req.Header.Set("Cookie", proxy.PreviewCookie+"=tok")
		if _, body := do(t, c, req); !strings.HasPrefix(body, "b ") {
			t.Errorf("token by cookie: %q", body)
		}
		resp, _ := do(t, c, newReq(t, "GET", shopURL+"?"+proxy.PreviewParam+"=tok", nil))
		if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, proxy.PreviewCookie+"=tok") || !strings.HasSuffix(sc, "; Secure") {
			t.Errorf("preview link: Set-Cookie %q, want the token, Secure", sc)
		}
	})
}

// TestProxyHoldOverTLS checks that requests held while no backend is
// healthy are answered once one is, over both protocols.
func TestProxyHoldOverTLS(t *testing.T) {
	both(t, func(t *testing.T, h2 bool) {
		p := proxy.New(proxy.Options{App: "shop", HoldTimeout: waitLimit})
		b := p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(t, named("a"))})
		p.SetActive("a")
		f, cert := tlsProxy(t, p)
		c := f.client(t, pool(cert), h2)
		const n = 5
		got := make(chan string, n)
		for range n {
			go func() {
				resp, err := c.Get(shopURL)
				if err != nil {
					got <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body) //nolint:errcheck // compared
				resp.Body.Close()
				got <- fmt.Sprintf("%d %s", resp.StatusCode, b)
			}()
		}
		time.Sleep(200 * time.Millisecond)
		select {
		case s := <-got:
			t.Fatalf("answered while no backend was healthy: %q", s)
		default:
		}
		b.SetHealthy(true)
		for range n {
			if s := <-got; s != "200 a proto=https" {
				t.Errorf("held request got %q", s)
			}
		}
	})
}

// TestProxyRetryOverTLS checks that an idempotent request whose backend
// refuses the connection is retried on another.
func TestProxyRetryOverTLS(t *testing.T) {
	both(t, func(t *testing.T, h2 bool) {
		p := proxy.New(proxy.Options{App: "shop"})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close()
		p.AddBackend(proxy.BackendSpec{ID: "a0", Release: "a", Addr: dead}).SetHealthy(true)
		p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(t, named("a"))}).SetHealthy(true)
		p.SetActive("a")
		f, cert := tlsProxy(t, p)
		c := f.client(t, pool(cert), h2)
		for i := range 6 {
			if resp, body := do(t, c, newReq(t, "GET", shopURL, nil)); resp.StatusCode != 200 {
				t.Errorf("request %d: %d %q", i, resp.StatusCode, body)
			}
		}
	})
}

// TestProxyDrainOverTLS checks that a long request of a retiring release
// finishes while new requests go to the new release.
func TestProxyDrainOverTLS(t *testing.T) {
	both(t, func(t *testing.T, h2 bool) {
		started, finish := make(chan struct{}), make(chan struct{})
		p := proxy.New(proxy.Options{App: "shop"})
		p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/long" {
				close(started)
				<-finish
			}
			io.WriteString(w, "a") //nolint:errcheck // the client checks
		})}).SetHealthy(true)
		p.AddBackend(proxy.BackendSpec{ID: "b1", Release: "b", Addr: backend(t, named("b"))}).SetHealthy(true)
		p.SetActive("a")
		f, cert := tlsProxy(t, p)
		c := f.client(t, pool(cert), h2)
		long := make(chan string, 1)
		go func() {
			resp, err := c.Get(shopURL + "long")
			if err != nil {
				long <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body) //nolint:errcheck // compared
			resp.Body.Close()
			long <- fmt.Sprintf("%d %s", resp.StatusCode, b)
		}()
		<-started
		p.SetActive("b")
		drained := make(chan proxy.DrainResult, 1)
		go func() { drained <- p.Drain(context.Background(), "a", 0) }()
		if _, body := do(t, c, newReq(t, "GET", shopURL, nil)); !strings.HasPrefix(body, "b ") {
			t.Errorf("new request during the drain went to %q", body)
		}
		close(finish)
		if s := <-long; s != "200 a" {
			t.Errorf("long request of the retiring release got %q", s)
		}
		<-drained
	})
}

// TestProxyStreamingOverTLS checks that what the app flushes reaches the
// client before the response ends.
func TestProxyStreamingOverTLS(t *testing.T) {
	both(t, func(t *testing.T, h2 bool) {
		next := make(chan struct{})
		p := proxy.New(proxy.Options{App: "shop"})
		p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
				<-next
			}
		})}).SetHealthy(true)
		p.SetActive("a")
		f, cert := tlsProxy(t, p)
		c := f.client(t, pool(cert), h2)
		resp, err := c.Get(shopURL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 64)
		for i := range 3 {
			n, err := io.ReadAtLeast(resp.Body, buf, len("data: 0\n\n"))
			if err != nil || string(buf[:n]) != fmt.Sprintf("data: %d\n\n", i) {
				t.Fatalf("event %d: %q, %v", i, buf[:n], err)
			}
			next <- struct{}{}
		}
	})
}

// TestProxyUploadOverTLS checks that a large request body arrives whole,
// streamed or buffered (as the daemon's default, request_buffering), of a
// known length or not (an HTTP/2 body without content-length, an
// HTTP/1.1 chunked one).
func TestProxyUploadOverTLS(t *testing.T) {
	for _, tc := range []struct {
		name          string
		stream, known bool
		size          int
	}{
		{"streamed 16 MiB", true, true, 16 << 20},
		{"buffered 1 MiB", false, true, 1 << 20}, // past the 64 KiB in memory: a temporary file
		{"buffered 1 MiB, length unknown", false, false, 1 << 20},
		{"16 MiB, past the buffer", false, true, 16 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) { testUpload(t, tc.stream, tc.known, tc.size) })
	}
}

func testUpload(t *testing.T, stream, known bool, size int) {
	both(t, func(t *testing.T, h2 bool) {
		p := proxy.New(proxy.Options{App: "shop", StreamRequestBodies: stream})
		p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(t, func(w http.ResponseWriter, r *http.Request) {
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
		})}).SetHealthy(true)
		p.SetActive("a")
		f, cert := tlsProxy(t, p)
		c := f.client(t, pool(cert), h2)
		body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		sum := sha256.Sum256(body)
		var r io.Reader = bytes.NewReader(body)
		if !known {
			r = io.MultiReader(r) // hides the length from the client
		}
		resp, got := do(t, c, newReq(t, "POST", shopURL, r))
		if want := fmt.Sprintf("%d %s", len(body), hex.EncodeToString(sum[:])); resp.StatusCode != 200 || got != want {
			t.Errorf("upload: %d %q, want %q", resp.StatusCode, got, want)
		}
	})
}

// TestProxyTrailersOverTLS checks that a gRPC-like response's trailers
// reach the client, announced or not.
func TestProxyTrailersOverTLS(t *testing.T) {
	both(t, func(t *testing.T, h2 bool) {
		p := proxy.New(proxy.Options{App: "shop"})
		p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "Grpc-Status")
			w.Header().Set("Content-Type", "application/grpc")
			w.WriteHeader(200)
			w.Write([]byte("\x00\x00\x00\x00\x02hi")) //nolint:errcheck // the client checks
			w.(http.Flusher).Flush()
			w.Header().Set("Grpc-Status", "0")
			w.Header().Set(http.TrailerPrefix+"Grpc-Message", "fine")
		})}).SetHealthy(true)
		p.SetActive("a")
		f, cert := tlsProxy(t, p)
		c := f.client(t, pool(cert), h2)
		req := newReq(t, "POST", shopURL+"pkg.Svc/Call", strings.NewReader("x"))
		req.Header.Set("Te", "trailers")
		resp, body := do(t, c, req)
		if body != "\x00\x00\x00\x00\x02hi" {
			t.Errorf("body %q", body)
		}
		if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
			t.Errorf("Grpc-Status trailer %q, want 0 (trailers %v)", got, resp.Trailer)
		}
		if got := resp.Trailer.Get("Grpc-Message"); got != "fine" {
			t.Errorf("Grpc-Message trailer %q, want fine (trailers %v)", got, resp.Trailer)
		}
	})
}

// TestProxyWebSocketOverTLS checks a WebSocket over HTTP/1.1 on the TLS
// listener (wss://), as browsers open one.
func TestProxyWebSocketOverTLS(t *testing.T) {
	up := websocket.Upgrader{}
	p := proxy.New(proxy.Options{App: "shop"})
	p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			c.WriteMessage(mt, append([]byte(r.Header.Get("X-Forwarded-Proto")+" "), m...)) //nolint:errcheck // the client checks
		}
	})}).SetHealthy(true)
	p.SetActive("a")
	f, cert := tlsProxy(t, p)
	d := websocket.Dialer{
		TLSClientConfig: &tls.Config{RootCAs: pool(cert), NextProtos: []string{"http/1.1"}},
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", f.addr)
		},
	}
	c, resp, err := d.Dial("wss://shop.example.com/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.Close()
	for i := range 3 {
		msg := fmt.Sprintf("m%d", i)
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.ReadMessage()
		if err != nil || string(got) != "https "+msg {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
	}
}

// TestH2Multiplexes checks that concurrent HTTP/2 requests share one
// connection to the TLS listener.
func TestH2Multiplexes(t *testing.T) {
	p := proxy.New(proxy.Options{App: "shop"})
	p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(t, named("a"))}).SetHealthy(true)
	p.SetActive("a")
	f, cert := tlsProxy(t, p)
	c := f.client(t, pool(cert), true)
	var mu sync.Mutex
	conns := map[string]bool{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
				mu.Lock()
				conns[i.Conn.LocalAddr().String()] = true
				mu.Unlock()
			}}
			req := newReq(t, "GET", shopURL, nil).WithContext(httptrace.WithClientTrace(context.Background(), trace))
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the connection matters
			resp.Body.Close()
		}()
	}
	wg.Wait()
	if len(conns) > 2 {
		t.Errorf("20 concurrent HTTP/2 requests used %d connections", len(conns))
	}
}
