package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serveAt serves a backend answering with name on addr, retrying the
// listen for a while (the port was just freed), until the returned
// server is closed or the test ends.
func serveAt(t *testing.T, addr, name string) *http.Server {
	t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(waitLimit); ; {
		ln, err = net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen on %s again: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name)
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve %s: %v", name, err)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return srv
}

// resetBackend starts a backend that reads each request and resets the
// connection without answering, as a process dying mid-request would.
func resetBackend(t testing.TB) string {
	t.Helper()
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	})
	return addr
}

type answer struct {
	method string
	status int
	body   string
}

// sendAll sends each request from its own goroutine on client c and
// returns the channel their answers arrive on.
func sendAll(t *testing.T, c *http.Client, url string, methods []string) <-chan answer {
	answers := make(chan answer, len(methods))
	for _, m := range methods {
		go func() {
			var body io.Reader
			if m == http.MethodPost {
				body = strings.NewReader("form=1")
			}
			status, got := do(t, c, m, url, body)
			answers <- answer{m, status, got}
		}()
	}
	return answers
}

// Regression: with every backend of the release gone at once (kill -9 of
// all instances), requests were retried once on another dead backend and
// answered 502. A refused connection carried nothing, so every such
// request, POST included, is held until an instance accepts again.
func TestAllBackendsRefusingHoldRequests(t *testing.T) {
	entered := make(chan struct{}, 8)
	p, url := startHandler(t, New(Options{HoldTimeout: waitLimit}), func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			h.ServeHTTP(w, r)
		})
	})
	addrA, addrB := deadAddr(t), deadAddr(t)
	addHealthy(p, "a", "r1", addrA)
	addHealthy(p, "b", "r1", addrB)
	p.SetActive("r1")
	methods := []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodGet, http.MethodPost, http.MethodGet}
	answers := sendAll(t, newClient(t), url, methods)
	for range methods {
		recv(t, entered, "request to reach the proxy")
	}
	// Both backends leave rotation on their first refusal; the requests
	// wait instead of failing.
	deadline := time.Now().Add(waitLimit)
	for len(p.table.Load().pools) != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := len(p.table.Load().pools); n != 0 {
		t.Errorf("pools in the routing table: got %d, want 0 (both backends refused)", n)
	}
	time.Sleep(100 * time.Millisecond)
	select {
	case a := <-answers:
		t.Fatalf("%s answered %d %q while no backend accepted; want it held", a.method, a.status, a.body)
	default:
	}

	serveAt(t, addrB, "b")
	for range methods {
		a := recv(t, answers, "held request")
		if a.status != http.StatusOK || a.body != "b" {
			t.Errorf("%s: got %d %q, want %d %q", a.method, a.status, a.body, http.StatusOK, "b")
		}
	}
	if st := p.Stats()["r1"]; st.Status5xx != 0 {
		t.Errorf("5xx answers: got %d, want 0", st.Status5xx)
	}
}

// Regression: backends that die with keep-alive connections open in the
// proxy's pools (the connections found closed on use, the new ones
// refused) made GETs fail with 502 instead of waiting for an instance.
func TestBackendsDyingUnderLoadHoldRequests(t *testing.T) {
	p, url := startProxy(t, Options{HoldTimeout: waitLimit})
	addrA, addrB := deadAddr(t), deadAddr(t)
	srvA, srvB := serveAt(t, addrA, "a"), serveAt(t, addrB, "b")
	addHealthy(p, "a", "r1", addrA)
	addHealthy(p, "b", "r1", addrB)
	p.SetActive("r1")
	c := newClient(t)
	// Fill the proxy's pools with connections that the kill will close.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 4 {
				if status, _ := get(t, c, url); status != http.StatusOK {
					t.Errorf("before the kill: got %d, want 200", status)
				}
			}
		})
	}
	wg.Wait()

	// Both die at once; requests keep coming.
	srvA.Close()
	srvB.Close()
	methods := make([]string, 24)
	for i := range methods {
		methods[i] = http.MethodGet
	}
	answers := sendAll(t, c, url, methods)
	time.Sleep(100 * time.Millisecond)
	select {
	case a := <-answers:
		t.Fatalf("%s answered %d %q while no backend was up; want it held", a.method, a.status, a.body)
	default:
	}
	// One comes back, as the supervisor would restart it on its port.
	serveAt(t, addrA, "a2")
	for range methods {
		a := recv(t, answers, "held request")
		if a.status != http.StatusOK || a.body != "a2" {
			t.Errorf("%s: got %d %q, want %d %q", a.method, a.status, a.body, http.StatusOK, "a2")
		}
	}
	if st := p.Stats()["r1"]; st.Status5xx != 0 {
		t.Errorf("5xx answers: got %d, want 0", st.Status5xx)
	}
}

// A request that may have reached the app is not sent again unless it is
// idempotent and bodiless: a backend that resets a POST after reading it
// gets 502, and stays in rotation (it accepted the connection).
func TestResetAfterWriteNotRetriedForPOST(t *testing.T) {
	addrR := resetBackend(t)
	p, url := startProxy(t, Options{HoldTimeout: waitLimit})
	br := addHealthy(p, "reset", "r1", addrR)
	addHealthy(p, "live", "r1", nameBackend(t, "live"))
	p.SetActive("r1")
	c := newClient(t)
	tests := []struct {
		method, body string
		want         int
	}{
		{http.MethodGet, "", http.StatusOK},
		{http.MethodPost, "form=1", http.StatusBadGateway},
		{http.MethodPost, "", http.StatusBadGateway},
	}
	for _, tt := range tests {
		var saw502 bool
		for range 4 { // every other one meets the resetting backend
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			status, _ := do(t, c, tt.method, url, body)
			switch {
			case status == http.StatusBadGateway:
				saw502 = true
			case status != http.StatusOK:
				t.Errorf("%s %q: got %d, want 200 or 502", tt.method, tt.body, status)
			}
		}
		if got := saw502; got != (tt.want == http.StatusBadGateway) {
			t.Errorf("%s %q: 502 seen: %v, want %v", tt.method, tt.body, got, !got)
		}
	}
	if br.Down() {
		t.Errorf("resetting backend out of rotation; want it kept (it accepts connections)")
	}
}

// A request that crashes every instance it reaches is sent at most three
// times: an idempotent GET reset by its only backend gets 502 after two
// more attempts.
func TestResetRetriesBounded(t *testing.T) {
	p, url := startProxy(t, Options{HoldTimeout: waitLimit})
	addHealthy(p, "reset", "r1", resetBackend(t))
	p.SetActive("r1")
	if status, _ := get(t, newClient(t), url); status != http.StatusBadGateway {
		t.Errorf("status: got %d, want %d", status, http.StatusBadGateway)
	}
	if got, want := p.Stats()["r1"].ConnErrors, uint64(1+maxResetRetries); got != want {
		t.Errorf("attempts: got %d, want %d", got, want)
	}
}

// A websocket handshake refused by its backend goes to another one, and
// waits for one when none is left.
func TestWebsocketHandshakeRefusedGoesElsewhere(t *testing.T) {
	liveAddr, _ := echoBackend(t, "live")
	p, url := startProxy(t, Options{HoldTimeout: waitLimit})
	dead := addHealthy(p, "dead", "r1", deadAddr(t))
	live := addHealthy(p, "live", "r1", liveAddr)
	p.SetActive("r1")
	for range 4 {
		c, _ := dialWS(t, url)
		if got := echo(t, c, "hi"); got != "live:hi" {
			t.Errorf("echo: got %q, want %q", got, "live:hi")
		}
	}
	if !dead.Down() {
		t.Errorf("dead backend still in rotation")
	}
	// The last one goes too: the handshake waits for it to be back.
	live.SetHealthy(false)
	time.AfterFunc(100*time.Millisecond, func() { live.SetHealthy(true) })
	c, _ := dialWS(t, url)
	if got := echo(t, c, "again"); got != "live:again" {
		t.Errorf("echo after the hold: got %q, want %q", got, "live:again")
	}
}

// TestRefusedByBackend: only a refused connection takes a backend out of
// rotation; a connect timeout (its accept queue full under a spike) or the
// proxy's own EMFILE sends the request elsewhere but keeps the backend in,
// or one busy moment would empty the pool and hold every request.
func TestRefusedByBackend(t *testing.T) {
	wrap := func(e error) error {
		return &dialError{addr: "127.0.0.1:1", err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", e)}}
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused", wrap(syscall.ECONNREFUSED), true},
		{"timeout", wrap(syscall.ETIMEDOUT), false},
		{"emfile", wrap(syscall.EMFILE), false},
		{"reset after write", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, false},
	} {
		if got := refusedByBackend(tc.err); got != tc.want {
			t.Errorf("%s: refusedByBackend = %v, want %v", tc.name, got, tc.want)
		}
	}
}
