package daemon

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
)

// TestDashboardLoginThroughAPI: with [dashboard] listen unset, the admin
// API's login call opens the dashboard on a loopback port and returns a
// one-time URL that logs a browser in once; the dashboard then shows the
// app, and the deploy's steps on /events.
func TestDashboardLoginThroughAPI(t *testing.T) {
	root, err := os.MkdirTemp("", "cutover-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	cfg := writeConfig(t, root)
	start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	client := api.NewClient(cfg.SocketPath())
	t.Cleanup(func() {
		// Stop the instances: a daemon that just ends leaves them running.
		sctx, scancel := context.WithTimeout(context.Background(), waitTimeout)
		defer scancel()
		if err := client.Stop(sctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	src := filepath.Join(root, "src", "v1")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "VERSION"), []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := client.Deploy(ctx, deploy.Request{Source: src}, nil)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}

	login, err := client.DashboardLogin(ctx)
	if err != nil {
		t.Fatalf("dashboard login: %v", err)
	}
	u, err := url.Parse(login)
	if err != nil || !strings.HasPrefix(u.Host, "127.0.0.1:") || u.Query().Get("token") == "" {
		t.Fatalf("login URL %q: want http://127.0.0.1:PORT/?token=…", login)
	}
	base := "http://" + u.Host
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: waitTimeout}
	read := func(c *http.Client, path string) (int, string) {
		t.Helper()
		resp, err := c.Get(path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := read(&http.Client{Timeout: waitTimeout}, base+"/api/snapshot"); code != http.StatusUnauthorized || strings.Contains(body, res.Release) {
		t.Errorf("snapshot before login: %d %s, want 401 showing nothing", code, body)
	}
	if code, body := read(browser, login); code != http.StatusOK || !strings.Contains(body, `name="csrf"`) {
		t.Fatalf("login URL: %d, want the page: %s", code, body)
	}
	if code, _ := read(&http.Client{Timeout: waitTimeout}, login); code != http.StatusUnauthorized {
		t.Errorf("login URL used twice: %d, want 401", code)
	}
	if code, body := read(browser, base+"/api/snapshot"); code != http.StatusOK || !strings.Contains(body, res.Release) {
		t.Errorf("snapshot: %d, want the live release %s: %s", code, res.Release, body)
	}
	// The daemon wires the engine's events to the dashboard: the deploy
	// done before the page opened is replayed on /events.
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 0, 1<<16)
	for !strings.Contains(string(buf), `"type":"result"`) {
		chunk := make([]byte, 4096)
		n, err := resp.Body.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err != nil {
			t.Fatalf("/events ended before the deploy's result: %v: %s", err, buf)
		}
	}
	if !strings.Contains(string(buf), `"step":"switch"`) {
		t.Errorf("/events: no switch step of the deploy: %s", buf)
	}
}
