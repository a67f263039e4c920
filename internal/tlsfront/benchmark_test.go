package tlsfront

import (
	"io"
	"net/http"
	"testing"

	"github.com/cutover/cutover/internal/proxy"
)

// benchmarkTLSGET measures a small GET through the TLS listener and the
// proxy to an httptest backend, on one keep-alive connection, over HTTP/2
// or HTTP/1.1: BenchmarkProxyGET's request, over TLS.
func benchmarkTLSGET(b *testing.B, h2 bool) {
	p := proxy.New(proxy.Options{App: "shop"})
	p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(b, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, world\n") //nolint:errcheck // the client checks
	})}).SetHealthy(true)
	p.SetActive("a")
	f, cert := tlsProxy(b, p)
	c := f.client(b, pool(cert), h2)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Get(shopURL)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the time counts
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

func BenchmarkTLSGETH2(b *testing.B)     { benchmarkTLSGET(b, true) }
func BenchmarkTLSGETHTTP11(b *testing.B) { benchmarkTLSGET(b, false) }
