package h1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
)

// The same handler behind h1 and behind net/http's server, driven by
// keep-alive clients over loopback: run both in one go to compare
// (go test -bench Serve -benchmem ./internal/h1).

func BenchmarkServeH1(b *testing.B) {
	benchmarkServe(b, func(ln net.Listener, h http.Handler) (func() error, func()) {
		srv := &Server{Handler: h}
		return func() error { return srv.Serve(ln) }, func() { srv.Close() }
	})
}

func BenchmarkServeNetHTTP(b *testing.B) {
	benchmarkServe(b, func(ln net.Listener, h http.Handler) (func() error, func()) {
		srv := &http.Server{Handler: h}
		return func() error { return srv.Serve(ln) }, func() { srv.Close() }
	})
}

func benchmarkServe(b *testing.B, start func(net.Listener, http.Handler) (serve func() error, stop func())) {
	body := []byte("Hello, World!")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Header()["Content-Length"] = []string{"13"}
		w.Write(body)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	serve, stop := start(ln, h)
	served := make(chan error, 1)
	go func() { served <- serve() }()
	b.Cleanup(func() {
		stop()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			b.Errorf("serve: %v", err)
		}
	})
	const request = "GET /bench?x=1 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for pb.Next() {
			if _, err := io.WriteString(c, request); err != nil {
				b.Error(err)
				return
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
