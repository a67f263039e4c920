package proxy

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// TestWriteBodilessMatchesRequestWrite checks that the allocation-free
// writer of bodiless requests sends what (*http.Request).Write would, and
// declines what it does not handle.
func TestWriteBodilessMatchesRequestWrite(t *testing.T) {
	cases := []struct {
		name, raw string
		fast      bool
	}{
		{"get", "GET /a/b?c=d&e HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n", true},
		{"escaped path kept", "GET /a%2Fb/%7Ex?q=%20 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", true},
		{"post without body", "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", true},
		{"delete with zero length", "DELETE /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", true},
		{"user agent kept", "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/8\r\n\r\n", true},
		{"absolute form", "GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n", false},
		{"options star", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"with body", "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.raw)))
			if err != nil {
				t.Fatalf("parse %q: %v", tc.raw, err)
			}
			in.RemoteAddr = "192.0.2.1:1234"
			out := New(Options{}).outgoing(in, []string{"req-1"}, "127.0.0.1:9")

			var fast strings.Builder
			bw := bufio.NewWriter(&fast)
			if got := writeBodiless(bw, out); got != tc.fast {
				t.Fatalf("writeBodiless handled it: %v, want %v", got, tc.fast)
			}
			bw.Flush()
			if !tc.fast {
				if fast.Len() != 0 {
					t.Fatalf("declined but wrote %q", fast.String())
				}
				return
			}
			var slow strings.Builder
			if err := out.Write(&slow); err != nil {
				t.Fatalf("Request.Write: %v", err)
			}
			got, want := parseSent(t, fast.String()), parseSent(t, slow.String())
			if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Host != want.Host ||
				got.ContentLength != want.ContentLength || got.Proto != want.Proto {
				t.Errorf("request line or framing: got %s %s %s host %q length %d, want %s %s %s host %q length %d\nfast: %q\nnet/http: %q",
					got.Method, got.RequestURI, got.Proto, got.Host, got.ContentLength,
					want.Method, want.RequestURI, want.Proto, want.Host, want.ContentLength, fast.String(), slow.String())
			}
			if !equalHeaders(got.Header, want.Header) {
				t.Errorf("headers: got %v, want %v", got.Header, want.Header)
			}
			if tc.raw[:4] == "GET " && got.RequestURI != in.RequestURI {
				t.Errorf("target: got %q, want the client's %q", got.RequestURI, in.RequestURI)
			}
		})
	}
}

// TestWriteBodilessNeutralisesLineBreaks checks that a header value with
// a line break cannot inject a header.
func TestWriteBodilessNeutralisesLineBreaks(t *testing.T) {
	out, err := http.NewRequest(http.MethodGet, "http://h/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	out.RequestURI = "/x"
	out.Header.Set("X-A", "one\r\nX-Injected: yes")
	var b strings.Builder
	bw := bufio.NewWriter(&b)
	if !writeBodiless(bw, out) {
		t.Fatal("declined a plain GET")
	}
	bw.Flush()
	got := parseSent(t, b.String())
	if v, ok := got.Header["X-Injected"]; ok {
		t.Fatalf("header injected: %q in %q", v, b.String())
	}
	if v := got.Header.Get("X-A"); v != "one  X-Injected: yes" {
		t.Fatalf("X-A: got %q", v)
	}
}

func parseSent(t *testing.T, raw string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("the backend could not parse %q: %v", raw, err)
	}
	return r
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv := b[k]
		if strings.Join(av, "\x00") != strings.Join(bv, "\x00") {
			return false
		}
	}
	return true
}
