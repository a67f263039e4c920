package h2

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// waitLimit bounds every wait of these tests.
const waitLimit = 10 * time.Second

// testTLS is a self-signed certificate for 127.0.0.1, made once.
var testTLS = sync.OnceValues(func() (*tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "h2 test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
})

// testServer serves an h2.Server on a TLS listener, as package tlsfront
// hands it connections.
type testServer struct {
	srv  *Server
	addr string
	// writes counts the Write calls on the accepted connections (below
	// TLS: one per TLS record batch the server writes).
	writes atomic.Int64
	wg     sync.WaitGroup
}

// startServer serves h; cfg, when set, adjusts the Server before it
// starts. The server is closed when the test ends.
func startServer(t testing.TB, h http.Handler, cfg func(*Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := testTLS()
	ts := &testServer{
		srv:  &Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)},
		addr: ln.Addr().String(),
	}
	if cfg != nil {
		cfg(ts.srv)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"h2"}}
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		for {
			rw, err := ln.Accept()
			if err != nil {
				return
			}
			ts.wg.Add(1)
			go func() {
				defer ts.wg.Done()
				tc := tls.Server(&countingConn{Conn: rw, n: &ts.writes}, conf)
				if err := tc.HandshakeContext(context.Background()); err != nil {
					_ = tc.Close()
					return
				}
				ts.srv.ServeConn(tc)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		_ = ts.srv.Close()
		ts.wg.Wait()
	})
	return ts
}

// countingConn counts its Write calls.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// client returns an HTTP/2 client of ts.
func (ts *testServer) client(t testing.TB) *http.Client {
	t.Helper()
	_, roots := testTLS()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitLimit}
}

func (ts *testServer) url() string { return "https://" + ts.addr + "/" }

// rawConn is a client speaking frames to ts, for what http.Client does
// not do.
type rawConn struct {
	t    testing.TB
	tc   *tls.Conn
	fr   *http2.Framer
	henc *hpack.Encoder
	hbuf []byte
}

// dial opens a connection to ts and does the preface: the client's
// SETTINGS (settings), the server's SETTINGS read and both acknowledged.
func (ts *testServer) dial(t testing.TB, settings ...http2.Setting) *rawConn {
	t.Helper()
	_, roots := testTLS()
	tc, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tc.Close() })
	_ = tc.SetDeadline(time.Now().Add(waitLimit))
	if _, err := io.WriteString(tc, clientPreface); err != nil {
		t.Fatal(err)
	}
	c := &rawConn{t: t, tc: tc, fr: http2.NewFramer(tc, tc)}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.henc = hpack.NewEncoder(&sliceWriter{&c.hbuf})
	if err := c.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	// The server's SETTINGS, WINDOW_UPDATE, and the ack of ours, in some
	// order.
	sawSettings, sawAck := false, false
	for !sawSettings || !sawAck {
		f := c.read()
		if sf, ok := f.(*http2.SettingsFrame); ok {
			if sf.IsAck() {
				sawAck = true
			} else {
				sawSettings = true
				if err := c.fr.WriteSettingsAck(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return c
}

type sliceWriter struct{ b *[]byte }

func (w *sliceWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

// read reads the next frame, failing the test on error.
func (c *rawConn) read() http2.Frame {
	c.t.Helper()
	f, err := c.fr.ReadFrame()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

// readUntil reads frames until keep returns true for one, and returns it;
// the frames before are skipped.
func (c *rawConn) readUntil(keep func(http2.Frame) bool) http2.Frame {
	c.t.Helper()
	for {
		f := c.read()
		if keep(f) {
			return f
		}
	}
}

// headers sends a HEADERS frame on stream id with fields (name, value
// pairs, pseudo-fields first).
func (c *rawConn) headers(id uint32, end bool, fields ...string) {
	c.t.Helper()
	c.hbuf = c.hbuf[:0]
	for i := 0; i < len(fields); i += 2 {
		_ = c.henc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf, EndStream: end, EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

// get sends a GET of path on stream id.
func (c *rawConn) get(id uint32, path string, extra ...string) {
	c.t.Helper()
	c.headers(id, true, append([]string{":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", path}, extra...)...)
}

// rstCode returns the error code of the RST_STREAM for id that comes
// next (skipping other frames), or of a GOAWAY, with which frame it was.
func (c *rawConn) rstCode(id uint32) (string, http2.ErrCode) {
	c.t.Helper()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatalf("waiting for RST_STREAM on %d: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return "RST_STREAM", f.ErrCode
			}
		case *http2.GoAwayFrame:
			return "GOAWAY", f.ErrCode
		}
	}
}

// isEOF reports whether err is the end of a connection.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
