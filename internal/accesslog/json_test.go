package accesslog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cutover/cutover/internal/traffic"
)

// TestJSONMatchesEncodingJSON decodes lines written by appendJSON with
// encoding/json, strings that need escaping included.
func TestJSONMatchesEncodingJSON(t *testing.T) {
	a := entry
	a.UserAgent = "Mozilla/5.0 \"x\" \\ \t\n\x01 é 日本 \u2028 <b>&"
	a.Referer = "http://e.example/\x7f"
	a.Time = time.Date(2026, 12, 5, 17, 4, 5, 123456789, time.FixedZone("x", 3600))
	line := appendJSON(nil, &a, a.URI)
	if !json.Valid(line) || line[len(line)-1] != '\n' || strings.Count(string(line), "\n") != 1 {
		t.Fatalf("not one JSON line: %q", line)
	}
	var got struct {
		Time      time.Time `json:"time"`
		UserAgent string    `json:"user_agent"`
		Referer   string    `json:"referer"`
		Duration  float64   `json:"duration"`
		Status    int       `json:"status"`
	}
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(a.Time) || got.UserAgent != a.UserAgent || got.Referer != a.Referer ||
		got.Duration != a.Duration.Seconds() || got.Status != a.Status {
		t.Errorf("decoded %+v from %s", got, line)
	}
}

// FuzzJSONString: whatever the bytes, appendJSONString writes a JSON
// string that encoding/json reads back as them, each byte that is not
// UTF-8 as U+FFFD.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c", "\x00\x1f\x7f", "é\xff\xfe日", "\xed\xa0\x80", "</script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		var want strings.Builder
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			want.WriteRune(r) // RuneError for a byte that is not UTF-8
			i += n
		}
		if got != want.String() {
			t.Errorf("%q: read back %q, want %q", s, got, want.String())
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	var buf []byte
	a := traffic.Access(entry)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendJSON(buf[:0], &a, a.URI)
	}
}
