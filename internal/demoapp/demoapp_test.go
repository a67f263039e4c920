package demoapp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
)

// running is a demo app serving on a loopback port for one test.
type running struct {
	url    string // http://127.0.0.1:port
	cancel context.CancelFunc
	done   chan error // receives serve's result
	stderr *syncBuffer

	stopOnce sync.Once
	stopErr  error
}

// stop asks the app to stop and returns what serve returned. Later calls
// return the same.
func (r *running) stop() error {
	r.stopOnce.Do(func() {
		r.cancel()
		r.stopErr = <-r.done
	})
	return r.stopErr
}

// syncBuffer is a bytes.Buffer safe for the app and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start serves an app with the given environment (PORT is not needed) on
// a free loopback port. configure, if not nil, adjusts the app before it
// serves.
func start(t *testing.T, environ []string, configure func(*app)) *running {
	t.Helper()
	s, err := loadSettings(append([]string{"PORT=0"}, environ...), t.TempDir())
	if err != nil {
		t.Fatalf("loadSettings: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &running{url: "http://" + ln.Addr().String(), done: make(chan error, 1), stderr: &syncBuffer{}}
	a := newApp(s, r.stderr)
	if configure != nil {
		configure(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- a.serve(ctx, ln, io.Discard) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return r
}

// get fetches url and returns the status, the body and X-App-Version.
func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b), resp.Header.Get("X-App-Version")
}

func TestEndpoints(t *testing.T) {
	r := start(t, []string{"DEMO_VERSION=v7", "GREETING=hi there"}, nil)
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/", 200, "hello from v7\n"},
		{"/healthz", 200, "ok"},
		{"/slow?d=10ms", 200, "slept 10ms in v7\n"},
		{"/slow?d=forever", 400, "d: want a duration from 0s to 10m0s such as \"5s\", got \"forever\"\n"},
		{"/stream?n=3&every=1ms", 200, "1/3 from v7\n2/3 from v7\n3/3 from v7\n"},
		{"/stream?n=2&every=0s", 200, "1/2 from v7\n2/2 from v7\n"},
		{"/env?name=GREETING", 200, "hi there"},
		{"/env?name=NOT_SET_ANYWHERE", 404, "NOT_SET_ANYWHERE is not set\n"},
		{"/env", 400, "want ?name=VARIABLE\n"},
		{"/bytes?n=30", 200, "abcdefghijklmnopqrstuvwxyzabcd"},
		{"/bytes?n=-1", 400, "n: want an integer from 0 to 1073741824, got \"-1\"\n"},
		{"/echo", 405, "echo wants POST or PUT\n"},
		{"/nope", 404, "404 page not found\n"},
	}
	for _, tt := range tests {
		status, body, version := get(t, r.url+tt.path)
		if status != tt.status || body != tt.body {
			t.Errorf("GET %s: got %d %q, want %d %q", tt.path, status, body, tt.status, tt.body)
		}
		if version != "v7" {
			t.Errorf("GET %s: X-App-Version got %q, want %q", tt.path, version, "v7")
		}
	}
}

func TestBytesDefault(t *testing.T) {
	r := start(t, nil, nil)
	status, body, _ := get(t, r.url+"/bytes")
	if status != 200 || len(body) != 1<<20 {
		t.Errorf("got %d with %d bytes, want 200 with %d", status, len(body), 1<<20)
	}
}

func TestEcho(t *testing.T) {
	r := start(t, nil, nil)
	payload := bytes.Repeat([]byte("upload\x00\xff"), 100_000)
	resp, err := http.Post(r.url+"/echo", "application/x-test", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("echo: got %d bytes, want the %d sent", len(got), len(payload))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-test" {
		t.Errorf("Content-Type: got %q, want %q", ct, "application/x-test")
	}
}

func TestStreamFlushesEachLine(t *testing.T) {
	r := start(t, nil, nil)
	// A long interval: the first line must arrive on its own, flushed,
	// long before the stream ends.
	resp, err := http.Get(r.url + "/stream?n=2&every=1m")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "1/2 from dev\n" {
		t.Errorf("first line: got %q, %v; want %q", line, err, "1/2 from dev\n")
	}
}

func TestWebsocketEcho(t *testing.T) {
	r := start(t, []string{"DEMO_VERSION=v3"}, nil)
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(r.url, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if v := resp.Header.Get("X-App-Version"); v != "v3" {
		t.Errorf("X-App-Version: got %q, want %q", v, "v3")
	}
	for _, m := range []struct {
		typ  int
		data string
	}{{websocket.TextMessage, "hello"}, {websocket.BinaryMessage, "\x00\x01"}, {websocket.TextMessage, ""}} {
		if err := c.WriteMessage(m.typ, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
		typ, data, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ != m.typ || string(data) != m.data {
			t.Errorf("echo: got %d %q, want %d %q", typ, data, m.typ, m.data)
		}
	}
}

func TestErrorRate(t *testing.T) {
	tests := []struct {
		rate string
		want string // status of successive requests to /: . is 200, X is 500
	}{
		{"0.25", "...X...X"},
		{"0.5", ".X.X.X"},
		{"1", "XXXX"},
		{"0", "...."},
		{"0.1", ".........X"},
	}
	for _, tt := range tests {
		r := start(t, []string{"DEMO_ERROR_RATE=" + tt.rate}, nil)
		var got strings.Builder
		for range len(tt.want) {
			switch status, _, _ := get(t, r.url+"/"); status {
			case 200:
				got.WriteByte('.')
			case 500:
				got.WriteByte('X')
			default:
				got.WriteByte('?')
			}
		}
		if got.String() != tt.want {
			t.Errorf("DEMO_ERROR_RATE=%s: got %q, want %q", tt.rate, got.String(), tt.want)
		}
		// Health checks do not count.
		if status, _, _ := get(t, r.url+"/healthz"); status != 200 {
			t.Errorf("DEMO_ERROR_RATE=%s: health got %d, want 200", tt.rate, status)
		}
	}
}

// TestWork: DEMO_WORK makes every request to / spend CPU. 3·10^8 rounds
// of the loop took 250ms on the machine this was written on (0.84ns a
// round); 100ms leaves room for a CPU more than twice as fast.
func TestWork(t *testing.T) {
	r := start(t, []string{"DEMO_WORK=300000000"}, nil)
	begin := time.Now()
	if status, body, _ := get(t, r.url+"/"); status != 200 || !strings.HasPrefix(body, "hello from ") {
		t.Fatalf("GET / with DEMO_WORK: got %d %q, want 200 hello", status, body)
	}
	if took := time.Since(begin); took < 100*time.Millisecond {
		t.Errorf("GET / with DEMO_WORK=300000000: took %v, want at least 100ms of work", took)
	}
	begin = time.Now()
	if status, _, _ := get(t, r.url+"/healthz"); status != 200 {
		t.Errorf("health with DEMO_WORK: got %d, want 200", status)
	}
	if took := time.Since(begin); took > 50*time.Millisecond {
		t.Errorf("health with DEMO_WORK: took %v, want no work there", took)
	}
}

func TestFailHealth(t *testing.T) {
	r := start(t, []string{"DEMO_FAIL_HEALTH=1", "DEMO_HEALTH_PATH=/up", "DEMO_VERSION=v2"}, nil)
	if status, body, _ := get(t, r.url+"/up"); status != 500 || body != "unhealthy: v2 fails its health check (DEMO_FAIL_HEALTH=1)\n" {
		t.Errorf("health: got %d %q, want 500", status, body)
	}
	if status, _, _ := get(t, r.url+"/"); status != 200 {
		t.Errorf("/: got %d, want 200", status)
	}
	if status, _, _ := get(t, r.url+"/healthz"); status != 404 {
		t.Errorf("/healthz when the health path is /up: got %d, want 404", status)
	}
}

func TestBoot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var stderr bytes.Buffer
		a := newApp(settings{version: "v1", bootDelay: 5 * time.Second}, &stderr)
		begin := time.Now()
		stopped, err := a.boot(t.Context())
		if stopped || err != nil {
			t.Fatalf("boot: stopped %v, err %v", stopped, err)
		}
		if got := time.Since(begin); got != 5*time.Second {
			t.Errorf("boot took %s, want 5s", got)
		}
	})
}

func TestBootStoppedDuringDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newApp(settings{version: "v1", bootDelay: time.Hour, failBoot: true}, io.Discard)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		begin := time.Now()
		stopped, err := a.boot(ctx)
		if !stopped || err != nil {
			t.Errorf("boot: got stopped %v, err %v; want stopped, no error", stopped, err)
		}
		if got := time.Since(begin); got != time.Second {
			t.Errorf("boot returned after %s, want 1s", got)
		}
	})
}

func TestFailBoot(t *testing.T) {
	var stderr bytes.Buffer
	a := newApp(settings{version: "v4", failBoot: true}, &stderr)
	_, err := a.boot(context.Background())
	if err == nil || err.Error() != "demo app v4: boot failed (DEMO_FAIL_BOOT=1)" {
		t.Errorf("got %v, want the boot failure", err)
	}
	if !strings.Contains(stderr.String(), "connection refused") {
		t.Errorf("stderr got %q, want a realistic boot error", stderr.String())
	}
}

func TestGracefulShutdown(t *testing.T) {
	started := make(chan struct{})
	r := start(t, []string{"DEMO_VERSION=v5"}, func(a *app) {
		a.slowStarted = func() { close(started) }
	})

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(r.url, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.Close()

	type result struct {
		status int
		body   string
		err    error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := http.Get(r.url + "/slow?d=300ms")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{resp.StatusCode, string(b), err}
	}()
	<-started

	if err := r.stop(); err != nil {
		t.Errorf("serve: %v", err)
	}
	res := <-slow
	if res.err != nil || res.status != 200 || res.body != "slept 300ms in v5\n" {
		t.Errorf("in-flight /slow: got %d %q %v, want 200 %q", res.status, res.body, res.err, "slept 300ms in v5\n")
	}
	_, _, err = ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("websocket after shutdown: got %v, want close 1001 (going away)", err)
	}
	if got := r.stderr.String(); !strings.Contains(got, "demo app v5: stopping, finishing in-flight requests") {
		t.Errorf("stderr got %q, want the stopping line", got)
	}
	if _, err := http.Get(r.url + "/"); err == nil {
		t.Errorf("a request after shutdown succeeded; want connection refused")
	}
}

// TestRun runs the app as the binary does: settings from the process
// environment and the working directory, PORT=0 so the kernel picks a
// free port, which the start line reports.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "demo.env"), []byte("DEMO_VERSION=from-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	t.Setenv("PORT", "0")
	t.Setenv("DEMO_VERSION", "from-env")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := Run(ctx, pw, io.Discard)
		pw.Close()
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("read start line: %v", err)
	}
	m := regexp.MustCompile(`^demo app from-file listening on (127\.0\.0\.1:\d+) \(pid (\d+)\)\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("start line: got %q, want %q", line, "demo app from-file listening on 127.0.0.1:<port> (pid <pid>)")
	}
	if m[2] != fmt.Sprint(os.Getpid()) {
		t.Errorf("pid: got %s, want %d", m[2], os.Getpid())
	}
	if status, body, _ := get(t, "http://"+m[1]+"/"); status != 200 || body != "hello from from-file\n" {
		t.Errorf("GET /: got %d %q", status, body)
	}
	go io.Copy(io.Discard, pr) // nothing more is expected, but never block Run
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestRunErrors(t *testing.T) {
	t.Chdir(t.TempDir())

	t.Setenv("PORT", "")
	if err := Run(context.Background(), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "PORT is not set") {
		t.Errorf("without PORT: got %v, want PORT is not set", err)
	}

	t.Setenv("PORT", "0")
	t.Setenv("DEMO_FAIL_BOOT", "1")
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "boot failed") {
		t.Errorf("DEMO_FAIL_BOOT: got %v, want boot failed", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("DEMO_FAIL_BOOT: stdout got %q, want nothing (it never listened)", stdout.String())
	}
	if !strings.Contains(stderr.String(), "ERROR boot failed") {
		t.Errorf("DEMO_FAIL_BOOT: stderr got %q", stderr.String())
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want a boot error, not a cancellation", err)
	}
}

// TestLockFile: with DEMO_LOCK_FILE, a second copy of the app exits at
// once with an error naming the file and the holder's pid, and a copy
// started after the first one stopped boots.
func TestLockFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	lock := filepath.Join(dir, "app.lock")
	t.Setenv("PORT", "0")
	t.Setenv("DEMO_LOCK_FILE", lock)

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := Run(ctx, pw, io.Discard)
		pw.Close()
		done <- err
	}()
	if _, err := bufio.NewReader(pr).ReadString('\n'); err != nil {
		t.Fatalf("first copy: read start line: %v", err)
	}
	go io.Copy(io.Discard, pr)

	var stdout bytes.Buffer
	err := Run(context.Background(), &stdout, io.Discard)
	want := fmt.Sprintf("DEMO_LOCK_FILE %s is locked by another copy of the app (pid %d)", lock, os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("second copy: got %v, want an error containing %q", err, want)
	}
	if stdout.Len() != 0 {
		t.Errorf("second copy: stdout got %q, want nothing (it never listened)", stdout.String())
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("first copy: %v", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	pr2, pw2 := io.Pipe()
	go func() {
		err := Run(ctx2, pw2, io.Discard)
		pw2.Close()
		done <- err
	}()
	if line, err := bufio.NewReader(pr2).ReadString('\n'); err != nil || !strings.Contains(line, "listening") {
		t.Fatalf("copy after the first stopped: got %q, %v; want it to listen", line, err)
	}
	go io.Copy(io.Discard, pr2)
	cancel2()
	if err := <-done; err != nil {
		t.Errorf("copy after the first stopped: %v", err)
	}
}
