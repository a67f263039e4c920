package tlsfront

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/cutover/cutover/internal/proxy"
)

// TestChromiumWebSocketOverH2 has a headless Chromium open
// `new WebSocket("wss://…")` from a page it loaded over HTTP/2 from the
// TLS listener: the WebSocket must arrive at the proxy over HTTP/2 (an
// extended CONNECT on the page's connection, RFC 8441), reach the app as
// an HTTP/1.1 upgrade, and echo. Skipped without a chromium on PATH, or
// in -short mode.
func TestChromiumWebSocketOverH2(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser: not in -short mode")
	}
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no chromium on PATH: .ci/run installs Debian's chromium package")
		}
		t.Skip("no chromium on PATH (apt-get install chromium)")
	}

	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	p := proxy.New(proxy.Options{App: "shop"})
	p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<!doctype html><title>shop</title>") //nolint:errcheck // the browser checks
			return
		}
		seen := r.Method + " " + r.Proto
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
			c.WriteMessage(mt, append([]byte(seen+" "), m...)) //nolint:errcheck // the browser checks
		}
	})}).SetHealthy(true)
	p.SetActive("a")
	cert := newCert(t, "shop", "127.0.0.1")
	rt := proxy.NewRouter(proxy.RouterOptions{})
	if err := rt.SetRoutes([]proxy.Route{{App: "shop", Default: true, Proxy: p}}); err != nil {
		t.Fatal(err)
	}
	// What reached the proxy for /ws, as the TLS listener handed it over.
	var mu sync.Mutex
	var arrived []string
	f := startFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			mu.Lock()
			arrived = append(arrived, r.Method+" "+r.Proto+" "+r.Header.Get(":protocol"))
			mu.Unlock()
		}
		rt.ServeHTTP(w, r)
	}), defaultChain(t, cert))

	spki := sha256.Sum256(cert.cert.RawSubjectPublicKeyInfo)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun,
		// Trust the test's self-signed certificate, by its key.
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, tcancel := context.WithTimeout(ctx, time.Minute)
	defer tcancel()
	origin := "https://" + f.addr
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatalf("open %s in chromium: %v", origin, err)
	}
	proto, err := chromedp.Run(ctx, chromedp.Evaluate[string](`performance.getEntriesByType("navigation")[0].nextHopProtocol`))
	if err != nil || proto != "h2" {
		t.Fatalf("the page came over %q (%v), want h2", proto, err)
	}
	js := `new Promise((resolve, reject) => {
  const ws = new WebSocket("wss://` + f.addr + `/ws");
  const got = [];
  ws.onopen = () => ws.send("one");
  ws.onmessage = (e) => {
    got.push(e.data);
    if (got.length === 1) { ws.send("two"); return; }
    ws.close(1000);
    resolve(got.join("|"));
  };
  ws.onerror = () => reject(new Error("websocket error"));
  setTimeout(() => reject(new Error("no echo within 10s: " + got.join("|"))), 10000);
})`
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("websocket from chromium: %v", err)
	}
	if want := "GET HTTP/1.1 one|GET HTTP/1.1 two"; got != want {
		t.Errorf("echoes in chromium: got %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrived) != 1 || arrived[0] != "CONNECT HTTP/2.0 websocket" {
		t.Errorf("the websocket reached the proxy as %q, want one CONNECT HTTP/2.0 websocket", arrived)
	}
}
