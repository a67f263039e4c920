package accesslog

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

var entry = traffic.Access{
	Time:       time.Date(2026, 12, 5, 17, 4, 5, 0, time.UTC),
	RequestID:  "abc-1",
	App:        "shop",
	Release:    "20261205-170000-v2",
	Instance:   "20261205-170000-v2-1",
	Method:     "GET",
	Host:       "shop.example.com",
	URI:        "/cart?id=7&cutover_preview=SECRETTOKEN&x=1",
	Proto:      "HTTP/1.1",
	Status:     200,
	Bytes:      1234,
	Duration:   25 * time.Millisecond,
	Upstream:   20 * time.Millisecond,
	Held:       3 * time.Millisecond,
	Retries:    1,
	ClientAddr: "192.0.2.7:53211",
	Referer:    "",
	UserAgent:  `curl/8.0 "quoted"`,
}

// logged writes entries to a new log in format and returns its lines.
func logged(t *testing.T, format Format, es ...traffic.Access) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "access.log")
	w, err := Open(path, format)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		w.Log(e)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return readLines(t, path)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestJSON(t *testing.T) {
	lines := logged(t, JSON, entry)
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1", len(lines))
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("line is not JSON: %v\n%s", err, lines[0])
	}
	want := map[string]any{
		"time": "2026-12-05T17:04:05Z", "request_id": "abc-1", "app": "shop", "release": "20261205-170000-v2",
		"instance": "20261205-170000-v2-1", "method": "GET", "host": "shop.example.com",
		"uri": "/cart?id=7&cutover_preview=REDACTED&x=1", "proto": "HTTP/1.1", "status": 200.0, "bytes": 1234.0,
		"duration": 0.025, "upstream_duration": 0.02, "held_duration": 0.003, "retries": 1.0,
		"client": "192.0.2.7", "referer": "", "user_agent": `curl/8.0 "quoted"`,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got keys %v, want exactly %d", got, len(want))
	}
}

func TestCombined(t *testing.T) {
	lines := logged(t, Combined, entry)
	want := `192.0.2.7 - - [05/Dec/2026:17:04:05 +0000] "GET /cart?id=7&cutover_preview=REDACTED&x=1 HTTP/1.1" 200 1234 "-" "curl/8.0 \x22quoted\x22"`
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("got %q\nwant %q", lines, want)
	}
}

func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/", "/"},
		{"/?cutover_preview=T", "/?cutover_preview=REDACTED"},
		{"/a?b=1&cutover_preview=T#f", "/a?b=1&cutover_preview=REDACTED#f"},
		{"/a?xcutover_preview=T", "/a?xcutover_preview=T"},
		{"/a?xcutover_preview=1&cutover_preview=T", "/a?xcutover_preview=1&cutover_preview=REDACTED"},
		{"/a?q=cutover_preview=1&cutover_preview=T&b", "/a?q=cutover_preview=1&cutover_preview=REDACTED&b"},
		{"/a?cutover_preview=T&cutover_preview=U", "/a?cutover_preview=REDACTED&cutover_preview=REDACTED"},
		{"/a/cutover_preview=x?cutover_preview=T", "/a/cutover_preview=x?cutover_preview=REDACTED"},
	} {
		if got := redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestReopen rotates the log as logrotate does: rename, then Reopen. The
// lines before the rename are in the old file, those after in the new
// one, none lost.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	w, err := Open(path, Combined)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for range 3 {
		w.Log(entry)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	// Written after the rename but before Reopen: still the old file's.
	w.Log(entry)
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		w.Log(entry)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(readLines(t, path+".1")); got != 4 {
		t.Errorf("rotated file has %d lines, want 4", got)
	}
	if got := len(readLines(t, path)); got != 2 {
		t.Errorf("new file has %d lines, want 2", got)
	}
}

func TestFullQueueDrops(t *testing.T) {
	// A writer whose goroutine does not run: its queue fills.
	w := &Writer{queue: make(chan traffic.Access, 2)}
	for range 5 {
		w.Log(entry)
	}
	if got := w.Count(); got != 3 {
		t.Errorf("dropped: got %d, want 3", got)
	}
}

func TestOpenError(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing", "access.log"), JSON)
	if err == nil || !strings.Contains(err.Error(), "log.access") {
		t.Errorf("got %v, want an error naming log.access", err)
	}
}

func BenchmarkWriteJSON(b *testing.B)     { benchmarkWrite(b, JSON) }
func BenchmarkWriteCombined(b *testing.B) { benchmarkWrite(b, Combined) }

// benchmarkWrite measures formatting one entry into the buffer, the
// writing goroutine's work per request.
func benchmarkWrite(b *testing.B, f Format) {
	w, err := Open(filepath.Join(b.TempDir(), "access.log"), f)
	if err != nil {
		b.Fatal(err)
	}
	w.Close() // the goroutine is done: write is called here alone
	w.file, _ = os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	w.bw.Reset(w.file)
	b.ReportAllocs()
	for b.Loop() {
		w.write(entry)
	}
}

// TestFlushedAfterInterval: a line reaches the file about FlushInterval
// after it was logged, without Close.
func TestFlushedAfterInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	w, err := Open(path, JSON)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	start := time.Now()
	w.Log(entry)
	for time.Since(start) < 5*time.Second {
		if b, _ := os.ReadFile(path); len(b) > 0 {
			if d := time.Since(start); d < FlushInterval/2 {
				t.Errorf("line written after %v, want it buffered for about %v", d, FlushInterval)
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no line in the file 5s after Log")
}
