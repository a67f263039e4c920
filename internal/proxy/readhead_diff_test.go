package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// The differential tests of readSimpleResponse read the same bytes with it
// and with http.ReadResponse, on two bufio.Readers fed alike, and compare
// every response of the stream: whenever the fast path accepts a head,
// net/http must read the same response from it (status, protocol, header,
// framing, Close, body bytes and read errors, read by read) and leave the
// same bytes after it; whenever it refuses, it must have consumed and
// changed nothing, and net/http, the fallback, then reads on.

// maxPipelined bounds the responses of one stream the differential check
// reads.
const maxPipelined = 32

// maxFuzzResponse bounds the bytes of a fuzz input.
const maxFuzzResponse = 16 << 10

// maxBodyReads bounds the reads of one body in the differential check.
const maxBodyReads = 100000

// bodyReadSizes are the buffer sizes, in turn, of the reads of a body in
// the differential check: reads of one byte, a few, and more than is
// buffered are all compared.
var bodyReadSizes = []int{1, 3, 16, 512, 4096}

// splitReader delivers data in at most two parts, its first split bytes
// then the rest, like a backend whose answer arrives in two packets.
type splitReader struct {
	data  []byte
	split int // bytes before the cut; 0 or len(data) and more: no cut
}

// Read returns bytes of the current part only, never across the cut.
func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	part := r.data
	if r.split > 0 && r.split < len(part) {
		part = part[:r.split]
	}
	n := copy(p, part)
	r.data = r.data[n:]
	r.split -= n
	return n, nil
}

// newStreamReader returns a reader of raw as exchange has one: its
// buffer the size of an upstream connection's, filled by a first Peek
// with what the backend's first packet (the first split bytes) holds.
func newStreamReader(raw []byte, split int) *bufio.Reader {
	br := bufio.NewReaderSize(&splitReader{data: raw, split: split}, upBufSize)
	_, _ = br.Peek(1)
	return br
}

// diffResult is what checkDifferential found in a stream.
type diffResult struct {
	accepted []bool // by response, whether the fast path read it
	err      error  // net/http's error that ended the stream, if any
}

// checkDifferential reads the responses of raw, the backend's first
// packet split bytes long, with readSimpleResponse (then, where it
// refuses, http.ReadResponse) and with http.ReadResponse alone, and fails
// t at the first difference (see the comment at the top of the file).
// methods are the request methods of the responses in turn ("" stands for
// a nil request), the last one repeated.
func checkDifferential(t testing.TB, raw []byte, split int, methods ...string) diffResult {
	t.Helper()
	fast := newStreamReader(raw, split)
	std := newStreamReader(raw, split)
	var res diffResult
	for i := 0; i < maxPipelined; i++ {
		_, ferr := fast.Peek(1)
		if _, err := std.Peek(1); err != nil || ferr != nil {
			if (err == nil) != (ferr == nil) {
				t.Fatalf("%q: before response %d: fast side peek: %v, net/http side: %v", abbrev(raw), i, ferr, err)
			}
			break // the stream ended
		}
		req := requestFor(methods, i)
		label := fmt.Sprintf("%q (split %d, %s): response %d", abbrev(raw), split, methodName(req), i)

		fresp, ok := readFast(t, label, fast, req)
		sresp, serr := http.ReadResponse(std, req)
		res.accepted = append(res.accepted, ok)
		if ok && serr != nil {
			t.Fatalf("%s: fast path read %q, net/http fails: %v", label, fresp.Status, serr)
		}
		if !ok {
			var ferr error
			fresp, ferr = http.ReadResponse(fast, req)
			if errText(ferr) != errText(serr) {
				t.Fatalf("%s: net/http after the fast path refused: %v, net/http alone: %v", label, ferr, serr)
			}
		}
		if serr != nil {
			res.err = serr
			break
		}
		compareResponses(t, label, fresp, sresp, req)
		if !compareBodies(t, label, fresp.Body, sresp.Body, ok) {
			break // the body ended in an error: the stream cannot go on
		}
	}
	frest, ferr := io.ReadAll(fast)
	srest, serr := io.ReadAll(std)
	if !bytes.Equal(frest, srest) || errText(ferr) != errText(serr) {
		t.Fatalf("%q: left after the responses: fast side %q (%v), net/http side %q (%v)", abbrev(raw), abbrev(frest), ferr, abbrev(srest), serr)
	}
	return res
}

// requestFor returns the request of the i-th response: methods[i], or the
// last method; nil for "".
func requestFor(methods []string, i int) *http.Request {
	m := http.MethodGet
	if len(methods) > 0 {
		m = methods[min(i, len(methods)-1)]
	}
	if m == "" {
		return nil
	}
	return &http.Request{Method: m}
}

// methodName names the method of req for messages.
func methodName(req *http.Request) string {
	if req == nil {
		return "nil request"
	}
	return req.Method
}

// readFast runs readSimpleResponse on br and returns the response it
// read; when it refuses, it fails t unless br, the response and the body
// are untouched.
func readFast(t testing.TB, label string, br *bufio.Reader, req *http.Request) (*http.Response, bool) {
	t.Helper()
	buffered := br.Buffered()
	peeked, _ := br.Peek(buffered)
	before := bytes.Clone(peeked)
	resp, body := new(http.Response), new(fixedBody)
	h := http.Header{}
	if readSimpleResponse(br, req, resp, h, body) {
		return resp, true
	}
	after, _ := br.Peek(br.Buffered())
	if br.Buffered() != buffered || !bytes.Equal(after, before) {
		t.Fatalf("%s: fast path refused but changed the buffer from %q to %q", label, abbrev(before), abbrev(after))
	}
	if !reflect.DeepEqual(*resp, http.Response{}) || *body != (fixedBody{}) || len(h) != 0 {
		t.Fatalf("%s: fast path refused but filled the response (%+v) or body (%+v)", label, *resp, *body)
	}
	return nil, false
}

// compareResponses fails t where fast, read from the fast side, differs
// from std, read by net/http, but for their bodies.
func compareResponses(t testing.TB, label string, fast, std *http.Response, req *http.Request) {
	t.Helper()
	checks := []struct {
		what      string
		fast, std any
	}{
		{"Status", fast.Status, std.Status},
		{"StatusCode", fast.StatusCode, std.StatusCode},
		{"Proto", fast.Proto, std.Proto},
		{"ProtoMajor", fast.ProtoMajor, std.ProtoMajor},
		{"ProtoMinor", fast.ProtoMinor, std.ProtoMinor},
		{"Header", fast.Header, std.Header},
		{"Header is nil", fast.Header == nil, std.Header == nil},
		{"ContentLength", fast.ContentLength, std.ContentLength},
		{"Close", fast.Close, std.Close},
		{"TransferEncoding", fast.TransferEncoding, std.TransferEncoding},
		{"TransferEncoding is nil", fast.TransferEncoding == nil, std.TransferEncoding == nil},
		{"Trailer", fast.Trailer, std.Trailer},
		{"Trailer is nil", fast.Trailer == nil, std.Trailer == nil},
		{"Uncompressed", fast.Uncompressed, std.Uncompressed},
		{"Body is http.NoBody", fast.Body == http.NoBody, std.Body == http.NoBody},
		{"Body is nil", fast.Body == nil, std.Body == nil},
		{"Request is the request", fast.Request == req, std.Request == req},
		{"TLS is nil", fast.TLS == nil, std.TLS == nil},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.fast, c.std) {
			t.Errorf("%s: %s: fast path %#v, net/http %#v", label, c.what, c.fast, c.std)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// readStep is the result of one Read of a body.
type readStep struct {
	data string
	err  error
}

// compareBodies reads fast and std in reads of the same sizes to their
// end and once more, closes them and reads once more, and fails t where
// they differ. Errors must be the same values when strict (the fast path
// read the response, and its body must return net/http's sentinel
// errors), the same text otherwise. It reports whether the bodies ended
// cleanly, with io.EOF.
func compareBodies(t testing.TB, label string, fast, std io.ReadCloser, strict bool) bool {
	t.Helper()
	fsteps, ssteps := readSteps(t, label, fast), readSteps(t, label, std)
	// The read that ended the body is the one before the extra read.
	ended := ssteps[len(ssteps)-2].err == io.EOF
	fcloseErr, scloseErr := fast.Close(), std.Close()
	if errText(fcloseErr) != errText(scloseErr) || strict && fcloseErr != nil {
		t.Fatalf("%s: Close of the body: fast side %v, net/http %v", label, fcloseErr, scloseErr)
	}
	fsteps = append(fsteps, readOnce(fast, 1))
	ssteps = append(ssteps, readOnce(std, 1))
	if len(fsteps) != len(ssteps) {
		t.Fatalf("%s: body read in %d reads on the fast side (%v), %d by net/http (%v)", label, len(fsteps), abbrevSteps(fsteps), len(ssteps), abbrevSteps(ssteps))
	}
	for i := range fsteps {
		f, s := fsteps[i], ssteps[i]
		sameErr := f.err == s.err || !strict && errText(f.err) == errText(s.err)
		if f.data != s.data || !sameErr {
			t.Fatalf("%s: body read %d: fast side %q, %v; net/http %q, %v", label, i, abbrev(f.data), f.err, abbrev(s.data), s.err)
		}
	}
	return ended
}

// readSteps reads body to its first error, and once more, in reads of
// bodyReadSizes in turn.
func readSteps(t testing.TB, label string, body io.Reader) []readStep {
	t.Helper()
	var steps []readStep
	for i := 0; ; i++ {
		if i == maxBodyReads {
			t.Fatalf("%s: body not ended after %d reads", label, i)
		}
		s := readOnce(body, bodyReadSizes[i%len(bodyReadSizes)])
		steps = append(steps, s)
		if s.err != nil {
			return append(steps, readOnce(body, 1))
		}
	}
}

// readOnce reads body once into a buffer of size bytes.
func readOnce(body io.Reader, size int) readStep {
	buf := make([]byte, size)
	n, err := body.Read(buf)
	return readStep{string(buf[:n]), err}
}

// abbrevSteps describes steps for messages.
func abbrevSteps(steps []readStep) string {
	var b strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&b, "[%d %v]", len(s.data), s.err)
	}
	return abbrev(b.String())
}

// errText is err's message, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// abbrev shortens s for messages.
func abbrev[T string | []byte](s T) string {
	const limit = 300
	if len(s) > limit {
		return string(s[:limit/2]) + "…" + string(s[len(s)-limit/2:])
	}
	return string(s)
}
