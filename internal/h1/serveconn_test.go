package h1

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestServeConnTLS checks that a connection handed over with ServeConn
// after its TLS handshake is served like an accepted one, with every
// request's Request.TLS set (on the fast path and the full parser's), and
// that after Shutdown a connection handed over is closed unserved.
func TestServeConnTLS(t *testing.T) {
	// httptest's certificate, for its client's trust.
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	defer ts.Close()
	cfg := ts.TLS.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil || !r.TLS.HandshakeComplete {
				fmt.Fprint(w, "no TLS state")
				return
			}
			fmt.Fprintf(w, "%s %s", r.Method, r.TLS.NegotiatedProtocol)
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	ln := listen(t)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, cfg)
				if tc.Handshake() != nil {
					tc.Close()
					return
				}
				s.ServeConn(tc)
			}()
		}
	}()
	client := ts.Client()
	client.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"http/1.1"}
	url := "https://" + ln.Addr().String() + "/"
	for _, method := range []string{"GET", "POST"} { // POST: http.ReadRequest's path
		req, _ := http.NewRequest(method, url, nil) //nolint:errcheck // a valid URL
		if method == "POST" {
			req.Body = io.NopCloser(io.LimitReader(zeros{}, 10))
			req.ContentLength = 10
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body) //nolint:errcheck // compared
		resp.Body.Close()
		if want := method + " http/1.1"; string(b) != want {
			t.Errorf("%s: got %q, want %q", method, b, want)
		}
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	done := make(chan struct{})
	go func() { s.ServeConn(b); close(done) }()
	<-done
	if _, err := a.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err == nil {
		t.Error("a connection handed over after Shutdown was not closed")
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
