package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/fleet"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/supervisor"
)

// waitTimeout bounds every call of these tests; it is a failure deadline,
// not a pacing delay.
const waitTimeout = 20 * time.Second

const testToken = "0123456789abcdef0123"

// bench is a real Engine, with the test binary as its app, shown by a
// dashboard served on an httptest server.
type bench struct {
	t    *testing.T
	root string
	eng  *deploy.Engine
	dash *Server
	srv  *httptest.Server
}

func newBench(t *testing.T) *bench {
	t.Helper()
	root := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	toml := fmt.Sprintf(`data_dir = "data"
[app]
name = "shop"
command = %s
instances = 1
stop_timeout = "5s"
[app.env]
%s = "1"
GORACE = "atexit_sleep_ms=0"
[app.health]
path = "/healthz"
interval = "50ms"
healthy_after = 1
boot_timeout = "10s"
[proxy]
listen = "127.0.0.1:0"
drain_timeout = "2s"
`, strconv.Quote("'"+exe+"'"), appEnv)
	if err := os.WriteFile(filepath.Join(root, "cutover.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(root, "cutover.toml"))
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(cfg.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	px := proxy.New(proxy.Options{App: cfg.App.Name})
	hub := NewHub()
	eng, err := deploy.New(deploy.Options{Config: cfg, Store: store, Proxy: px, Processes: supervisor.Groups{}, Observe: hub.Observe("shop"),
		NewFleet: func(o deploy.FleetOptions) deploy.Fleet {
			return fleet.New(fleet.Options{Config: cfg, Store: store, Proxy: px, Releases: o.Releases,
				StateFailed: o.StateFailed, Note: o.Note})
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := eng.StopAll(ctx); err != nil {
			t.Errorf("stop instances: %v", err)
		}
		eng.Close()
	})
	if err := eng.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := &bench{t: t, root: root, eng: eng}
	b.dash = New(func() []App { return []App{{Name: "shop", Engine: eng, Proxy: px}} }, hub, testToken, slog.New(slog.DiscardHandler))
	b.srv = httptest.NewServer(b.dash)
	t.Cleanup(b.srv.Close)
	return b
}

// deploy deploys a release labelled name and waits for its end.
func (b *bench) deploy(name string) string {
	b.t.Helper()
	dir := filepath.Join(b.root, "src", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte(name+"\n"), 0o644); err != nil {
		b.t.Fatal(err)
	}
	run, err := b.eng.Start(deploy.Request{Source: dir})
	if err != nil {
		b.t.Fatalf("deploy %s: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	rel, err := run.Wait(ctx)
	if err != nil {
		b.t.Fatalf("deploy %s: %v", name, err)
	}
	return rel
}

// client returns an HTTP client that follows no redirect.
func noRedirect() *http.Client {
	return &http.Client{Timeout: waitTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (b *bench) do(method, path, cookie string, hdr map[string]string, body string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect().Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, string(data)
}

// login logs in with token and returns the session cookie's value.
func (b *bench) login(token string) string {
	b.t.Helper()
	resp, body := b.do("GET", "/?token="+url.QueryEscape(token), "", nil, "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		b.t.Fatalf("login: %s, Location %q, want 303 to /: %s", resp.Status, resp.Header.Get("Location"), body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				b.t.Errorf("session cookie HttpOnly=%v SameSite=%v, want HttpOnly and Strict", c.HttpOnly, c.SameSite)
			}
			return c.Value
		}
	}
	b.t.Fatalf("login set no %s cookie: %v", CookieName, resp.Header["Set-Cookie"])
	return ""
}

// TestNothingBeforeLogin: without a session, no token or a bad one,
// every endpoint answers 401 with how to log in and nothing about the
// apps; the configured token logs in and the page and snapshot follow.
func TestNothingBeforeLogin(t *testing.T) {
	b := newBench(t)
	rel := b.deploy("v1")
	for _, c := range []struct{ path, cookie string }{
		{"/", ""},
		{"/?token=", ""},
		{"/?token=wrong-token-0123456789", ""},
		{"/?token=" + testToken[:len(testToken)-1], ""},
		{"/api/snapshot", ""},
		{"/events", ""},
		{"/api/snapshot", "forged-session"},
		{"/events", "forged-session"},
	} {
		resp, body := b.do("GET", c.path, c.cookie, nil, "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s (cookie %q): %s, want 401", c.path, c.cookie, resp.Status)
		}
		if strings.Contains(body, "shop") || strings.Contains(body, rel) {
			t.Errorf("GET %s before login shows the app: %s", c.path, body)
		}
		if !strings.Contains(body, "cutover dashboard") || !strings.Contains(body, "?token=") {
			t.Errorf("GET %s: 401 page does not say how to log in: %s", c.path, body)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("GET %s: set cookies %v without a login", c.path, resp.Cookies())
		}
	}
	cookie := b.login(testToken)
	resp, page := b.do("GET", "/", cookie, nil, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="csrf"`) {
		t.Fatalf("GET / logged in: %s: %s", resp.Status, page)
	}
	resp, body := b.do("GET", "/api/snapshot", cookie, nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("snapshot: %s: %s", resp.Status, body)
	}
	var snap Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Apps) != 1 || snap.Apps[0].Name != "shop" || snap.Apps[0].Status == nil || snap.Apps[0].Status.Active != rel {
		t.Fatalf("snapshot: want app shop live on %s, got %s", rel, body)
	}
	a := snap.Apps[0]
	if len(a.Deploys) != 1 || a.Deploys[0].State != state.DeploySucceeded || len(a.Releases) != 1 || a.Status.Weights[rel] == 0 {
		t.Errorf("snapshot: want one succeeded deploy, one release, weight on %s: %s", rel, body)
	}
	if _, ok := a.Now[rel]; !ok {
		t.Errorf("snapshot: no traffic window of %s: %s", rel, body)
	}
}

// TestOneTimeToken: a minted token logs in once, and not after OneTimeTTL.
func TestOneTimeToken(t *testing.T) {
	b := newBench(t)
	tok := b.dash.Mint()
	b.login(tok)
	if resp, _ := b.do("GET", "/?token="+tok, "", nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("second login with a one-time token: %s, want 401", resp.Status)
	}
	now := time.Now()
	b.dash.now = func() time.Time { return now }
	late := b.dash.Mint()
	b.dash.now = func() time.Time { return now.Add(OneTimeTTL + time.Second) }
	if resp, _ := b.do("GET", "/?token="+late, "", nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login with a one-time token after %v: %s, want 401", OneTimeTTL, resp.Status)
	}
}

// csrfOf reads the page's CSRF token.
func (b *bench) csrfOf(cookie string) string {
	b.t.Helper()
	_, page := b.do("GET", "/", cookie, nil, "")
	_, rest, ok := strings.Cut(page, `<meta name="csrf" content="`)
	tok, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 || tok == "" {
		b.t.Fatalf("no CSRF token in the page: %s", page)
	}
	return tok
}

// TestControlCSRF: a control needs the cookie, the session's CSRF header
// and a same-origin Origin; with them it reaches the engine.
func TestControlCSRF(t *testing.T) {
	b := newBench(t)
	b.deploy("v1")
	cookie := b.login(testToken)
	other := b.login(testToken)
	csrf := b.csrfOf(cookie)
	body := `{"app":"shop","action":"rollback"}`
	origin := b.srv.URL
	for _, c := range []struct {
		name   string
		cookie string
		hdr    map[string]string
		want   int
	}{
		{"no cookie", "", map[string]string{CSRFHeader: csrf}, http.StatusUnauthorized},
		{"no CSRF header", cookie, map[string]string{"Origin": origin}, http.StatusForbidden},
		{"wrong CSRF header", cookie, map[string]string{CSRFHeader: "x" + csrf[1:], "Origin": origin}, http.StatusForbidden},
		{"another session's CSRF token", other, map[string]string{CSRFHeader: csrf, "Origin": origin}, http.StatusForbidden},
		{"cross-origin", cookie, map[string]string{CSRFHeader: csrf, "Origin": "http://evil.example"}, http.StatusForbidden},
	} {
		resp, out := b.do("POST", "/api/control", c.cookie, c.hdr, body)
		if resp.StatusCode != c.want {
			t.Errorf("%s: %s, want %d: %s", c.name, resp.Status, c.want, out)
		}
	}
	if p := b.eng.Current(); p != nil && p.Len() > 0 {
		t.Fatalf("a refused control started a deploy")
	}
	// With everything: the engine answers (nothing to pause, and no
	// release to roll back to).
	ok := map[string]string{CSRFHeader: csrf, "Origin": origin}
	resp, out := b.do("POST", "/api/control", cookie, ok, `{"app":"shop","action":"pause"}`)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(out, "no deploy is in flight") {
		t.Errorf("pause without a deploy: %s, want 404 naming no deploy: %s", resp.Status, out)
	}
	resp, out = b.do("POST", "/api/control", cookie, ok, `{"app":"shop","action":"explode"}`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown action: %s, want 400: %s", resp.Status, out)
	}
	resp, out = b.do("POST", "/api/control", cookie, ok, `{"app":"blog","action":"pause"}`)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(out, "shop") {
		t.Errorf("unknown app: %s, want 404 naming the apps: %s", resp.Status, out)
	}
}

// TestEventsStreamDeploy: /events sends a snapshot at once, then each
// event of a deploy as the deploy runs, to its result, then snapshots
// showing the new release live.
func TestEventsStreamDeploy(t *testing.T) {
	b := newBench(t)
	first := b.deploy("v1")
	cookie := b.login(testToken)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", b.srv.URL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("/events: %s %q", resp.Status, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	next := func() (string, string) {
		var kind, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				kind = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = line[len("data: "):]
			case line == "" && kind != "":
				return kind, data
			}
		}
		t.Fatalf("/events ended: %v", sc.Err())
		return "", ""
	}
	if kind, data := next(); kind != "snapshot" || !strings.Contains(data, first) {
		t.Fatalf("first event %s, want a snapshot with %s: %s", kind, first, data)
	}
	deployed := make(chan string, 1)
	go func() {
		dir := filepath.Join(b.root, "src", "v2")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "VERSION"), []byte("v2\n"), 0o644)
		run, err := b.eng.Start(deploy.Request{Source: dir})
		if err != nil {
			deployed <- "start: " + err.Error()
			return
		}
		rel, err := run.Wait(ctx)
		if err != nil {
			deployed <- "wait: " + err.Error()
		}
		deployed <- rel
	}()
	var steps []string
	var result deploy.Event
	for result.Type == "" {
		kind, data := next()
		if kind != "deploy" {
			continue
		}
		var ev deployEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Index == 0 {
			steps = nil // the replay of v1's deploy, then v2's
		}
		if ev.App != "shop" || ev.Kind != "deploy" || ev.Index != len(steps) {
			t.Fatalf("deploy event of app %q kind %q index %d, want shop deploy index %d: %s", ev.App, ev.Kind, ev.Index, len(steps), data)
		}
		steps = append(steps, ev.Event.Type+" "+ev.Event.Step.String()+" "+ev.Event.Status)
		if ev.Event.Type == "result" && ev.Event.Release != first {
			result = ev.Event
		}
	}
	rel := <-deployed
	if !result.OK || result.Release != rel {
		t.Fatalf("result event %+v, want ok for %s; events %q", result, rel, steps)
	}
	for _, want := range []string{"step prepare start", "step boot ok", "step switch ok"} {
		if !strings.Contains(strings.Join(steps, "\n"), want) {
			t.Errorf("no %q among the streamed events %q", want, steps)
		}
	}
	for {
		kind, data := next()
		if kind == "snapshot" {
			var snap Snapshot
			if err := json.Unmarshal([]byte(data), &snap); err != nil {
				t.Fatal(err)
			}
			if snap.Apps[0].Status != nil && snap.Apps[0].Status.Active == rel {
				break
			}
		}
	}
}

// TestFailedLoginLimit: after MaxFailedLogins wrong tokens from one
// address within FailedLoginWindow, its logins get 429 with Retry-After —
// the right token too — until the window ends; then the right token logs
// in again.
func TestFailedLoginLimit(t *testing.T) {
	b := newBench(t)
	now := time.Now()
	b.dash.now = func() time.Time { return now }
	for i := range MaxFailedLogins {
		if resp, _ := b.do("GET", "/?token=wrong-token-0123456789", "", nil, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %s, want 401", i+1, resp.Status)
		}
	}
	resp, body := b.do("GET", "/?token="+url.QueryEscape(testToken), "", nil, "")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "try again in") {
		t.Fatalf("right token after %d wrong ones: %s Retry-After %q: %s; want 429 saying when to try again",
			MaxFailedLogins, resp.Status, resp.Header.Get("Retry-After"), body)
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("a refused login set cookies %v", resp.Cookies())
	}
	now = now.Add(FailedLoginWindow)
	b.login(testToken)
}

// tryLogin sends a login with token from addr (host:port) straight to s.
func tryLogin(s *Server, addr, token string) *http.Response {
	r := httptest.NewRequest("GET", "/?token="+url.QueryEscape(token), nil)
	r.RemoteAddr = addr
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w.Result()
}

// TestFailedLoginLimitIPv6Network: an IPv6 client holds a whole /64 (its
// router hands it out; privacy addresses change within it), so wrong
// tokens from the addresses of one /64 count together: otherwise each of
// its 2^64 addresses gets MaxFailedLogins tries of its own.
func TestFailedLoginLimitIPv6Network(t *testing.T) {
	s := New(func() []App { return nil }, NewHub(), testToken, slog.New(slog.DiscardHandler))
	for i := range MaxFailedLogins {
		addr := fmt.Sprintf("[2001:db8:1:2::%x]:40000", i+1)
		if resp := tryLogin(s, addr, "wrong-token-0123456789"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token %d from %s: %s, want 401", i+1, addr, resp.Status)
		}
	}
	resp := tryLogin(s, "[2001:db8:1:2:ffff::1]:40000", "wrong-token-0123456789")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("wrong token from another address of the same /64 after %d: %s, want 429", MaxFailedLogins, resp.Status)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "2001:db8:1:2::/64") {
		t.Errorf("429 says %q, want it to name the network 2001:db8:1:2::/64", body)
	}
	if resp := tryLogin(s, "[2001:db8:1:3::1]:40000", testToken); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("right token from another /64: %s, want 303 (logged in)", resp.Status)
	}
	for range MaxFailedLogins {
		tryLogin(s, "192.0.2.7:40000", "wrong-token-0123456789")
	}
	if resp := tryLogin(s, "192.0.2.8:40000", testToken); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("right token from 192.0.2.8 after 192.0.2.7 was refused: %s, want 303 (IPv4 addresses count one by one)", resp.Status)
	}
}

// TestFailedLoginLimitSurvivesChurn: a client that used up its wrong
// tokens stays refused for the window however many other addresses fail
// meanwhile: when the table is full it is an address still within its
// allowance that makes room, never one refused. Otherwise a guesser with
// enough addresses would free its own.
func TestFailedLoginLimitSurvivesChurn(t *testing.T) {
	s := New(func() []App { return nil }, NewHub(), testToken, slog.New(slog.DiscardHandler))
	now := time.Now()
	s.now = func() time.Time { return now }
	for range MaxFailedLogins {
		tryLogin(s, "198.51.100.1:40000", "wrong-token-0123456789")
	}
	for i := range 5 * maxTracked {
		tryLogin(s, fmt.Sprintf("10.%d.%d.%d:40000", i>>16&255, i>>8&255, i&255), "wrong-token-0123456789")
	}
	if resp := tryLogin(s, "198.51.100.1:40000", testToken); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("refused address after %d other addresses failed: %s, want 429 until the window ends", 5*maxTracked, resp.Status)
	}
	if n := len(s.failed); n > maxTracked {
		t.Errorf("%d addresses tracked, want at most %d", n, maxTracked)
	}
	// A table of refused addresses only still holds no more than
	// maxTracked: the one whose window ends first makes room.
	for i := range maxTracked + 1 {
		now = now.Add(time.Millisecond)
		for range MaxFailedLogins {
			tryLogin(s, fmt.Sprintf("172.16.%d.%d:40000", i>>8&255, i&255), "wrong-token-0123456789")
		}
	}
	if n := len(s.failed); n > maxTracked {
		t.Errorf("%d refused addresses tracked, want at most %d", n, maxTracked)
	}
	if resp := tryLogin(s, "172.16.16.0:40000", testToken); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the last refused address: %s, want 429", resp.Status)
	}
}

// TestFailedLoginLimitOneTimeToken: an address refused for wrong tokens
// still logs in with a one-time token of `cutover dashboard` (128 random
// bits, from the admin socket: nothing a guesser gets by trying), while
// the configured token stays refused. Anyone who can make a request from
// the operator's address — another local user, a web page the operator's
// browser opens, sending ?token=x to 127.0.0.1 — must not lock the
// operator out of the dashboard.
func TestFailedLoginLimitOneTimeToken(t *testing.T) {
	s := New(func() []App { return nil }, NewHub(), testToken, slog.New(slog.DiscardHandler))
	const addr = "127.0.0.1:40000"
	for range MaxFailedLogins {
		tryLogin(s, addr, "wrong-token-0123456789")
	}
	if resp := tryLogin(s, addr, testToken); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("configured token from a refused address: %s, want 429", resp.Status)
	}
	tok := s.Mint()
	if resp := tryLogin(s, addr, tok); resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Errorf("one-time token from a refused address: %s, want 303 with a session cookie", resp.Status)
	}
	if resp := tryLogin(s, addr, tok); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("spent one-time token from a refused address: %s, want 429", resp.Status)
	}
}
