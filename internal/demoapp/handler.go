package demoapp

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Handlers ignore errors writing a response: one only means the client
// went away, and there is no one left to tell.

// Limits on query parameters, so a typo cannot tie the app up for days or
// ask for terabytes.
const (
	maxSlow        = 10 * time.Minute
	maxStreamLines = 1_000_000
	maxStreamEvery = time.Minute
	maxBytes       = 1 << 30
)

// ServeHTTP routes a request. The health path is matched first, so it may
// be any path, even "/".
func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-App-Version", a.s.version)
	switch r.URL.Path {
	case a.s.healthPath:
		a.health(w)
	case "/":
		a.hello(w, r)
	case "/slow":
		a.slow(w, r)
	case "/stream":
		a.stream(w, r)
	case "/ws":
		a.echoSocket(w, r)
	case "/env":
		a.env(w, r)
	case "/echo":
		a.echo(w, r)
	case "/bytes":
		a.bytes(w, r)
	default:
		if name, ok := strings.CutPrefix(r.URL.Path, "/files/"); ok {
			a.file(w, r, name)
			return
		}
		http.NotFound(w, r)
	}
}

// file stores (PUT/POST) or returns (GET) uploads/<name> under the working
// directory, like an app that keeps user uploads beside its code: what a
// [release] shared path is for.
func (a *app) file(w http.ResponseWriter, r *http.Request, name string) {
	if name == "" || strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
		http.Error(w, "bad file name", http.StatusBadRequest)
		return
	}
	path := filepath.Join("uploads", name)
	switch r.Method {
	case http.MethodPut, http.MethodPost:
		if err := os.MkdirAll("uploads", 0o755); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			err = os.WriteFile(path, b, 0o644)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	case http.MethodGet:
		b, err := os.ReadFile(path)
		if err != nil {
			http.Error(w, "no such file", http.StatusNotFound)
			return
		}
		w.Write(b) //nolint:errcheck // client gone
	default:
		http.Error(w, "GET, PUT or POST", http.StatusMethodNotAllowed)
	}
}

func (a *app) health(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if a.s.failHealth {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "unhealthy: %s fails its health check (DEMO_FAIL_HEALTH=1)\n", a.s.version)
		return
	}
	io.WriteString(w, "ok")
}

// work spins n rounds of a xorshift generator: CPU time and nothing else,
// so a busy machine slows it as it slows an app's own code. Its result is
// kept (app.workSink) so that the compiler keeps the loop.
func work(n uint64) uint64 {
	x := uint64(88172645463325252)
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// hello answers /. With DEMO_ERROR_RATE r, request n fails when
// floor(n·r) steps up, so exactly a share r fails, evenly spread.
func (a *app) hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if n := a.s.work; n > 0 {
		a.workSink.Store(work(n))
	}
	if ppm := a.s.errorPPM; ppm > 0 {
		n := a.rootRequests.Add(1)
		if n*ppm/1e6 > (n-1)*ppm/1e6 {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "internal error in %s (DEMO_ERROR_RATE)\n", a.s.version)
			return
		}
	}
	if a.db != nil {
		v, err := a.query(r.Context())
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "internal error in %s: %v\n", a.s.version, err)
			fmt.Fprintf(a.stderr, "demo app %s: GET /: %v\n", a.s.version, err)
			return
		}
		fmt.Fprintf(w, "hello from %s (%s)\n", a.s.version, v)
		return
	}
	fmt.Fprintf(w, "hello from %s\n", a.s.version)
}

// slow sleeps d (default 1s) before answering. Only the client leaving
// cuts it short: a graceful shutdown waits for it.
func (a *app) slow(w http.ResponseWriter, r *http.Request) {
	d, ok := durationParam(w, r, "d", time.Second, maxSlow)
	if !ok {
		return
	}
	if a.slowStarted != nil {
		a.slowStarted()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "slept %s in %s\n", d, a.s.version)
}

// stream writes n lines (default 10), one every `every` (default 100ms),
// flushing each.
func (a *app) stream(w http.ResponseWriter, r *http.Request) {
	n, ok := intParam(w, r, "n", 10, maxStreamLines)
	if !ok {
		return
	}
	every, ok := durationParam(w, r, "every", 100*time.Millisecond, maxStreamEvery)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rc := http.NewResponseController(w)
	t := time.NewTicker(max(every, time.Nanosecond))
	defer t.Stop()
	for i := 1; i <= int(n); i++ {
		if i > 1 && every > 0 {
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		if _, err := fmt.Fprintf(w, "%d/%d from %s\n", i, n, a.s.version); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// echoSocket echoes every message back, text or binary, until the peer
// closes or the app shuts down.
func (a *app) echoSocket(w http.ResponseWriter, r *http.Request) {
	c, err := a.upgrader.Upgrade(w, r, http.Header{"X-App-Version": {a.s.version}})
	if err != nil {
		return // Upgrade has already answered with an error
	}
	a.mu.Lock()
	if a.closing {
		a.mu.Unlock()
		_ = c.Close() // shutting down: no new sockets
		return
	}
	a.sockets[c] = struct{}{}
	a.wsWG.Add(1)
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.sockets, c)
		a.mu.Unlock()
		_ = c.Close() // the loop below has already ended on an error
		a.wsWG.Done()
	}()
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

// env answers the value of an environment variable, as the app sees it
// (demo.env applied).
func (a *app) env(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		http.Error(w, "want ?name=VARIABLE", http.StatusBadRequest)
		return
	}
	v, ok := a.s.env[name]
	if !ok {
		http.Error(w, name+" is not set", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, v)
}

// echo sends a POST or PUT body back.
func (a *app) echo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		http.Error(w, "echo wants POST or PUT", http.StatusMethodNotAllowed)
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	if r.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	if _, err := io.Copy(w, r.Body); err != nil {
		return // the client went away; nothing to answer
	}
}

// bytes sends n bytes (default 1 MiB) of a repeating pattern.
func (a *app) bytes(w http.ResponseWriter, r *http.Request) {
	n, ok := intParam(w, r, "n", 1<<20, maxBytes)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	buf := make([]byte, 32<<10)
	for i := range buf {
		buf[i] = 'a' + byte(i%26)
	}
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := w.Write(buf[:k]); err != nil {
			return
		}
		n -= k
	}
}

// intParam reads a non-negative integer query parameter, answering 400
// when it is malformed or above limit.
func intParam(w http.ResponseWriter, r *http.Request, name string, def, limit int64) (int64, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > limit {
		http.Error(w, fmt.Sprintf("%s: want an integer from 0 to %d, got %q", name, limit, s), http.StatusBadRequest)
		return 0, false
	}
	return v, true
}

// durationParam reads a non-negative duration query parameter, answering
// 400 when it is malformed or above limit.
func durationParam(w http.ResponseWriter, r *http.Request, name string, def, limit time.Duration) (time.Duration, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 || v > limit {
		http.Error(w, fmt.Sprintf("%s: want a duration from 0s to %s such as \"5s\", got %q", name, limit, s), http.StatusBadRequest)
		return 0, false
	}
	return v, true
}
