package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/accesslog"
)

// A refused connection carried nothing: every request, whatever its
// method and body, goes to another backend, and the dead one leaves
// rotation at once.
func TestRetryOnDeadBackend(t *testing.T) {
	tests := []struct {
		method string
		body   string
	}{
		{http.MethodGet, ""},
		{http.MethodDelete, ""},
		{http.MethodPost, ""},
		{http.MethodPost, "form=1"},
		{http.MethodPut, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.method+"/"+tt.body, func(t *testing.T) {
			p, url := startProxy(t, Options{})
			dead := addHealthy(p, "dead", "r1", deadAddr(t))
			addHealthy(p, "live", "r1", nameBackend(t, "live"))
			p.SetActive("r1")
			c := newClient(t)

			const n = 6
			for range n {
				var body io.Reader
				if tt.body != "" {
					body = strings.NewReader(tt.body)
				}
				status, got := do(t, c, tt.method, url, body)
				if status != http.StatusOK || got != "live" {
					t.Errorf("got %d %q, want %d %q", status, got, http.StatusOK, "live")
				}
			}
			if !dead.Down() {
				t.Errorf("dead backend still in rotation")
			}
			st := p.Stats()["r1"]
			if st.ConnErrors != 1 {
				t.Errorf("conn errors: got %d, want 1 (the dead backend left rotation at once)", st.ConnErrors)
			}
			if st.Requests != n {
				t.Errorf("requests: got %d, want %d", st.Requests, n)
			}
		})
	}
}

func TestDeadBackendAloneHolds(t *testing.T) {
	// The only backend is dead: the request waits for it, then 503.
	p, url := startProxy(t, Options{App: "shop", HoldTimeout: 50 * time.Millisecond})
	addHealthy(p, "dead", "r1", deadAddr(t))
	p.SetActive("r1")
	status, body := get(t, newClient(t), url)
	if status != http.StatusServiceUnavailable {
		t.Errorf("status: got %d, want %d", status, http.StatusServiceUnavailable)
	}
	if want := "cutover: no healthy instance of shop after 50ms\n"; body != want {
		t.Errorf("body: got %q, want %q", body, want)
	}
	if got, want := p.Stats()["r1"].ConnErrors, uint64(1); got != want {
		t.Errorf("conn errors: got %d, want %d", got, want)
	}
}

func TestStreamingResponse(t *testing.T) {
	for _, ct := range []string{"text/plain", "text/event-stream"} {
		t.Run(ct, func(t *testing.T) {
			finish := make(chan struct{})
			_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ct)
				io.WriteString(w, "first\n")
				w.(http.Flusher).Flush()
				select {
				case <-finish:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "second\n")
			})
			p, url := startProxy(t, Options{})
			addHealthy(p, "a", "r1", addr)
			p.SetActive("r1")

			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := newClient(t).Do(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			// The backend has not finished: this line must arrive on its own.
			line, err := br.ReadString('\n')
			if err != nil || line != "first\n" {
				t.Fatalf("first chunk: got %q, %v, want %q", line, err, "first\n")
			}
			close(finish)
			rest, err := io.ReadAll(br)
			if err != nil || string(rest) != "second\n" {
				t.Errorf("rest: got %q, %v, want %q", rest, err, "second\n")
			}
			if got := resp.Header.Get("Content-Type"); got != ct {
				t.Errorf("Content-Type: got %q, want %q", got, ct)
			}
		})
	}
}

func TestStreamingUpload(t *testing.T) {
	gotFirst := make(chan struct{})
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		first := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, first); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		close(gotFirst)
		rest, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s|%s", first, rest)
	})
	p, url := startProxy(t, Options{StreamRequestBodies: true})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")

	pr, pw := io.Pipe()
	// Ending the upload unblocks the client whatever happens to the test.
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	type result struct {
		status int
		body   string
	}
	results := make(chan result, 1)
	go func() {
		status, body := do(t, newClient(t), http.MethodPost, url, pr)
		results <- result{status, body}
	}()
	if _, err := io.WriteString(pw, "part1"); err != nil {
		t.Fatalf("write first part: %v", err)
	}
	// The client has not finished the body: the backend must see its start.
	recv(t, gotFirst, "backend to read the first part")
	if _, err := io.WriteString(pw, "part2"); err != nil {
		t.Fatalf("write second part: %v", err)
	}
	pw.Close()
	r := recv(t, results, "upload response")
	if r.status != http.StatusOK || r.body != "part1|part2" {
		t.Errorf("upload: got %d %q, want %d %q", r.status, r.body, http.StatusOK, "part1|part2")
	}
}

func TestFullDuplexStream(t *testing.T) {
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	})
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")

	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	// Ending the upload unblocks the client whatever happens to the test.
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	resps := make(chan *http.Response, 1)
	go func() {
		resp, err := newClient(t).Do(req)
		if err != nil {
			t.Errorf("POST: %v", err)
		}
		resps <- resp
	}()
	if _, err := io.WriteString(pw, "ping\n"); err != nil {
		t.Fatalf("write first line: %v", err)
	}
	resp := recv(t, resps, "response headers")
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// The upload is still open: its first line must already come back.
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("first echo: got %q, %v, want %q", line, err, "ping\n")
	}
	io.WriteString(pw, "pong\n")
	pw.Close()
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "pong\n" {
		t.Errorf("rest: got %q, %v, want %q", rest, err, "pong\n")
	}
}

func TestTrailersPassed(t *testing.T) {
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
	})
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")

	resp, err := newClient(t).Get(url)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "body" {
		t.Fatalf("body: got %q, %v, want %q", body, err, "body")
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
		t.Errorf("trailer X-Checksum: got %q, want %q", got, "abc")
	}
}

func TestSlowHeadersGive504(t *testing.T) {
	unblock := make(chan struct{})
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-unblock:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(unblock) })
	p, url := startProxy(t, Options{ResponseHeaderTimeout: 50 * time.Millisecond})
	addHealthy(p, "a", "r1", addr)
	addHealthy(p, "b", "r1", addr)
	p.SetActive("r1")

	status, body := get(t, newClient(t), url)
	if status != http.StatusGatewayTimeout {
		t.Errorf("status: got %d, want %d", status, http.StatusGatewayTimeout)
	}
	if want := "cutover: instance of release r1 did not answer within 50ms\n"; body != want {
		t.Errorf("body: got %q, want %q", body, want)
	}
	st := p.Stats()["r1"]
	if st.Status5xx != 1 || st.ConnErrors != 1 {
		t.Errorf("stats: got %d 5xx and %d conn errors, want 1 and 1 (no retry on timeout)", st.Status5xx, st.ConnErrors)
	}
}

// Regression: a backend answering every request with Connection: close
// must not make the proxy reuse a closed upstream connection.
func TestBackendClosingKeepAlive(t *testing.T) {
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Connection", "close")
		io.WriteString(w, "ok")
	})
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)

	for i := range 100 {
		method, body := http.MethodGet, io.Reader(nil)
		if i%2 == 1 {
			method, body = http.MethodPost, strings.NewReader("payload")
		}
		if status, got := do(t, c, method, url, body); status != http.StatusOK || got != "ok" {
			t.Fatalf("request %d (%s): got %d %q, want %d %q", i, method, status, got, http.StatusOK, "ok")
		}
	}
	if st := p.Stats()["r1"]; st.ConnErrors != 0 || st.Status5xx != 0 {
		t.Errorf("stats: got %d conn errors and %d 5xx, want none", st.ConnErrors, st.Status5xx)
	}
}

func TestBackendFailingMidBodyAbortsClient(t *testing.T) {
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")

	// The client may see the abort before the headers (they were still
	// buffered) or while reading the body; it must never see a complete
	// response.
	resp, err := newClient(t).Get(url)
	if err == nil {
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			t.Errorf("body: got %q and no error, want an error", body)
		}
	}
	if got := p.Stats()["r1"].ConnErrors; got != 1 {
		t.Errorf("conn errors: got %d, want 1", got)
	}
}

func TestClientGoneIsNotBackendError(t *testing.T) {
	entered := make(chan struct{})
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	go func() {
		resp, err := newClient(t).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errs <- err
	}()
	recv(t, entered, "backend request")
	cancel()
	if err := recv(t, errs, "client"); !errors.Is(err, context.Canceled) {
		t.Errorf("client: got %v, want %v", err, context.Canceled)
	}
	// Drain returns once the proxy has finished with the request.
	dctx, dcancel := context.WithTimeout(context.Background(), waitLimit)
	defer dcancel()
	if res := p.Drain(dctx, "r1", 0); res.Cut != 0 {
		t.Fatalf("drain: got %d cut, want 0", res.Cut)
	}
	if st := p.Stats()["r1"]; st.ConnErrors != 0 || st.Status5xx != 0 {
		t.Errorf("stats: got %d conn errors and %d 5xx, want none", st.ConnErrors, st.Status5xx)
	}
}

func BenchmarkProxyGET(b *testing.B) { benchmarkProxyGET(b, Options{}) }

// BenchmarkProxyGETAccessLog is BenchmarkProxyGET with the access log on,
// in JSON, to a file.
func BenchmarkProxyGETAccessLog(b *testing.B) {
	w, err := accesslog.Open(filepath.Join(b.TempDir(), "access.log"), accesslog.JSON)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	benchmarkProxyGET(b, Options{AccessLog: w})
	if n := w.Count(); n > 0 {
		b.Logf("%d access log lines dropped", n)
	}
}

func benchmarkProxyGET(b *testing.B, opts Options) {
	_, addr := startBackend(b, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, world\n")
	})
	p, url := startProxy(b, opts)
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(b)
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
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
