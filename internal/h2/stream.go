package h2

import (
	"context"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// stream is one request and its response. The fields below mu are
// guarded by the connection's mu.
type stream struct {
	c      *conn
	id     uint32
	req    *http.Request
	cancel context.CancelFunc
	rw     responseWriter
	body   requestBody

	// ended is set once END_STREAM is written (before it is flushed):
	// the stream is then closed for the client once its side is too.
	ended atomic.Bool

	// under c.mu:
	closed     bool  // no longer in c.streams
	err        error // why it closed, for the handler's reads and writes
	remoteDone bool  // the client sent END_STREAM
	sendWin    int64
	recvWin    int64 // what is left of the window given the client
	unacked    int64 // consumed, not given back yet
	declared   int64 // the request's Content-Length, -1 for none
	got        int64 // DATA payload received
	// The body as received and not read yet: buf[off:].
	buf        []byte
	off        int
	eof        bool
	bodyClosed bool // the handler closed the body or returned
	bodyCond   sync.Cond
	trailer    http.Header // received, handed to Request.Trailer at EOF
	// continueSent: whether "100 Continue" was sent or is not to be.
	continueSent bool
	// readDeadline and writeDeadline are http.ResponseController's: a
	// body read, or a write waiting for the client's window, past them
	// fails with os.ErrDeadlineExceeded. Each has a timer that wakes the
	// waiters when it passes.
	readDeadline, writeDeadline time.Time
	readTimer, writeTimer       *time.Timer
}

// setDeadline sets the read or write deadline of the stream (zero: none)
// and wakes the waiters when it passes.
func (s *stream) setDeadline(t time.Time, write bool) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	dl, tm := &s.readDeadline, &s.readTimer
	if write {
		dl, tm = &s.writeDeadline, &s.writeTimer
	}
	*dl = t
	if *tm != nil {
		(*tm).Stop()
		*tm = nil
	}
	wake := func() {
		c.mu.Lock()
		s.bodyCond.Broadcast()
		c.cond.Broadcast()
		c.mu.Unlock()
	}
	if t.IsZero() {
		return
	}
	if d := time.Until(t); d <= 0 {
		s.bodyCond.Broadcast()
		c.cond.Broadcast()
	} else {
		*tm = time.AfterFunc(d, wake)
	}
}

// pastLocked reports whether the deadline dl is set and passed. Called
// with c.mu held.
func pastLocked(dl time.Time) bool { return !dl.IsZero() && !time.Now().Before(dl) }

// closeLocked takes s out of its connection's streams: its context is
// canceled, the handler's reads of its body and writes fail with err
// once what was received is read. reset tells that the server reset it
// (or ended it while the client could still send), so that the client's
// frames in flight are ignored. Called with c.mu held.
func (s *stream) closeLocked(err error, reset bool) {
	if s.closed {
		return
	}
	s.closed = true
	s.err = err
	delete(s.c.streams, s.id)
	if reset && !s.remoteDone {
		s.c.rememberReset(s.id)
	}
	if !s.eof && err != nil {
		s.eof = true
	}
	s.bodyCond.Broadcast()
	s.c.cond.Broadcast()
	s.cancel()
}

// connSpecific are the fields RFC 9113 section 8.2.2 forbids in a
// request.
func connSpecific(name string) bool {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

// newStream builds the stream and its request from its HEADERS; a
// request that breaks RFC 9113 section 8 is a stream error.
func (c *conn) newStream(f *http2.MetaHeadersFrame) (*stream, error) {
	id := f.StreamID
	bad := streamError{id, http2.ErrCodeProtocol}
	var method, path, scheme, authority, protocol string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":path":
			path = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		case ":protocol":
			// RFC 8441, only when offered (Server.ExtendedConnect).
			if !c.srv.ExtendedConnect {
				return nil, bad
			}
			protocol = hf.Value
		default: // :status
			return nil, bad
		}
	}
	// A CONNECT names only an authority; an extended one (RFC 8441
	// section 4) is a request to a path like any other, with :protocol.
	isConnect := method == "CONNECT" && protocol == ""
	switch {
	case protocol != "" && (method != "CONNECT" || path == "" || scheme == "" || authority == ""):
		return nil, bad
	case isConnect:
		if path != "" || scheme != "" || authority == "" {
			return nil, bad
		}
	case method == "" || path == "" || scheme == "":
		return nil, bad
	}
	if !httpguts.ValidHeaderFieldName(method) {
		return nil, bad
	}
	regular := f.RegularFields()
	h := make(http.Header, len(regular))
	// One backing array for the values: most names come once.
	vals := make([]string, len(regular))
	var cookies []string
	var host string
	for i, hf := range regular {
		switch {
		case connSpecific(hf.Name):
			return nil, bad
		case hf.Name == "te" && hf.Value != "trailers":
			return nil, bad
		case hf.Name == "cookie":
			cookies = append(cookies, hf.Value)
			continue
		case hf.Name == "host":
			host = hf.Value
		}
		k := canonicalKey(hf.Name)
		if v, ok := h[k]; ok {
			h[k] = append(v, hf.Value)
			continue
		}
		vals[i] = hf.Value
		h[k] = vals[i : i+1 : i+1]
	}
	if len(cookies) > 0 {
		// RFC 9113 section 8.2.3: one field for HTTP/1.1.
		h["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if protocol != "" {
		// Where net/http's server puts it, for the handler.
		h[":protocol"] = []string{protocol}
	}
	if authority == "" {
		authority = host
	}
	if !httpguts.ValidHostHeader(authority) {
		return nil, bad
	}
	declared := int64(-1)
	if cl := h["Content-Length"]; len(cl) > 0 {
		for _, v := range cl[1:] {
			if v != cl[0] {
				return nil, bad
			}
		}
		n, err := strconv.ParseUint(cl[0], 10, 63)
		if err != nil || len(cl[0]) == 0 || cl[0][0] == '+' {
			return nil, bad
		}
		declared = int64(n)
		if len(cl) > 1 {
			h["Content-Length"] = cl[:1]
		}
	}
	var u *url.URL
	switch {
	case isConnect:
		u = &url.URL{Host: authority}
		path = authority
	case path == "*" && method == "OPTIONS":
		u = &url.URL{Path: "*"}
	case path[0] != '/':
		return nil, bad
	default:
		var err error
		if u, err = url.ParseRequestURI(path); err != nil {
			return nil, bad
		}
	}
	s := &stream{c: c, id: id, declared: declared, recvWin: streamRecvWindow}
	s.bodyCond.L = &c.mu
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     h,
		Host:       authority,
		RemoteAddr: c.remoteAddr,
		RequestURI: path,
		TLS:        c.tlsState,
	}
	if f.StreamEnded() {
		if declared > 0 {
			return nil, bad
		}
		s.remoteDone, s.eof = true, true
		req.Body = http.NoBody
		req.ContentLength = 0
	} else {
		s.body.s = s
		req.Body = &s.body
		req.ContentLength = declared
		s.continueSent = !httpguts.HeaderValuesContainsToken(h["Expect"], "100-continue")
		for _, v := range h["Trailer"] {
			for k := range strings.SplitSeq(v, ",") {
				k = textproto.TrimString(k)
				if k == "" {
					continue
				}
				if req.Trailer == nil {
					req.Trailer = make(http.Header)
				}
				req.Trailer[http.CanonicalHeaderKey(k)] = nil
			}
		}
		if req.Trailer != nil {
			// As net/http: the declaration became Request.Trailer.
			delete(h, "Trailer")
		}
	}
	if declared < 0 && f.StreamEnded() {
		req.ContentLength = 0
	}
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	s.req = req.WithContext(ctx)
	s.rw.s = s
	return s, nil
}

// run calls the handler on the stream's own goroutine and finishes the
// response.
func (s *stream) run(h http.Handler) {
	c := s.c
	defer c.wg.Done()
	defer c.streamDone()
	defer func() {
		if v := recover(); v != nil {
			c.srv.panicked(c, v)
			s.rw.release()
			s.endBody()
			c.resetStream(s.id, http2.ErrCodeInternal, true)
		}
	}()
	h.ServeHTTP(&s.rw, s.req)
	s.rw.finish()
}

// endBody closes the request body for good once the handler returned:
// what was not read is given back to the connection's window.
func (s *stream) endBody() {
	c := s.c
	c.mu.Lock()
	inc := s.closeBodyLocked()
	c.mu.Unlock()
	c.windowUpdate(0, inc, true)
}

// closeBodyLocked drops the body's unread bytes and returns the
// connection WINDOW_UPDATE to send. Called with c.mu held.
func (s *stream) closeBodyLocked() int64 {
	if s.bodyClosed {
		return 0
	}
	s.bodyClosed = true
	n := int64(len(s.buf) - s.off)
	s.buf, s.off = nil, 0
	s.bodyCond.Broadcast()
	return s.c.consumedLocked(n)
}

// requestBody is Request.Body: it reads what the connection's goroutine
// received for the stream.
type requestBody struct{ s *stream }

func (b *requestBody) Read(p []byte) (int, error) {
	s := b.s
	c := s.c
	c.mu.Lock()
	if !s.continueSent {
		s.continueSent = true
		if !s.rw.sentHeader && !s.closed {
			c.mu.Unlock()
			s.rw.writeInformational(http.StatusContinue, nil)
			c.mu.Lock()
		}
	}
	for len(s.buf) == s.off && !s.eof && !s.bodyClosed {
		if pastLocked(s.readDeadline) {
			c.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		s.bodyCond.Wait()
	}
	if s.bodyClosed {
		c.mu.Unlock()
		return 0, http.ErrBodyReadAfterClose
	}
	if len(s.buf) == s.off {
		err := s.err
		tr := s.trailer
		s.trailer = nil
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if tr != nil {
			if s.req.Trailer == nil {
				s.req.Trailer = make(http.Header, len(tr))
			}
			for k, v := range tr {
				s.req.Trailer[k] = v
			}
		}
		return 0, io.EOF
	}
	n := copy(p, s.buf[s.off:])
	s.off += n
	if s.off == len(s.buf) {
		s.buf, s.off = s.buf[:0], 0
	} else if s.off > 64<<10 && s.off > len(s.buf)/2 {
		s.buf = s.buf[:copy(s.buf, s.buf[s.off:])]
		s.off = 0
	}
	s.unacked += int64(n)
	var streamInc int64
	if !s.remoteDone && !s.closed && s.unacked >= streamRecvWindow/2 {
		streamInc = s.unacked
		s.recvWin += streamInc
		s.unacked = 0
	}
	connInc := c.consumedLocked(int64(n))
	c.mu.Unlock()
	if streamInc > 0 || connInc > 0 {
		c.wmu.Lock()
		if streamInc > 0 {
			_ = c.fr.WriteWindowUpdate(s.id, uint32(streamInc))
		}
		if connInc > 0 {
			_ = c.fr.WriteWindowUpdate(0, uint32(connInc))
		}
		_ = c.bw.Flush()
		c.wmu.Unlock()
	}
	return n, nil
}

func (b *requestBody) Close() error {
	s := b.s
	c := s.c
	c.mu.Lock()
	inc := s.closeBodyLocked()
	c.mu.Unlock()
	c.windowUpdate(0, inc, true)
	return nil
}

// canonicalKey returns the canonical form of a lowercase field name,
// without allocating for the common ones.
func canonicalKey(name string) string {
	if k, ok := commonCanonical[name]; ok {
		return k
	}
	return http.CanonicalHeaderKey(name)
}

// lowerKey returns a header name in lowercase, as HTTP/2 sends it,
// without allocating for the common ones.
func lowerKey(name string) string {
	if k, ok := commonLower[name]; ok {
		return k
	}
	for i := 0; i < len(name); i++ {
		if 'A' <= name[i] && name[i] <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

var commonCanonical, commonLower = func() (map[string]string, map[string]string) {
	names := []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin",
		"Access-Control-Expose-Headers", "Access-Control-Max-Age",
		"Access-Control-Request-Headers", "Access-Control-Request-Method",
		"Age", "Allow", "Alt-Svc", "Authorization", "Cache-Control", "Content-Disposition",
		"Content-Encoding", "Content-Language", "Content-Length", "Content-Location",
		"Content-Range", "Content-Security-Policy", "Content-Type", "Cookie", "Date", "Dnt", "Etag",
		"Expect", "Expires", "Forwarded", "From", "Grpc-Message", "Grpc-Status", "Grpc-Timeout",
		"Host", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range",
		"If-Unmodified-Since", "Last-Modified", "Link", "Location", "Max-Forwards", "Origin",
		"Pragma", "Priority", "Proxy-Authenticate", "Proxy-Authorization", "Range", "Referer",
		"Refresh", "Retry-After", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform",
		"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User",
		"Sec-Websocket-Key", "Sec-Websocket-Version", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Te", "Trailer", "Upgrade-Insecure-Requests", "User-Agent",
		"Vary", "Via", "Www-Authenticate", "X-Content-Type-Options", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Frame-Options", "X-Real-Ip", "X-Request-Id",
		"X-Requested-With", "X-Xss-Protection",
	}
	canon := make(map[string]string, len(names))
	lower := make(map[string]string, len(names))
	for _, n := range names {
		l := strings.ToLower(n)
		canon[l] = n
		lower[n] = l
	}
	return canon, lower
}()
