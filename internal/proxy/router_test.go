package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// startRouter serves rt on 127.0.0.1 and returns its base URL. The server
// is closed when the test ends.
func startRouter(t testing.TB, rt *Router) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := rt.NewServer(5*time.Second, 30*time.Second)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close router server: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// appProxy returns the Proxy of an app whose one release (named after
// the app) answers with the app's name, and the app's version cookie
// distinct from the others'.
func appProxy(t testing.TB, app string) *Proxy {
	t.Helper()
	p := New(Options{App: app, Cookie: "cutover_" + app})
	addHealthy(p, app+"-1", "rel-"+app, nameBackend(t, app))
	p.SetActive("rel-" + app)
	return p
}

// getHost sends a GET to url with Host host and returns the status and
// body.
func getHost(t testing.TB, c *http.Client, url, host string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of GET %s (Host %s): %v", url, host, err)
	}
	return resp.StatusCode, string(b)
}

func TestRouterMatch(t *testing.T) {
	a, b, c, d, def := New(Options{Cookie: "a"}), New(Options{Cookie: "b"}), New(Options{Cookie: "c"}),
		New(Options{Cookie: "d"}), New(Options{Cookie: "def"})
	names := map[*Proxy]string{a: "a", b: "b", c: "c", d: "d", def: "default", nil: "none"}
	routes := []Route{
		{App: "a", Hosts: []string{"Example.COM", "www.example.com."}, Proxy: a},
		{App: "b", Hosts: []string{"*.example.com"}, Proxy: b},
		{App: "c", Hosts: []string{"*.api.example.com", "x.y.example.com"}, Proxy: c},
		{App: "d", Hosts: []string{"127.0.0.1", "localhost"}, Proxy: d},
	}
	tests := []struct {
		host        string
		want, wantD string // without and with a default route
	}{
		{"example.com", "a", "a"},
		{"www.example.com", "a", "a"},
		{"EXAMPLE.com", "a", "a"},
		{"example.com.", "a", "a"},
		{"Example.Com.:8080", "a", "a"},
		{"example.com:443", "a", "a"},
		{"shop.example.com", "b", "b"},
		{"a.b.example.com", "b", "b"},     // a wildcard takes any depth
		{"SHOP.Example.Com:80", "b", "b"}, // case and port
		{"v1.api.example.com", "c", "c"},  // the most specific wildcard
		{"a.v1.api.example.com", "c", "c"},
		{"V1.API.example.com.:8080", "c", "c"},               // at any depth
		{"api.example.com", "b", "b"},                        // *.api.example.com is not api.example.com
		{"x.y.example.com", "c", "c"},                        // exact before wildcards
		{"z.y.example.com", "b", "b"},                        //
		{"127.0.0.1:8080", "d", "d"},                         //
		{"localhost", "d", "d"},                              //
		{"example.org", "none", "default"},                   //
		{"xexample.com", "none", "default"},                  // a wildcard matches whole labels
		{"[::1]:8080", "none", "default"},                    //
		{"", "none", "default"},                              //
		{".example.com", "b", "b"},                           // h1 refuses such a Host; harmless here
		{strings.Repeat("A", 70) + ".example.com", "b", "b"}, // longer than the stack buffer
	}
	rt := NewRouter(RouterOptions{})
	for _, withDefault := range []bool{false, true} {
		rs := routes
		if withDefault {
			rs = append(rs[:len(rs):len(rs)], Route{App: "default", Default: true, Proxy: def})
		}
		if err := rt.SetRoutes(rs); err != nil {
			t.Fatalf("SetRoutes: %v", err)
		}
		snap := rt.routes.Load()
		for _, tt := range tests {
			want := tt.want
			if withDefault {
				want = tt.wantD
			}
			if got := names[snap.match(tt.host)]; got != want {
				t.Errorf("default %v: match(%q): got %s, want %s", withDefault, tt.host, got, want)
			}
		}
	}
}

func TestRouterMatchAllocs(t *testing.T) {
	rt := NewRouter(RouterOptions{})
	rs := fiftyRoutes(t)
	if err := rt.SetRoutes(rs); err != nil {
		t.Fatalf("SetRoutes: %v", err)
	}
	snap := rt.routes.Load()
	for _, host := range []string{"app25.example.com", "APP25.Example.com:8080", "x.wild25.example.net.", "unknown.example.org"} {
		if n := testing.AllocsPerRun(100, func() { snap.match(host) }); n != 0 {
			t.Errorf("match(%q): %v allocations, want 0", host, n)
		}
	}
}

// fiftyRoutes returns 50 routes of proxies without backends: app<i> serves
// app<i>.example.com and *.wild<i>.example.net.
func fiftyRoutes(t testing.TB) []Route {
	t.Helper()
	rs := make([]Route, 50)
	for i := range rs {
		app := fmt.Sprintf("app%d", i)
		rs[i] = Route{
			App:   app,
			Hosts: []string{app + ".example.com", fmt.Sprintf("*.wild%d.example.net", i)},
			Proxy: New(Options{App: app, Cookie: "cutover_" + app}),
		}
	}
	return rs
}

func TestRouterSetRoutesRefuses(t *testing.T) {
	a, b := New(Options{Cookie: "a"}), New(Options{Cookie: "b"})
	tests := []struct {
		name   string
		routes []Route
		want   string
	}{
		{"host twice", []Route{{App: "a", Hosts: []string{"x.com"}, Proxy: a}, {App: "b", Hosts: []string{"X.com."}, Proxy: b}}, `apps "a" and "b": host "x.com" is named twice`},
		{"wildcard twice", []Route{{App: "a", Hosts: []string{"*.x.com"}, Proxy: a}, {App: "b", Hosts: []string{"*.X.com"}, Proxy: b}}, `host "*.x.com" is named twice`},
		{"two defaults", []Route{{App: "a", Default: true, Proxy: a}, {App: "b", Default: true, Proxy: b}}, "both are the default"},
		{"same cookie", []Route{{App: "a", Hosts: []string{"x.com"}, Proxy: a}, {App: "b", Hosts: []string{"y.com"}, Proxy: New(Options{Cookie: "a"})}}, `same version cookie "a"`},
		{"app twice", []Route{{App: "a", Hosts: []string{"x.com"}, Proxy: a}, {App: "a", Hosts: []string{"y.com"}, Proxy: b}}, `app "a" is named twice`},
		{"no proxy", []Route{{App: "a", Hosts: []string{"x.com"}}}, "no proxy"},
		{"no app", []Route{{Hosts: []string{"x.com"}, Proxy: a}}, "no app name"},
		{"no host", []Route{{App: "a", Proxy: a}}, "no host and not the default"},
		{"port", []Route{{App: "a", Hosts: []string{"x.com:8080"}, Proxy: a}}, "a port has no place here"},
		{"inner wildcard", []Route{{App: "a", Hosts: []string{"a.*.x.com"}, Proxy: a}}, "only allowed as the first label"},
		{"empty label", []Route{{App: "a", Hosts: []string{"a..x.com"}, Proxy: a}}, "not a host name"},
		{"bare wildcard", []Route{{App: "a", Hosts: []string{"*."}, Proxy: a}}, "only allowed as the first label"},
		{"IPv6", []Route{{App: "a", Hosts: []string{"[::1]"}, Proxy: a}}, "an IPv6 address cannot name an app"},
		{"space", []Route{{App: "a", Hosts: []string{"a b.com"}, Proxy: a}}, "is not allowed in a host name"},
	}
	rt := NewRouter(RouterOptions{})
	good := []Route{{App: "a", Hosts: []string{"keep.com"}, Proxy: a}}
	if err := rt.SetRoutes(good); err != nil {
		t.Fatalf("SetRoutes: %v", err)
	}
	for _, tt := range tests {
		err := rt.SetRoutes(tt.routes)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	if got := rt.Routes(); len(got) != 1 || got[0].App != "a" || got[0].Hosts[0] != "keep.com" {
		t.Errorf("routes after refusals: got %+v, want the good ones unchanged", got)
	}
}

func TestRouterServesByHost(t *testing.T) {
	rt := NewRouter(RouterOptions{})
	if err := rt.SetRoutes([]Route{
		{App: "shop", Hosts: []string{"shop.example.com"}, Proxy: appProxy(t, "shop")},
		{App: "blog", Hosts: []string{"*.blog.example.com", "blog.example.com"}, Proxy: appProxy(t, "blog")},
	}); err != nil {
		t.Fatalf("SetRoutes: %v", err)
	}
	url := startRouter(t, rt)
	c := newClient(t)
	for host, want := range map[string]string{
		"shop.example.com":          "shop",
		"Shop.Example.Com.:8080":    "shop",
		"blog.example.com":          "blog",
		"alice.blog.example.com:80": "blog",
	} {
		if code, body := getHost(t, c, url, host); code != http.StatusOK || body != want {
			t.Errorf("Host %s: got %d %q, want 200 %q", host, code, body, want)
		}
	}

	// Unknown host: 404 naming neither app nor release.
	code, body := getHost(t, c, url, "other.example.org")
	if code != http.StatusNotFound || body != unknownHostBody {
		t.Errorf("unknown host: got %d %q, want 404 %q", code, body, unknownHostBody)
	}
	for _, internal := range []string{"shop", "blog", "rel-", "127.0.0.1"} {
		if strings.Contains(body, internal) {
			t.Errorf("unknown host: body %q names %q", body, internal)
		}
	}

	// The absolute form's host wins over the Host header (RFC 9112
	// section 3.2.2).
	if code, body := rawGet(t, url, "GET http://blog.example.com/ HTTP/1.1\r\nHost: shop.example.com\r\n\r\n"); code != http.StatusOK || body != "blog" {
		t.Errorf("absolute form: got %d %q, want 200 %q", code, body, "blog")
	}

	// A default app takes the unknown hosts.
	if err := rt.SetRoutes(append(rt.Routes(), Route{App: "main", Default: true, Proxy: appProxy(t, "main")})); err != nil {
		t.Fatalf("SetRoutes: %v", err)
	}
	if code, body := getHost(t, c, url, "other.example.org"); code != http.StatusOK || body != "main" {
		t.Errorf("unknown host with a default: got %d %q, want 200 %q", code, body, "main")
	}
	if code, body := getHost(t, c, url, "shop.example.com"); code != http.StatusOK || body != "shop" {
		t.Errorf("known host with a default: got %d %q, want 200 %q", code, body, "shop")
	}
}

// rawGet sends the request head req on a new connection to url and
// returns the answer's status and body.
func rawGet(t *testing.T, url, req string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, string(b)
}

// TestRouterHTTP10WithoutHost: such a request goes by the address the
// client reached, which h1 gives as its Host.
func TestRouterHTTP10WithoutHost(t *testing.T) {
	rt := NewRouter(RouterOptions{})
	if err := rt.SetRoutes([]Route{
		{App: "named", Hosts: []string{"named.example.com"}, Proxy: appProxy(t, "named")},
		{App: "local", Hosts: []string{"127.0.0.1"}, Proxy: appProxy(t, "local")},
	}); err != nil {
		t.Fatalf("SetRoutes: %v", err)
	}
	url := startRouter(t, rt)
	if code, body := rawGet(t, url, "GET / HTTP/1.0\r\n\r\n"); code != http.StatusOK || body != "local" {
		t.Errorf("HTTP/1.0 without Host: got %d %q, want 200 %q", code, body, "local")
	}
}

func TestRouterSingleDefault(t *testing.T) {
	rt := NewRouter(RouterOptions{})
	if code, body := getHost(t, newClient(t), startRouter(t, rt), "any.example.com"); code != http.StatusNotFound || body != unknownHostBody {
		t.Errorf("no routes: got %d %q, want 404 %q", code, body, unknownHostBody)
	}
	if err := rt.SetRoutes([]Route{{App: "only", Default: true, Proxy: appProxy(t, "only")}}); err != nil {
		t.Fatalf("SetRoutes: %v", err)
	}
	if rt.routes.Load().only == nil {
		t.Fatal("one default route: no fast path")
	}
	url := startRouter(t, rt)
	for _, host := range []string{"any.example.com", "127.0.0.1", "[::1]:80"} {
		if code, body := getHost(t, newClient(t), url, host); code != http.StatusOK || body != "only" {
			t.Errorf("Host %s: got %d %q, want 200 %q", host, code, body, "only")
		}
	}
}

// TestRouterSetRoutesUnderLoad adds and removes an app over and over
// while clients of two others send requests: none of theirs may fail.
func TestRouterSetRoutesUnderLoad(t *testing.T) {
	stay1, stay2, churn := appProxy(t, "stay1"), appProxy(t, "stay2"), appProxy(t, "churn")
	base := []Route{
		{App: "stay1", Hosts: []string{"one.example.com"}, Proxy: stay1},
		{App: "stay2", Hosts: []string{"*.two.example.com"}, Default: true, Proxy: stay2},
	}
	with := append(base[:len(base):len(base)], Route{App: "churn", Hosts: []string{"churn.example.com"}, Proxy: churn})
	rt := NewRouter(RouterOptions{})
	if err := rt.SetRoutes(base); err != nil {
		t.Fatalf("SetRoutes: %v", err)
	}
	url := startRouter(t, rt)

	const clients, perClient = 4, 250
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var failed, served atomic.Int64
	var firstErr sync.Once
	var wg sync.WaitGroup
	for i := range clients {
		host, want := "one.example.com", "stay1"
		if i%2 == 1 {
			host, want = fmt.Sprintf("c%d.two.example.com", i), "stay2"
		}
		c := newClient(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err != nil {
					panic(err)
				}
				req.Host = host
				resp, err := c.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != http.StatusOK || string(body) != want) {
						err = fmt.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, want)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { t.Errorf("Host %s: %v", host, err) })
					continue
				}
				served.Add(1)
			}
		}()
	}
	stop := make(chan struct{})
	swapped := make(chan int)
	go func() {
		n := 0
		defer func() { swapped <- n }()
		for {
			for _, rs := range [][]Route{with, base} {
				select {
				case <-stop:
					return
				default:
				}
				if err := rt.SetRoutes(rs); err != nil {
					t.Errorf("SetRoutes: %v", err)
					return
				}
				n++
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	wg.Wait()
	close(stop)
	n := recv(t, swapped, "route swapper")
	if failed.Load() != 0 || served.Load() != clients*perClient {
		t.Errorf("got %d served and %d failed, want %d served and none failed", served.Load(), failed.Load(), clients*perClient)
	}
	if n < 10 {
		t.Errorf("routes swapped %d times during the load, want at least 10", n)
	}
	t.Logf("%d requests, %d route swaps", served.Load(), n)
}

// TestRouterRemovedAppInFlight removes an app while a request of it is
// under way: that request finishes on the app's Proxy; the next one for
// its host gets 404.
func TestRouterRemovedAppInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "gone-app")
	})
	gone := New(Options{Cookie: "cutover_gone"})
	addHealthy(gone, "g", "r1", addr)
	gone.SetActive("r1")
	rt := NewRouter(RouterOptions{})
	stays := Route{App: "stays", Hosts: []string{"stays.example.com"}, Proxy: appProxy(t, "stays")}
	if err := rt.SetRoutes([]Route{stays, {App: "gone", Hosts: []string{"gone.example.com"}, Proxy: gone}}); err != nil {
		t.Fatalf("SetRoutes: %v", err)
	}
	url := startRouter(t, rt)

	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	c := newClient(t)
	go func() {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			done <- result{err: err}
			return
		}
		req.Host = "gone.example.com"
		resp, err := c.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b), err}
	}()
	recv(t, entered, "request of the removed app at its backend")
	if err := rt.SetRoutes([]Route{stays}); err != nil {
		t.Fatalf("SetRoutes: %v", err)
	}
	if code, body := getHost(t, newClient(t), url, "gone.example.com"); code != http.StatusNotFound {
		t.Errorf("removed app's host: got %d %q, want 404", code, body)
	}
	close(release)
	if r := recv(t, done, "in-flight request"); r.err != nil || r.code != http.StatusOK || r.body != "gone-app" {
		t.Errorf("in-flight request of the removed app: got %d %q (%v), want 200 %q", r.code, r.body, r.err, "gone-app")
	}
}

func TestRouterWebsocketByHost(t *testing.T) {
	rt := NewRouter(RouterOptions{})
	var routes []Route
	for _, app := range []string{"chat", "feed"} {
		addr, _ := echoBackend(t, app)
		p := New(Options{Cookie: "cutover_" + app})
		addHealthy(p, app, "r1", addr)
		p.SetActive("r1")
		routes = append(routes, Route{App: app, Hosts: []string{app + ".example.com"}, Proxy: p})
	}
	if err := rt.SetRoutes(routes); err != nil {
		t.Fatalf("SetRoutes: %v", err)
	}
	url := startRouter(t, rt)
	for _, app := range []string{"feed", "chat"} {
		d := websocket.Dialer{HandshakeTimeout: waitLimit}
		c, resp, err := d.Dial("ws"+strings.TrimPrefix(url, "http")+"/ws", http.Header{"Host": {app + ".example.com:8080"}})
		if err != nil {
			t.Fatalf("dial websocket for %s: %v", app, err)
		}
		defer c.Close()
		if got := resp.Header.Get("X-Backend"); got != app {
			t.Errorf("handshake X-Backend: got %q, want %q", got, app)
		}
		if got, want := echo(t, c, "hi"), app+":hi"; got != want {
			t.Errorf("echo: got %q, want %q", got, want)
		}
	}
}

// benchRouterGET is BenchmarkProxyGET through a Router with routes,
// the request carrying Host host, served by the app whose Proxy is p.
func benchRouterGET(b *testing.B, rt *Router, host string) {
	url := startRouter(b, rt)
	c := newClient(b)
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Host = host
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatalf("GET: %v", err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatalf("read body: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status: got %d, want %d", resp.StatusCode, http.StatusOK)
		}
	}
}

// BenchmarkRouterGET is BenchmarkProxyGET behind a Router: with one
// default route (the single-app form), and with 50 apps, the request's
// host an exact name in the middle of them or under a wildcard.
func BenchmarkRouterGET(b *testing.B) {
	_, addr := startBackend(b, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, world\n")
	})
	serving := func() *Proxy {
		p := New(Options{})
		addHealthy(p, "a", "r1", addr)
		p.SetActive("r1")
		return p
	}
	b.Run("routes=1", func(b *testing.B) {
		rt := NewRouter(RouterOptions{})
		if err := rt.SetRoutes([]Route{{App: "app", Default: true, Proxy: serving()}}); err != nil {
			b.Fatal(err)
		}
		benchRouterGET(b, rt, "127.0.0.1")
	})
	for _, tc := range []struct{ name, host string }{
		{"routes=50/exact", "app25.example.com"},
		{"routes=50/wildcard", "www.wild25.example.net"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rs := fiftyRoutes(b)
			rs[25].Proxy = serving()
			rt := NewRouter(RouterOptions{})
			if err := rt.SetRoutes(rs); err != nil {
				b.Fatal(err)
			}
			benchRouterGET(b, rt, tc.host)
		})
	}
}

// BenchmarkRouterLookup is the router's own cost per request: the
// snapshot load and the choice of a Proxy that ServeHTTP makes before
// handing the request over.
func BenchmarkRouterLookup(b *testing.B) {
	one := NewRouter(RouterOptions{})
	if err := one.SetRoutes([]Route{{App: "app", Default: true, Proxy: New(Options{})}}); err != nil {
		b.Fatal(err)
	}
	fifty := NewRouter(RouterOptions{})
	rs := append(fiftyRoutes(b), Route{App: "default", Default: true, Proxy: New(Options{})})
	if err := fifty.SetRoutes(rs); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rt   *Router
		host string
	}{
		{"routes=1", one, "127.0.0.1:8080"},
		{"routes=50/exact", fifty, "app25.example.com"},
		{"routes=50/exact-port-case", fifty, "App25.Example.com:8080"},
		{"routes=50/wildcard", fifty, "www.wild25.example.net"},
		{"routes=50/default", fifty, "www.example.org"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if tc.rt.routes.Load().proxyFor(tc.host) == nil {
					b.Fatal("no proxy")
				}
			}
		})
	}
}
