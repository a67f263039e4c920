package tlsfront

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// protoHandler answers with the request's protocol and whether it has
// its TLS state.
var protoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%s tls=%v sni=%s", r.Proto, r.TLS != nil, tlsName(r))
})

func tlsName(r *http.Request) string {
	if r.TLS == nil {
		return ""
	}
	return r.TLS.ServerName
}

func get(t testing.TB, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, string(b)
}

func defaultChain(t testing.TB, c testCert) *Chain {
	t.Helper()
	certFile, keyFile := c.write(t, t.TempDir(), "app")
	fc, err := NewFileCerts([]FilePair{{App: "app", Default: true, CertFile: certFile, KeyFile: keyFile,
		CertKey: "app.tls_cert", KeyKey: "app.tls_key"}}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	return &Chain{Sources: []CertSource{fc}}
}

// TestALPN checks that a client asking for h2 gets HTTP/2, one asking for
// http/1.1 (or nothing) gets cutover's HTTP/1.1 server, and that both see
// Request.TLS.
func TestALPN(t *testing.T) {
	cert := newCert(t, "shop", "shop.example.com")
	f := startFront(t, protoHandler, defaultChain(t, cert))
	roots := pool(cert)

	_, body := get(t, f.client(t, roots, true), "https://shop.example.com/")
	if want := "HTTP/2.0 tls=true sni=shop.example.com"; body != want {
		t.Errorf("h2 client: got %q, want %q", body, want)
	}
	_, body = get(t, f.client(t, roots, false), "https://shop.example.com/")
	if want := "HTTP/1.1 tls=true sni=shop.example.com"; body != want {
		t.Errorf("http/1.1 client: got %q, want %q", body, want)
	}

	// No ALPN at all: HTTP/1.1.
	conn, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: roots, ServerName: "shop.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "" {
		t.Errorf("negotiated %q without ALPN", p)
	}
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n")
	b, _ := io.ReadAll(conn) //nolint:errcheck // what was read is checked
	if !strings.Contains(string(b), "\r\nHTTP/1.1 tls=true sni=shop.example.com\r\n") {
		t.Errorf("no-ALPN client got %q", b)
	}
}

// TestDefaults checks the modern defaults: TLS 1.1 is refused, a session
// is resumed.
func TestDefaults(t *testing.T) {
	cert := newCert(t, "shop", "shop.example.com")
	f := startFront(t, protoHandler, defaultChain(t, cert))
	_, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: pool(cert), ServerName: "shop.example.com", MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Error("a TLS 1.1 handshake succeeded")
	}
	cache := tls.NewLRUClientSessionCache(4)
	for i := range 2 {
		conn, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: pool(cert), ServerName: "shop.example.com",
			ClientSessionCache: cache, MaxVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		st := conn.ConnectionState()
		conn.Close()
		if i == 1 && !st.DidResume {
			t.Error("the second connection did not resume the session")
		}
	}
}

// TestHandshakeTimeout checks that a client that connects and sends
// nothing is dropped after HandshakeTimeout, and counted open meanwhile.
func TestHandshakeTimeout(t *testing.T) {
	cert := newCert(t, "shop", "shop.example.com")
	f := startFront(t, protoHandler, defaultChain(t, cert))
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(waitLimit)) //nolint:errcheck // the read reports it
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("the server sent something to a silent client")
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Errorf("silent client dropped after %v, want about 2s", d)
	}
	// The server counts the connection closed just after closing it.
	waitNoConns(t, f.srv)
}

// waitNoConns waits until srv counts no open connection.
func waitNoConns(t *testing.T, srv *Server) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		_, now := srv.TakePeakConns()
		if now == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still counted open", now)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShutdownH2 checks that Shutdown lets an HTTP/2 request in flight
// finish, and that the connections are counted closed after.
func TestShutdownH2(t *testing.T) {
	cert := newCert(t, "shop", "shop.example.com")
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done") //nolint:errcheck // the client checks
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &front{addr: ln.Addr().String()}
	h1s := newTestH1(h)
	f.srv = NewServer(Options{H1: h1s, Handler: h, Certs: defaultChain(t, cert)})
	served := make(chan error, 1)
	go func() { served <- f.srv.Serve(ln) }()
	c := f.client(t, pool(cert), true)
	got := make(chan string, 1)
	go func() {
		resp, err := c.Get("https://shop.example.com/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body) //nolint:errcheck // compared
		resp.Body.Close()
		got <- resp.Proto + " " + string(b)
	}()
	<-started
	if peak, now := f.srv.TakePeakConns(); peak != 1 || now != 1 {
		t.Errorf("peak %d now %d, want 1 1", peak, now)
	}
	shut := make(chan error, 1)
	go func() { shut <- f.srv.Shutdown(t.Context()) }()
	time.Sleep(100 * time.Millisecond)
	close(release)
	if s := <-got; s != "HTTP/2.0 done" {
		t.Errorf("request in flight at shutdown got %q", s)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("serve: %v", err)
	}
	c.CloseIdleConnections()
	waitNoConns(t, f.srv)
}

// TestNoErrorLog checks that a Server built without any ErrorLog logs a
// temporary accept error to the standard logger rather than panicking,
// and returns a permanent one.
func TestNoErrorLog(t *testing.T) {
	h1s := newTestH1(protoHandler)
	h1s.ErrorLog = nil
	srv := NewServer(Options{H1: h1s, Handler: protoHandler, Certs: &Chain{}})
	defer srv.Close()
	var buf strings.Builder
	log.SetOutput(&buf)
	defer log.SetOutput(os.Stderr)
	errPermanent := errors.New("permanent")
	err := srv.Serve(&failingListener{errs: []error{timeoutError{}, errPermanent}})
	if !errors.Is(err, errPermanent) {
		t.Errorf("Serve: %v, want the permanent error", err)
	}
	if !strings.Contains(buf.String(), "tls: accept error") {
		t.Errorf("standard log got %q", buf.String())
	}
}

// failingListener's Accept returns its errors in turn.
type failingListener struct{ errs []error }

func (l *failingListener) Accept() (net.Conn, error) {
	err := l.errs[0]
	l.errs = l.errs[1:]
	return nil, err
}
func (l *failingListener) Close() error   { return nil }
func (l *failingListener) Addr() net.Addr { return dummyAddr{} }

type timeoutError struct{}

func (timeoutError) Error() string   { return "timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
