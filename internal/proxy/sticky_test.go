package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"
)

// withCookie returns a request editor adding the version cookie.
func withCookie(value string) func(*http.Request) {
	return func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: DefaultCookie, Value: value})
	}
}

// withHeader returns a request editor adding the version header.
func withHeader(value string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(DefaultVersionHeader, value) }
}

// pinOf returns the version cookie value set by resp, "" when none.
func pinOf(resp *http.Response) string {
	for _, c := range resp.Cookies() {
		if c.Name == DefaultCookie {
			return c.Value
		}
	}
	return ""
}

func TestCookieOnlyWhileTwoReleasesServe(t *testing.T) {
	p, url := twoReleases(t, Options{Sticky: true})
	c := newClient(t)

	p.SetActive("r1")
	resp, body := send(t, c, url, nil)
	if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("Set-Cookie with one release: got %q, want none", got)
	}
	if got := resp.Header.Get(DefaultVersionHeader); got != "r1" || body != "r1" {
		t.Errorf("release: got header %q body %q, want %q", got, body, "r1")
	}

	p.SetWeights(map[string]int{"r1": 50, "r2": 50})
	resp, body = send(t, c, url, nil)
	if got := resp.Header.Values("Set-Cookie"); len(got) != 1 ||
		got[0] != DefaultCookie+"="+body+"; Path=/; HttpOnly; SameSite=Lax" {
		t.Errorf("Set-Cookie with two releases: got %q, want the pin to %q", got, body)
	}
	// A client carrying its pin is not told again.
	for range 4 {
		resp, got := send(t, c, url, withCookie(body))
		if got != body {
			t.Errorf("pinned client: got %q, want %q", got, body)
		}
		if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("Set-Cookie to a client already pinned: got %q, want none", sc)
		}
	}

	// Back to one release: a stale pin is ignored and nothing is set.
	p.SetActive("r2")
	resp, body = send(t, c, url, withCookie("r1"))
	if body != "r2" {
		t.Errorf("stale pin to r1 after the switch: got %q, want %q", body, "r2")
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("Set-Cookie after the switch: got %q, want none", got)
	}
}

func TestStickyOff(t *testing.T) {
	p, url := twoReleases(t, Options{})
	p.SetWeights(map[string]int{"r1": 50, "r2": 50})
	c := newClient(t)
	got := map[string]int{}
	for range 4 {
		resp, body := send(t, c, url, withHeader("r1"))
		if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("Set-Cookie with Sticky off: got %q, want none", sc)
		}
		got[body]++
	}
	if got["r1"] != 2 || got["r2"] != 2 {
		t.Errorf("requests per release with Sticky off: got %v, want 2 each (header ignored)", got)
	}
}

// Rolling deploy in steps: a client that keeps cookies never goes from the
// new release back to the old one, and stays where it was first served
// while that release has weight.
func TestPinnedClientsDuringRollingShift(t *testing.T) {
	p, url := twoReleases(t, Options{Sticky: true})
	addHealthy(p, "a2", "r1", nameBackend(t, "r1"))
	addHealthy(p, "b2", "r2", nameBackend(t, "r2"))
	p.SetActive("r1")

	const clients = 12
	seqs := make([][]string, clients)
	cs := make([]*http.Client, clients)
	for i := range cs {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = newClient(t)
		cs[i].Jar = jar
	}
	steps := []map[string]int{
		{"r1": 100},
		{"r1": 75, "r2": 25},
		{"r1": 50, "r2": 50},
		{"r1": 25, "r2": 75},
		{"r2": 100},
	}
	for si, w := range steps {
		p.SetWeights(w)
		for i, c := range cs {
			for range 3 {
				resp, body := send(t, c, url, nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("step %d client %d: status %d", si, i, resp.StatusCode)
				}
				if got := resp.Header.Get(DefaultVersionHeader); got != body {
					t.Errorf("version header: got %q, want %q", got, body)
				}
				seqs[i] = append(seqs[i], body)
			}
		}
	}
	sawNew := false
	for i, seq := range seqs {
		joined := strings.Join(seq, " ")
		if k := strings.Index(joined, "r2"); k >= 0 {
			sawNew = true
			if strings.Contains(joined[k:], "r1") {
				t.Errorf("client %d went from the new release back to the old: %s", i, joined)
			}
		}
		// From its first request while two releases serve until only the
		// new one has weight, a client stays on one release.
		for k := 3; k < 12; k++ {
			if seq[k] != seq[3] {
				t.Errorf("client %d while two releases serve: got %v, want one release", i, seq[3:12])
				break
			}
		}
	}
	if !sawNew {
		t.Errorf("no client was ever served by the new release")
	}
}

func TestPinToReleaseWithoutHealthyBackendFallsBack(t *testing.T) {
	p, url := startProxy(t, Options{Sticky: true})
	a := addHealthy(p, "a1", "r1", nameBackend(t, "r1"))
	addHealthy(p, "b1", "r2", nameBackend(t, "r2"))
	p.SetWeights(map[string]int{"r1": 50, "r2": 50})
	c := newClient(t)

	if _, body := send(t, c, url, withCookie("r1")); body != "r1" {
		t.Errorf("pinned to r1: got %q, want %q", body, "r1")
	}
	a.SetHealthy(false)
	resp, body := send(t, c, url, withCookie("r1"))
	if body != "r2" {
		t.Errorf("pinned to r1 without healthy backend: got %q, want %q", body, "r2")
	}
	if got := pinOf(resp); got != "r2" {
		t.Errorf("rewritten pin: got %q, want %q", got, "r2")
	}
	// A pin to a release that does not exist is treated the same.
	resp, body = send(t, c, url, withCookie("nope"))
	if body != "r2" || pinOf(resp) != "r2" {
		t.Errorf("pin to unknown release: got %q with pin %q, want %q pinned", body, pinOf(resp), "r2")
	}
}

func TestVersionHeaderSelects(t *testing.T) {
	p, url := twoReleases(t, Options{Sticky: true})
	p.SetWeights(map[string]int{"r1": 50, "r2": 50})
	c := newClient(t)
	for _, want := range []string{"r1", "r2", "r2", "r1"} {
		// The header wins over the cookie.
		resp, body := send(t, c, url, func(r *http.Request) {
			withHeader(want)(r)
			withCookie("r1")(r)
		})
		if body != want {
			t.Errorf("asked for %q: got %q", want, body)
		}
		wantPin := ""
		if want != "r1" {
			wantPin = want
		}
		if got := pinOf(resp); got != wantPin {
			t.Errorf("pin after asking for %q with cookie r1: got %q, want %q", want, got, wantPin)
		}
	}
}

func TestVersionHeaderOptions(t *testing.T) {
	p, url := twoReleases(t, Options{Sticky: true, Cookie: "ver", VersionHeader: "x-app-version", HideVersion: true})
	p.SetWeights(map[string]int{"r1": 50, "r2": 50})
	c := newClient(t)
	for range 3 {
		resp, body := send(t, c, url, func(r *http.Request) { r.Header.Set("X-App-Version", "r2") })
		if body != "r2" {
			t.Errorf("asked for r2 with a custom header: got %q", body)
		}
		if got := resp.Header.Values("X-App-Version"); len(got) != 0 {
			t.Errorf("version header with HideVersion: got %q, want none", got)
		}
		if got := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(got, "ver=r2;") {
			t.Errorf("Set-Cookie: got %q, want the pin in cookie %q", got, "ver")
		}
	}
	if _, body := send(t, c, url, func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: "ver", Value: "r1"})
	}); body != "r1" {
		t.Errorf("pinned with a custom cookie: got %q, want %q", body, "r1")
	}
}

func TestPinAddedToBackendCookies(t *testing.T) {
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "session=abc; Path=/")
		io.WriteString(w, "r1")
	})
	p, url := startProxy(t, Options{Sticky: true})
	addHealthy(p, "a1", "r1", addr)
	addHealthy(p, "b1", "r2", nameBackend(t, "r2"))
	p.SetWeights(map[string]int{"r1": 50, "r2": 50})
	c := newClient(t)
	resp, _ := send(t, c, url, withHeader("r1"))
	want := []string{"session=abc; Path=/", DefaultCookie + "=r1; Path=/; HttpOnly; SameSite=Lax"}
	if got := resp.Header.Values("Set-Cookie"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Set-Cookie: got %q, want %q", got, want)
	}
}

func TestProxyErrorsNameRelease(t *testing.T) {
	p, url := startProxy(t, Options{Sticky: true, HoldTimeout: 20 * time.Millisecond})
	addHealthy(p, "reset", "r1", resetBackend(t))
	p.SetActive("r1")
	resp, _ := send(t, newClient(t), url, nil)
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status: got %d, want %d", resp.StatusCode, http.StatusBadGateway)
	}
	if got := resp.Header.Get(DefaultVersionHeader); got != "r1" {
		t.Errorf("version header on a 502: got %q, want %q", got, "r1")
	}
}

func TestCookieValue(t *testing.T) {
	tests := []struct {
		lines []string
		want  string
	}{
		{nil, ""},
		{[]string{"cutover_release=r1"}, "r1"},
		{[]string{"a=1; cutover_release=r2; b=3"}, "r2"},
		{[]string{"a=1", " cutover_release = r3"}, " r3"},
		{[]string{`cutover_release="r4"`}, "r4"},
		{[]string{"cutover_release=bad\\; cutover_release=r5"}, "r5"},
		{[]string{"cutover_releasex=r6; xcutover_release=r7"}, ""},
		{[]string{";;cutover_release;"}, ""},
	}
	for _, tt := range tests {
		h := http.Header{"Cookie": tt.lines}
		if got := cookieValue(h, DefaultCookie); got != tt.want {
			t.Errorf("cookieValue(%q): got %q, want %q", tt.lines, got, tt.want)
		}
	}
}

func TestCookieValueDoesNotAllocate(t *testing.T) {
	h := http.Header{"Cookie": {"session=abcdef; theme=dark; cutover_release=20261122T093500-v1.4.2"}}
	allocs := testing.AllocsPerRun(100, func() {
		if cookieValue(h, DefaultCookie) == "" {
			t.Fatal("cookie not found")
		}
	})
	if allocs != 0 {
		t.Errorf("allocations per cookieValue: got %v, want 0", allocs)
	}
}

// FuzzCookieValue checks cookieValue against net/http's own parsing.
func FuzzCookieValue(f *testing.F) {
	f.Add("a=1; cutover_release=r2; b=3")
	f.Add(`cutover_release="r\"4"`)
	f.Add(" cutover_release =r; cutover_release=s")
	f.Fuzz(func(t *testing.T, line string) {
		if strings.Count(line, ";") > 100 {
			// net/http gives up on requests with too many cookies.
			return
		}
		r := &http.Request{Header: http.Header{"Cookie": {line}}}
		want := ""
		if c, err := r.Cookie(DefaultCookie); err == nil {
			want = c.Value
		}
		if got := cookieValue(r.Header, DefaultCookie); got != want {
			t.Errorf("cookieValue(%q): got %q, want %q (net/http)", line, got, want)
		}
	})
}

// BenchmarkProxyGETPinned is BenchmarkProxyGET while two releases serve,
// with a client carrying its pin: the request path parses the cookie.
func BenchmarkProxyGETPinned(b *testing.B) {
	_, addr := startBackend(b, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, world\n")
	})
	p, url := startProxy(b, Options{Sticky: true})
	addHealthy(p, "a", "r1", addr)
	addHealthy(p, "b", "r2", addr)
	p.SetWeights(map[string]int{"r1": 50, "r2": 50})
	c := newClient(b)
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Cookie", "session=abcdef; "+DefaultCookie+"=r2")
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
		if got := resp.Header.Get(DefaultVersionHeader); got != "r2" {
			b.Fatalf("release: got %q, want %q", got, "r2")
		}
	}
}
