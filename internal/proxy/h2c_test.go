package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// h2cBackend is an httptest server that speaks HTTP/2 without TLS only
// (as a gRPC server does), and counts its open connections.
type h2cBackend struct {
	srv  *httptest.Server
	addr string
	mu   sync.Mutex
	open map[net.Conn]bool
}

func startH2CBackend(t testing.TB, h http.HandlerFunc) *h2cBackend {
	t.Helper()
	hb := &h2cBackend{open: map[net.Conn]bool{}}
	hb.srv = httptest.NewUnstartedServer(h)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	hb.srv.Config.Protocols = &protos
	hb.srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		hb.mu.Lock()
		defer hb.mu.Unlock()
		switch s {
		case http.StateNew:
			hb.open[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(hb.open, c)
		}
	}
	hb.srv.Start()
	t.Cleanup(hb.srv.Close)
	hb.addr = strings.TrimPrefix(hb.srv.URL, "http://")
	return hb
}

// conns returns how many connections to the backend are open.
func (hb *h2cBackend) conns() int {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return len(hb.open)
}

// waitUntil polls cond until it holds, failing the test after waitLimit.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestH2CBackend checks a request to an h2c backend: it arrives over
// HTTP/2 with the client's target byte for byte and the proxy's headers,
// nothing added (no Accept-Encoding), and its answer, trailers included,
// reaches an HTTP/1.1 client.
func TestH2CBackend(t *testing.T) {
	hb := startH2CBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("backend got %s, want HTTP/2", r.Proto)
		}
		if r.RequestURI != "/a%2fb%7E?x=%41" {
			t.Errorf("target %q, want the client's own %q", r.RequestURI, "/a%2fb%7E?x=%41")
		}
		if v := r.Header.Get("Accept-Encoding"); v != "" {
			t.Errorf("Accept-Encoding %q added", v)
		}
		if r.Header.Get("X-Forwarded-For") != "127.0.0.1" || r.Header.Get("X-Request-Id") == "" {
			t.Errorf("forwarding headers missing: %v", r.Header)
		}
		b, _ := io.ReadAll(r.Body) //nolint:errcheck // compared
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "got "+string(b)) //nolint:errcheck // the client checks
		// Flushed: a body whose length is known when its handler ends is
		// sent with a Content-Length, and an HTTP/1.1 client can then get
		// no trailers (gRPC servers never send one).
		http.NewResponseController(w).Flush() //nolint:errcheck // the client checks
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	})
	p, url := startProxy(t, Options{App: "shop"})
	p.AddBackend(BackendSpec{ID: "a1", Release: "a", Addr: hb.addr, Protocol: H2C}).SetHealthy(true)
	p.SetActive("a")
	req, err := http.NewRequest("POST", url+"/a%2fb%7E?x=%41", io.MultiReader(strings.NewReader("body")))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: waitLimit}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(b) != "got body" {
		t.Fatalf("got %d %q, %v; want 200 %q", resp.StatusCode, b, err, "got body")
	}
	if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
		t.Errorf("trailer Grpc-Status %q, want %q", got, "0")
	}
	if got := resp.Header.Get("X-Cutover-Release"); got != "a" {
		t.Errorf("version header %q, want a", got)
	}
	if st := p.Stats()["a"]; st.Requests != 1 || st.InFlight != 0 {
		t.Errorf("stats %+v, want 1 request, none in flight", st)
	}
}

// TestH2CRemoveBackendClosesConns checks that an h2c backend's
// connections close with it: at once when idle, and when its last stream
// ends otherwise.
func TestH2CRemoveBackendClosesConns(t *testing.T) {
	release := make(chan struct{})
	hb := startH2CBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/long" {
			w.WriteHeader(200)
			http.NewResponseController(w).Flush() //nolint:errcheck // the client checks
			<-release
		}
		io.WriteString(w, "ok") //nolint:errcheck // the client checks
	})
	p, url := startProxy(t, Options{App: "shop"})
	p.AddBackend(BackendSpec{ID: "a1", Release: "a", Addr: hb.addr, Protocol: H2C}).SetHealthy(true)
	p.SetActive("a")
	get := func(path string) {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Error(err)
			return
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck // status checked
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	get("/")
	if n := hb.conns(); n != 1 {
		t.Fatalf("%d connections to the backend after a request, want 1", n)
	}
	p.RemoveBackend("a1")
	waitUntil(t, "the idle connection of a removed backend to close", func() bool { return hb.conns() == 0 })

	p.AddBackend(BackendSpec{ID: "a2", Release: "a", Addr: hb.addr, Protocol: H2C}).SetHealthy(true)
	done := make(chan struct{})
	go func() { defer close(done); get("/long") }()
	waitUntil(t, "the stream in flight", func() bool { return p.Stats()["a"].InFlight == 1 })
	p.RemoveBackend("a2")
	time.Sleep(50 * time.Millisecond)
	if n := hb.conns(); n != 1 {
		t.Fatalf("%d connections while a stream is in flight, want 1", n)
	}
	close(release)
	<-done
	waitUntil(t, "the connection to close once its last stream ended", func() bool { return hb.conns() == 0 })
}

// TestH2CDrainClosesIdle checks that a drain closes an h2c backend's
// connections once its streams are over.
func TestH2CDrainClosesIdle(t *testing.T) {
	hb := startH2CBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }) //nolint:errcheck // the client checks
	p, url := startProxy(t, Options{App: "shop"})
	p.AddBackend(BackendSpec{ID: "a1", Release: "a", Addr: hb.addr, Protocol: H2C}).SetHealthy(true)
	p.SetActive("a")
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := hb.conns(); n != 1 {
		t.Fatalf("%d connections after a request, want 1", n)
	}
	if res := p.Drain(context.Background(), "a", 0); res.Finished != 0 || res.Cut != 0 {
		t.Errorf("drain of an idle release: %+v", res)
	}
	waitUntil(t, "the drained release's connection to close", func() bool { return hb.conns() == 0 })
}

// TestProtocolString checks the names of Protocol, as in cutover.toml.
func TestProtocolString(t *testing.T) {
	for pr, want := range map[Protocol]string{HTTP1: "http1", H2C: "h2c", 7: "Protocol(7)"} {
		if got := pr.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestIsGRPC checks which content types are gRPC's.
func TestIsGRPC(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/grpc": true, "application/grpc+proto": true, "Application/GRPC;charset=x": true,
		"application/grpc-web": false, "application/grpc-web+proto": false, "application/json": false, "": false,
	} {
		h := http.Header{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		if got := isGRPC(h); got != want {
			t.Errorf("isGRPC(%q) = %v, want %v", ct, got, want)
		}
	}
}

// TestGRPCErrorEncoding checks the gRPC form of the proxy's errors.
func TestGRPCErrorEncoding(t *testing.T) {
	for status, want := range map[int]int{400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14, 413: 2, 500: 2} {
		if got := grpcCode(status); got != want {
			t.Errorf("grpcCode(%d) = %d, want %d", status, got, want)
		}
	}
	if got, want := grpcMessage("50% done: é\tx"), "50%25 done: %C3%A9%09x"; got != want {
		t.Errorf("grpcMessage: got %q, want %q", got, want)
	}
}
