package h1

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// limitedRequest returns a request whose line, CRLF included, is line
// bytes long and whose head, the empty line included, is head bytes long
// (head 0: as short as the line allows), with a body of len(body) bytes
// when body is not empty.
func limitedRequest(t *testing.T, line, head int, body string) string {
	t.Helper()
	const prefix, suffix = "POST /", " HTTP/1.1\r\n"
	if line < len(prefix)+len(suffix) {
		t.Fatalf("request line of %d bytes is too short", line)
	}
	req := prefix + strings.Repeat("a", line-len(prefix)-len(suffix)) + suffix
	fields := "Host: x\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n"
	if head > 0 {
		const pad = "X-Pad: \r\n"
		n := head - len(req) - len(fields) - len(pad) - 2
		if n < 0 {
			t.Fatalf("head of %d bytes is too short for a line of %d", head, line)
		}
		fields += "X-Pad: " + strings.Repeat("b", n) + "\r\n"
	}
	req += fields + "\r\n"
	if head > 0 && len(req) != head {
		t.Fatalf("built a head of %d bytes, want %d", len(req), head)
	}
	return req + body
}

// TestHeadLimits sends, for each bound on a request's head, a request
// just within it, which is served, and one a byte over it, which gets its
// status and a closed connection without reaching the handler: with the
// default bounds and with bounds below the read buffer's size (where the
// whole head is in the buffer), on the fast path and on net/http's,
// written at once and a few bytes at a time.
func TestHeadLimits(t *testing.T) {
	t.Parallel()
	const small = 1024 // below bufSize: checked on heads in the buffer
	type limitCase struct {
		name       string
		line, head int // the request's
		want       int
	}
	cases := func(maxLine, maxHead int) []limitCase {
		return []limitCase{
			{"line at the bound", maxLine, 0, 200},
			{"line a byte over", maxLine + 1, 0, http.StatusRequestURITooLong},
			{"head at the bound", 100, maxHead, 200},
			{"head a byte over", 100, maxHead + 1, http.StatusRequestHeaderFieldsTooLarge},
		}
	}
	for _, srv := range []struct {
		name            string
		maxLine, maxHed int // 0 = the default
		slowOnly        bool
	}{
		{"defaults", 0, 0, false},
		{"defaults, net/http's parser", 0, 0, true},
		{"small", small, 2 * small, false},
		{"small, net/http's parser", small, 2 * small, true},
	} {
		maxLine, maxHead := srv.maxLine, srv.maxHed
		if maxLine == 0 {
			maxLine, maxHead = DefaultMaxRequestLineBytes, DefaultMaxHeaderBytes
		}
		var calls atomic.Int64
		s := &Server{
			MaxRequestLineBytes: srv.maxLine,
			MaxHeaderBytes:      srv.maxHed,
			slowOnly:            srv.slowOnly,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				b, err := io.ReadAll(r.Body)
				if err != nil || string(b) != "body" {
					w.WriteHeader(http.StatusBadRequest)
				}
			}),
		}
		addr := startH1(t, s)
		for _, c := range cases(maxLine, maxHead) {
			for _, chunk := range []int{0, 1000} {
				name := srv.name + "/" + c.name
				if chunk > 0 {
					name += "/in pieces"
				}
				t.Run(name, func(t *testing.T) {
					raw := limitedRequest(t, c.line, c.head, "body")
					before := calls.Load()
					cl := dial(t, addr)
					go writeInPieces(cl.c, raw, chunk)
					resp, _ := cl.mustResponse("POST", abbrev(raw))
					if resp.StatusCode != c.want {
						t.Fatalf("line of %d bytes, head of %d: got %s, want %d", c.line, len(raw)-len("body"), resp.Status, c.want)
					}
					if c.want == 200 {
						cl.expectOpen("after a request within the bounds")
						return
					}
					cl.expectClosed("after a refused head")
					if n := calls.Load() - before; n != 0 {
						t.Errorf("the handler saw %d requests, want 0", n)
					}
				})
			}
		}
	}
}

// writeInPieces writes raw to c in pieces of n bytes (0: at once). The
// server may refuse and close before the end: write errors are expected.
func writeInPieces(c net.Conn, raw string, n int) {
	if n == 0 {
		n = len(raw)
	}
	for len(raw) > 0 {
		k := min(n, len(raw))
		if _, err := io.WriteString(c, raw[:k]); err != nil {
			return
		}
		raw = raw[k:]
	}
}

// TestHeadLimitsAnsweredAtOnce checks that a head past a bound is refused
// as soon as its bytes pass it, not when the client stops sending (or
// the read timeout ends the wait): a client holding a connection with a
// head that never ends gets its answer after a byte over the bound.
func TestHeadLimitsAnsweredAtOnce(t *testing.T) {
	t.Parallel()
	addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the handler saw %s %.20s", r.Method, r.RequestURI)
	}))
	for _, c := range []struct {
		name string
		sent string // a head cut short
		want int    // 0: none yet, the head is within its bounds
	}{
		{"request line", "GET /" + strings.Repeat("a", DefaultMaxRequestLineBytes-len("GET /")+1), http.StatusRequestURITooLong},
		{"request line past the buffer's end, within its bound", "GET /" + strings.Repeat("a", bufSize+100), 0},
		{"header fields", "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("b", DefaultMaxHeaderBytes-len("GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ")+1), http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cl := dial(t, addr)
			go writeInPieces(cl.c, c.sent, 1000)
			if c.want == 0 {
				// Within the bound: the server waits for the rest.
				cl.expectSilence(100*time.Millisecond, "a request line within its bound")
				return
			}
			resp, _ := cl.mustResponse("GET", abbrev(c.sent))
			if resp.StatusCode != c.want {
				t.Fatalf("got %s, want %d", resp.Status, c.want)
			}
			cl.expectClosed("after a refused head")
		})
	}
}
