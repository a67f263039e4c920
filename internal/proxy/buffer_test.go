package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// workerPool is a backend like a Unicorn or gunicorn-sync app: a few
// workers, each serving one request at a time; a request waits for a
// free worker. It records the most uploads it held at once.
type workerPool struct {
	addr    string
	workers chan struct{}
	// conns counts the uploads on an app connection now (received,
	// waiting for a worker or in one), maxConns the most at once;
	// uploads and maxUploads count those in a worker.
	conns, maxConns     atomic.Int64
	uploads, maxUploads atomic.Int64
	// waited counts the GETs that found no free worker.
	waited atomic.Int64
}

// raise records now in most if it is more.
func raise(most *atomic.Int64, now int64) {
	for {
		m := most.Load()
		if now <= m || most.CompareAndSwap(m, now) {
			return
		}
	}
}

func startWorkerPool(t testing.TB, n int) *workerPool {
	t.Helper()
	wp := &workerPool{workers: make(chan struct{}, n)}
	_, wp.addr = startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			raise(&wp.maxConns, wp.conns.Add(1))
			defer wp.conns.Add(-1)
		}
		select {
		case wp.workers <- struct{}{}:
		default:
			if r.Method != http.MethodPost {
				wp.waited.Add(1)
			}
			select {
			case wp.workers <- struct{}{}:
			case <-r.Context().Done():
				return
			}
		}
		defer func() { <-wp.workers }()
		if r.Method != http.MethodPost {
			io.WriteString(w, "ok")
			return
		}
		raise(&wp.maxUploads, wp.uploads.Add(1))
		defer wp.uploads.Add(-1)
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, strconv.FormatInt(n, 10))
	})
	return wp
}

// slowBody sends parts of size bytes, one every gap.
type slowBody struct {
	parts, size int
	gap         time.Duration
	sent        int
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.sent == b.parts {
		return 0, io.EOF
	}
	if b.sent > 0 {
		time.Sleep(b.gap)
	}
	b.sent++
	return copy(p, bytes.Repeat([]byte("u"), min(len(p), b.size))), nil
}

// TestSlowUploadersHoldNoAppConnection sends 50 slow uploads (10 parts
// of 100 bytes, 50ms apart: half a second each) to an app of 8 workers,
// and GETs beside them. Buffered, the uploads take no worker while they
// arrive, and the GETs never wait for one; streamed, the uploads would
// hold every worker, and the GETs would wait for them. (Latencies are
// logged, not judged: the machine's load would make a bound flaky.)
func TestSlowUploadersHoldNoAppConnection(t *testing.T) {
	const uploaders, parts, size = 50, 10, 100
	const gap = 50 * time.Millisecond
	wp := startWorkerPool(t, 8)
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", wp.addr)
	p.SetActive("r1")

	tr := &http.Transport{MaxIdleConnsPerHost: uploaders + 8, MaxConnsPerHost: uploaders + 8}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: waitLimit}
	var wg sync.WaitGroup
	results := make(chan string, uploaders)
	for range uploaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest(http.MethodPost, url+"/upload", &slowBody{parts: parts, size: size, gap: gap})
			if err != nil {
				results <- err.Error()
				return
			}
			req.ContentLength = parts * size
			resp, err := c.Do(req)
			if err != nil {
				results <- err.Error()
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			results <- strconv.Itoa(resp.StatusCode) + " " + string(b)
		}()
	}
	// While the uploads arrive (the last part leaves after 9 gaps), GETs
	// go through beside them.
	var slowest time.Duration
	gets := 0
	for end := time.Now().Add((parts - 3) * gap); time.Now().Before(end); gets++ {
		start := time.Now()
		status, body := get(t, c, url+"/")
		slowest = max(slowest, time.Since(start))
		if status != http.StatusOK || body != "ok" {
			t.Fatalf("GET beside the uploads: got %d %q, want %d %q", status, body, http.StatusOK, "ok")
		}
		time.Sleep(5 * time.Millisecond)
	}
	held, workers, waited := wp.maxConns.Load(), wp.maxUploads.Load(), wp.waited.Load()
	wg.Wait()
	close(results)
	for r := range results {
		if want := "200 " + strconv.Itoa(parts*size); r != want {
			t.Errorf("upload: got %q, want %q", r, want)
		}
	}
	t.Logf("%d slow uploads held at most %d app connections (%d workers) while arriving; %d of %d GETs beside them waited for a worker, the slowest %v",
		uploaders, held, workers, waited, gets, slowest)
	if held != 0 {
		t.Errorf("slow uploads held %d app connections (%d workers) while arriving, want 0", held, workers)
	}
	if waited != 0 {
		t.Errorf("%d of %d GETs beside the uploads waited for an app worker, want none", waited, gets)
	}
}

// TestBufferedBodyArrivesWhole checks what the app receives of a
// buffered body, in memory and past it in a file: the whole body with
// its Content-Length, without Expect (a client waiting for 100 Continue
// gets it from the proxy), and no file left behind.
func TestBufferedBodyArrivesWhole(t *testing.T) {
	type seen struct {
		n      int64
		body   string
		expect string
		te     []string
	}
	got := make(chan seen, 1)
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- seen{r.ContentLength, string(b), r.Header.Get("Expect"), r.TransferEncoding}
	})
	dir := t.TempDir()
	p, url := startProxy(t, Options{RequestBufferMemory: 100, BodyTempDir: dir})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	tr := &http.Transport{ExpectContinueTimeout: waitLimit}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}

	for _, size := range []int{1, 99, 100, 101, 100 << 10} {
		for _, expect := range []bool{false, true} {
			body := strings.Repeat("b", size-1) + "!"
			req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if expect {
				req.Header.Set("Expect", "100-continue")
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("PUT %d bytes: %v", size, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT %d bytes: status %d", size, resp.StatusCode)
			}
			s := recv(t, got, "the app's request")
			if s.n != int64(size) || s.body != body || s.expect != "" || len(s.te) != 0 {
				t.Errorf("PUT %d bytes (expect %v): the app saw Content-Length %d, %d bytes equal: %v, Expect %q, Transfer-Encoding %q",
					size, expect, s.n, len(s.body), s.body == body, s.expect, s.te)
			}
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("files left in the body directory: %d, want none", len(left))
	}
}

// TestBodyOverMaxRequestBody checks the 413 of MaxRequestBody: at once
// for a body announced too large (a client waiting for 100 Continue
// sends nothing), after the limit for a chunked one, which the app sees
// fail; neither counts against the release.
func TestBodyOverMaxRequestBody(t *testing.T) {
	bb := startBodyBackend(t)
	p, url := startProxy(t, Options{MaxRequestBody: 1000})
	addHealthy(p, "a", "r1", bb.addr)
	p.SetActive("r1")

	c := dialRaw(t, url)
	c.send("POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 1001\r\nExpect: 100-continue\r\n\r\n")
	if status, closing := c.status(); status != http.StatusRequestEntityTooLarge || !closing {
		t.Errorf("announced 1001 bytes: got %d (closing %v), want %d and Connection: close", status, closing, http.StatusRequestEntityTooLarge)
	}

	c = dialRaw(t, url)
	c.send(chunkedHead + "200\r\n" + strings.Repeat("c", 512) + "\r\n200\r\n" + strings.Repeat("c", 512) + "\r\n")
	if status, _ := c.status(); status != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked 1024 bytes: got %d, want %d", status, http.StatusRequestEntityTooLarge)
	}

	status, body := do(t, newClient(t), http.MethodPost, url, strings.NewReader(strings.Repeat("d", 1000)))
	if status != http.StatusOK || body != "1000" {
		t.Errorf("1000 bytes: got %d %q, want %d %q", status, body, http.StatusOK, "1000")
	}
	waitIdle(t, p, "r1")
	if n := bb.complete.Load(); n != 1 {
		t.Errorf("the app read %d complete requests, want 1", n)
	}
	if ws := p.Window("r1", time.Minute); ws.Errors != 0 || ws.ConnErrors != 0 {
		t.Errorf("window: got %d errors and %d conn errors, want none", ws.Errors, ws.ConnErrors)
	}
}

// TestLargeUploadStreams checks that a body over MaxBufferedBody still
// streams: the app reads its start before the client sent the rest.
func TestLargeUploadStreams(t *testing.T) {
	gotFirst := make(chan struct{})
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		first := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, first); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		close(gotFirst)
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, strconv.FormatInt(n+5, 10))
	})
	p, url := startProxy(t, Options{MaxBufferedBody: 1 << 10})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")

	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(io.ErrClosedPipe) })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 2 << 10
	type result struct {
		status int
		body   string
		err    error
	}
	results := make(chan result, 1)
	go func() {
		resp, err := newClient(t).Do(req)
		if err != nil {
			results <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		results <- result{resp.StatusCode, string(b), err}
	}()
	if _, err := io.WriteString(pw, strings.Repeat("x", 1<<10)); err != nil {
		t.Fatal(err)
	}
	recv(t, gotFirst, "the app to read the start of the upload")
	if _, err := io.WriteString(pw, strings.Repeat("y", 1<<10)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if r := recv(t, results, "the upload's answer"); r.err != nil || r.status != http.StatusOK || r.body != "2048" {
		t.Errorf("upload: got %d %q (%v), want %d %q", r.status, r.body, r.err, http.StatusOK, "2048")
	}
}

// BenchmarkProxyUpload1MiB measures a 1 MiB POST through the proxy with
// the default options: buffered, 64 KiB in memory and the rest in a file
// under os.TempDir().
func BenchmarkProxyUpload1MiB(b *testing.B) {
	benchmarkUpload(b, Options{})
}

// BenchmarkProxyUpload1MiBInMemory is BenchmarkProxyUpload1MiB with the
// whole body buffered in memory.
func BenchmarkProxyUpload1MiBInMemory(b *testing.B) {
	benchmarkUpload(b, Options{RequestBufferMemory: 1 << 20})
}

// BenchmarkProxyUpload1MiBStreamed is BenchmarkProxyUpload1MiB with the
// body streamed to the app as it arrives.
func BenchmarkProxyUpload1MiBStreamed(b *testing.B) {
	benchmarkUpload(b, Options{StreamRequestBodies: true})
}

func benchmarkUpload(b *testing.B, opts Options) {
	_, addr := startBackend(b, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		io.WriteString(w, strconv.FormatInt(n, 10))
	})
	body := bytes.Repeat([]byte("u"), 1<<20)
	p, url := startProxy(b, opts)
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Post(url, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			b.Fatalf("POST: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status: got %d, want %d", resp.StatusCode, http.StatusOK)
		}
	}
}
