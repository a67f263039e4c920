package load

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPhasesVersionsAndFailures(t *testing.T) {
	var version atomic.Value
	version.Store("v1")
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Version", version.Load().(string))
		if failing.Load() {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()

	g := Start(Options{URL: srv.URL, Rate: 200, FreshShare: 0.25, MaxDuration: 10 * time.Second}, "one")
	waitFor(t, g, 20)
	version.Store("v2")
	g.Mark("two")
	waitFor(t, g, 60)
	failing.Store(true)
	g.Mark("three")
	waitFor(t, g, 80)
	rep := g.Stop()

	if len(rep.Phases) != 3 {
		t.Fatalf("got %d phases, want 3", len(rep.Phases))
	}
	if rep.Phases[0].Versions["v1"] == 0 || rep.Phases[0].Failed != 0 {
		t.Errorf("phase one = %+v; want v1 answers and no failure", rep.Phases[0])
	}
	if rep.Phases[2].Failed == 0 || rep.Total.Failed != rep.Phases[2].Failed+rep.Phases[1].Failed {
		t.Errorf("failures: phase three %d, total %d; want the 500s counted in phase three",
			rep.Phases[2].Failed, rep.Total.Failed)
	}
	if rep.Total.Requests != len(rep.Results) || rep.Total.P99 < rep.Total.P50 {
		t.Errorf("total = %+v", rep.Total)
	}
}

// waitFor waits until at least n requests finished, bounded in time.
func waitFor(t *testing.T, g *Generator, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if total, _ := g.Count(); total >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fewer than %d requests finished in 10s", n)
}

// TestHost: Options.Host is the Host header of every request.
func TestHost(t *testing.T) {
	var wrong atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "shop.example.com" {
			wrong.Add(1)
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	g := Start(Options{URL: srv.URL, Host: "shop.example.com", Rate: 100, FreshShare: 0.5, MaxDuration: 10 * time.Second}, "host")
	waitFor(t, g, 20)
	rep := g.Stop()
	if n := wrong.Load(); n != 0 || rep.Total.Failed != 0 {
		t.Fatalf("%d of %d requests came with another Host (%d failed)", n, rep.Total.Requests, rep.Total.Failed)
	}
}

// TestTLSAndHTTP2 checks the TLS options: with HTTP2 the keep-alive share
// speaks HTTP/2 to a server that offers it, the fresh share HTTP/1.1;
// without it, everything is HTTP/1.1.
func TestTLSAndHTTP2(t *testing.T) {
	var h2, h1 atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			h2.Add(1)
		} else {
			h1.Add(1)
		}
		w.Write([]byte("ok"))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig

	g := Start(Options{URL: srv.URL, Rate: 200, FreshShare: 0.25, TLS: roots, HTTP2: true, MaxDuration: 10 * time.Second}, "h2")
	waitFor(t, g, 40)
	if rep := g.Stop(); rep.Total.Failed != 0 {
		t.Fatalf("%d failed: %v", rep.Total.Failed, rep.Total.Errors)
	}
	if h2.Load() == 0 || h1.Load() == 0 {
		t.Errorf("HTTP2 with a fresh share: %d requests over HTTP/2, %d over HTTP/1.1; want both", h2.Load(), h1.Load())
	}
	h2.Store(0)
	h1.Store(0)
	g = Start(Options{URL: srv.URL, Rate: 200, TLS: roots, MaxDuration: 10 * time.Second}, "h1")
	waitFor(t, g, 20)
	if rep := g.Stop(); rep.Total.Failed != 0 {
		t.Fatalf("%d failed: %v", rep.Total.Failed, rep.Total.Errors)
	}
	if h2.Load() != 0 || h1.Load() == 0 {
		t.Errorf("without HTTP2: %d requests over HTTP/2, %d over HTTP/1.1; want HTTP/1.1 only", h2.Load(), h1.Load())
	}
}
