package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fuzzDeadline bounds each connection of a fuzz input: the client
// half-closes after writing, so both servers must have answered and closed
// within it.
const fuzzDeadline = time.Second

// maxFuzzInput bounds the bytes of a fuzz input.
const maxFuzzInput = 128 << 10

// callLog records the requests a server's handler sees, by connection
// (the client's address).
type callLog struct {
	mu sync.Mutex
	m  map[string][]fuzzCall
}

type fuzzCall struct {
	method string
	desc   string // what is compared between the servers
}

func (l *callLog) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		desc := fmt.Sprintf("%s %s %s host=%q body=%d:%q", r.Method, r.RequestURI, r.Proto, hostDesc(r), len(body), abbrev(string(body)))
		if err != nil {
			desc += " bodyerr"
		}
		l.mu.Lock()
		l.m[r.RemoteAddr] = append(l.m[r.RemoteAddr], fuzzCall{r.Method, desc})
		l.mu.Unlock()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		// No Content-Length: chunked (HTTP/1.1) or until close (HTTP/1.0).
		_, _ = io.WriteString(w, "ok "+r.Method)
	})
}

// take returns and forgets the calls of the connection from clientAddr.
func (l *callLog) take(clientAddr string) []fuzzCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	calls := l.m[clientAddr]
	delete(l.m, clientAddr)
	return calls
}

// fuzzResult is what a server did with one input.
type fuzzResult struct {
	out      []byte // all it sent
	reset    bool   // the stream ended with a connection reset
	timedOut bool
	calls    []fuzzCall
}

// sendAll writes data on a new connection to addr, half-closes it, reads
// until the server closes, and collects the handler's calls.
func sendAll(t *testing.T, addr string, calls *callLog, data []byte) fuzzResult {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, fuzzDeadline)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(fuzzDeadline))
	var res fuzzResult
	read := make(chan struct{})
	go func() {
		defer close(read)
		var err error
		res.out, err = io.ReadAll(c)
		res.reset = errors.Is(err, syscall.ECONNRESET)
		res.timedOut = isTimeout(err)
	}()
	// The server may stop reading and close: write errors are expected.
	_, _ = c.Write(data)
	_ = c.(*net.TCPConn).CloseWrite()
	<-read
	res.calls = calls.take(c.LocalAddr().String())
	return res
}

// fuzzSeeds are the raw requests of the table-driven tests, and a few more.
func fuzzSeeds() []string {
	seeds := []string{
		"",
		"\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabcGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
		// Found by the fuzzer: a CONNECT whose Host header is invalid.
		"CONNECT 0 HTTP/1.0\nHost:\"\n\n",
	}
	for _, cases := range [][]diffCase{conformanceCases, smugglingCases} {
		for _, c := range cases {
			var b strings.Builder
			for _, s := range c.steps {
				b.WriteString(s.raw)
			}
			seeds = append(seeds, b.String())
		}
	}
	return seeds
}

// FuzzServer feeds arbitrary bytes to an h1 server and to net/http's, and
// checks that h1 neither panics nor hangs, that all it answers parses as
// HTTP/1.x responses, one per request its handler saw (and at most one
// refusal after them), and that its handler never sees a request net/http's
// does not: the requests h1 serves are a prefix of those net/http serves
// (h1 may stop earlier where doc.go says it is stricter).
func FuzzServer(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	h1log := &callLog{m: make(map[string][]fuzzCall)}
	stdlog := &callLog{m: make(map[string][]fuzzCall)}
	var logs lockedBuffer
	h1addr := startH1(f, &Server{Handler: h1log.handler(), ErrorLog: newLogger(&logs)})
	// net/http answers "OPTIONS *" itself unless told not to; h1 passes
	// it to the handler.
	stdaddr := startStdServer(f, &http.Server{Handler: stdlog.handler(), DisableGeneralOptionsHandler: true})

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			t.Skip("input too large")
		}
		h1 := sendAll(t, h1addr, h1log, data)
		std := sendAll(t, stdaddr, stdlog, data)
		if l := logs.String(); l != "" {
			t.Fatalf("sent %q: h1 logged %q", abbrev(string(data)), l)
		}
		if h1.timedOut {
			t.Fatalf("sent %q and half-closed: h1 had not closed the connection after %v; it sent %q", abbrev(string(data)), fuzzDeadline, abbrev(string(h1.out)))
		}
		checkFuzzAnswers(t, data, h1)
		if std.timedOut {
			return // nothing to compare with
		}
		checkFuzzCalls(t, data, h1, std)
	})
}

func newLogger(w io.Writer) *log.Logger { return log.New(w, "", 0) }

// checkFuzzAnswers fails t when h1's answers do not parse (see
// fuzzAnswersErr); a stream cut by a connection reset is excused, as the
// reset may have destroyed its end.
func checkFuzzAnswers(t *testing.T, data []byte, r fuzzResult) {
	t.Helper()
	if err := fuzzAnswersErr(r); err != nil && !r.reset {
		t.Fatalf("sent %q; h1 answered %q, its handler saw %q: %v", abbrev(string(data)), abbrev(string(r.out)), descs(r.calls), err)
	}
}

// fuzzAnswersErr checks that r.out parses as one final answer per handler
// call (after any 100 Continue), with the handler's status, then at most
// one refusal closing the connection, and nothing else.
func fuzzAnswersErr(r fuzzResult) error {
	br := bufio.NewReader(bytes.NewReader(r.out))
	next := func(method string) (*http.Response, error) {
		for {
			resp, _, err := readResponse(br, method)
			if err != nil {
				return nil, err
			}
			switch {
			case resp.StatusCode == http.StatusContinue:
				continue
			case resp.StatusCode < 200:
				return nil, fmt.Errorf("unexpected interim answer %s", resp.Status)
			}
			return resp, nil
		}
	}
	for i, c := range r.calls {
		resp, err := next(c.method)
		if err != nil {
			return fmt.Errorf("answer %d, to %s: %w", i, c.method, err)
		}
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
			return fmt.Errorf("answer %d is %s, not the handler's", i, resp.Status)
		}
	}
	if _, err := br.Peek(1); err != nil {
		return nil
	}
	resp, err := next("GET")
	if err != nil {
		return fmt.Errorf("answer after the handler's: %w", err)
	}
	if resp.StatusCode < 400 || !resp.Close {
		return fmt.Errorf("an answer past the handler's is %s close=%v, want a refusal closing the connection", resp.Status, resp.Close)
	}
	if rest, _ := io.ReadAll(br); len(rest) > 0 {
		return fmt.Errorf("bytes after the refusal: %q", rest)
	}
	return nil
}

// divergence returns the index of the first request h1's handler saw that
// net/http's did not see at the same place, or -1 when h1's requests are a
// prefix of net/http's.
func divergence(h1, std []fuzzCall) int {
	n := 0
	for n < len(h1) && n < len(std) && h1[n].desc == std[n].desc {
		n++
	}
	if n == len(h1) {
		return -1
	}
	return n
}

// checkFuzzCalls checks that the requests h1's handler saw are a prefix of
// those net/http's saw.
func checkFuzzCalls(t *testing.T, data []byte, h1, std fuzzResult) {
	t.Helper()
	n := divergence(h1.calls, std.calls)
	if n < 0 {
		return
	}
	var stdNext string
	if n < len(std.calls) {
		stdNext = std.calls[n].desc
	} else {
		stdNext = "nothing; net/http answered " + strconv.Quote(abbrev(string(std.out)))
	}
	t.Fatalf("sent %q:\n  h1 handler saw       %q\n  net/http handler saw %q\nrequest %d: h1 served %q where net/http served %s",
		abbrev(string(data)), descs(h1.calls), descs(std.calls), n, h1.calls[n].desc, stdNext)
}

func descs(calls []fuzzCall) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.desc
	}
	return out
}

// TestFuzzCheckers checks that the fuzz target's checks fail where they
// should, on answers and calls made up to break them.
func TestFuzzCheckers(t *testing.T) {
	t.Parallel()
	get := []fuzzCall{{"GET", "GET /a"}}
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	refusal := "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n400 Bad Request"
	for _, c := range []struct {
		name  string
		r     fuzzResult
		valid bool
	}{
		{"an answer per call", fuzzResult{out: []byte(ok), calls: get}, true},
		{"100 Continue then the answer", fuzzResult{out: []byte("HTTP/1.1 100 Continue\r\n\r\n" + ok), calls: get}, true},
		{"answer then refusal", fuzzResult{out: []byte(ok + refusal), calls: get}, true},
		{"nothing at all", fuzzResult{}, true},
		{"missing answer", fuzzResult{calls: get}, false},
		{"garbage", fuzzResult{out: []byte("HTTP/1.1 2OO OK\r\n\r\n"), calls: get}, false},
		{"body cut short", fuzzResult{out: []byte(ok[:len(ok)-1]), calls: get}, false},
		{"answer without a call", fuzzResult{out: []byte(ok)}, false},
		{"refusal with its body until close", fuzzResult{out: []byte(refusal)}, true},
		{"bytes after the refusal", fuzzResult{out: []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\nXYZ")}, false},
		{"refusal not closing", fuzzResult{out: []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")}, false},
		{"two refusals", fuzzResult{out: []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" + refusal)}, false},
	} {
		if err := fuzzAnswersErr(c.r); (err == nil) != c.valid {
			t.Errorf("%s: fuzzAnswersErr(%q) = %v, want valid=%v", c.name, c.r.out, err, c.valid)
		}
	}

	a, b, smug := fuzzCall{"GET", "GET /a"}, fuzzCall{"GET", "GET /b"}, fuzzCall{"GET", "GET /smuggled"}
	for _, c := range []struct {
		h1, std []fuzzCall
		want    int
	}{
		{nil, nil, -1},
		{[]fuzzCall{a}, []fuzzCall{a, b}, -1},
		{[]fuzzCall{a, b}, []fuzzCall{a, b}, -1},
		{[]fuzzCall{a, smug}, []fuzzCall{a}, 1},
		{[]fuzzCall{smug}, []fuzzCall{a}, 0},
		{[]fuzzCall{a}, nil, 0},
	} {
		if got := divergence(c.h1, c.std); got != c.want {
			t.Errorf("divergence(h1 %v, net/http %v) = %d, want %d", c.h1, c.std, got, c.want)
		}
	}
}
