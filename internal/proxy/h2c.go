package proxy

// HTTP/2 cleartext (h2c) upstreams, for gRPC apps: see "HTTP/2 cleartext
// upstreams" in the package documentation.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Protocol is how the proxy speaks to a backend.
type Protocol uint8

const (
	// HTTP1 is HTTP/1.1 keep-alive, on the proxy's own connection pool.
	// It is the zero value.
	HTTP1 Protocol = iota
	// H2C is HTTP/2 without TLS, with prior knowledge (RFC 9113 section
	// 3.3): the protocol of a gRPC server.
	H2C
)

// String returns the protocol's name in cutover.toml's upstream_protocol:
// "http1" or "h2c".
func (pr Protocol) String() string {
	switch pr {
	case HTTP1:
		return "http1"
	case H2C:
		return "h2c"
	}
	return "Protocol(" + strconv.Itoa(int(pr)) + ")"
}

// newH2CTransport returns the transport of the h2c backend b: HTTP/2 only,
// without TLS, on connections b dials itself (so that they are tracked
// under its release for Drain, and a refused connect is a *dialError).
func newH2CTransport(b *Backend) *http.Transport {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	return &http.Transport{
		Protocols:       &protos,
		DialContext:     b.dialContext,
		IdleConnTimeout: b.p.opts.IdleConnTimeout,
		// Counted from the end of the request's body, as for HTTP/1.1
		// backends once their request is written; a bidirectional stream,
		// whose body ends last, is not bounded by it.
		ResponseHeaderTimeout: b.p.opts.ResponseHeaderTimeout,
		// The client's Accept-Encoding passes as it came, and the answer's
		// body as the app encoded it: no gzip added and undone here.
		DisableCompression: true,
	}
}

// roundTripH2C sends out to the h2c backend b as one HTTP/2 stream and
// returns the response; closing its body ends the stream. ctx cancelled
// (the client gone, or its stream reset) resets the stream upstream.
//
// The transport writes the request from a goroutine of its own, which may
// outlive RoundTrip (an answer, or an error, before the body is sent), so
// it gets a request of its own: its header map and URL are copies, not
// the pooled outbound's, which serve frees when it returns; and the body's
// wrapper tells when the transport is done with it (h2cReqBody.done),
// which the response body's Close and a failed attempt wait for, as the
// HTTP/1.1 exchange waits for its body's writer.
func (b *Backend) roundTripH2C(ctx context.Context, out *http.Request) (*http.Response, error) {
	req := out.WithContext(ctx)
	u := *out.URL
	req.URL = &u
	req.Header = out.Header.Clone()
	// A client request's field, which net/http's client refuses. The
	// target is sent from URL: its EscapedPath is the client's path as it
	// came (URL.RawPath keeps it), and RawQuery its query.
	req.RequestURI = ""
	var body *h2cReqBody
	if out.Body != nil {
		// The transport closes the body it is given, also when it could
		// not connect: a body no attempt has read is kept open for the
		// next attempt (see Retry).
		body = &h2cReqBody{rc: out.Body, done: make(chan struct{})}
		req.Body = body
	}
	resp, err := b.h2.RoundTrip(req)
	if err != nil {
		body.wait()
		// A ResponseHeaderTimeout is a net.Error whose Timeout is true,
		// as isTimeout expects.
		return nil, err
	}
	resp.Body = &h2cRespBody{rc: resp.Body, b: b, req: body}
	return resp, nil
}

// h2cReqBody is a request body handed to an h2c transport: Close closes
// the body only once something read it, so that a body the transport
// closes after failing to connect can be sent elsewhere; done is closed
// once the transport closed it and no read of it is under way.
type h2cReqBody struct {
	rc   io.ReadCloser
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	// read is set by the first read, reading while one is under way,
	// closed by Close. Guarded by mu.
	read, reading, closed bool
}

// errReqBodyClosed is reading a request body the transport closed.
var errReqBodyClosed = errors.New("request body closed")

func (b *h2cReqBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, errReqBodyClosed
	}
	b.read, b.reading = true, true
	b.mu.Unlock()
	n, err := b.rc.Read(p)
	b.mu.Lock()
	b.reading = false
	closed := b.closed
	b.mu.Unlock()
	if closed {
		b.finish()
	}
	return n, err
}

// Close closes the body once it has been read from; a read blocked on the
// client then returns, and the body is done when it has.
func (b *h2cReqBody) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	read, reading := b.read, b.reading
	b.mu.Unlock()
	var err error
	if read {
		if cb, ok := b.rc.(*clientBody); ok {
			cb.abandon()
		}
		err = b.rc.Close()
	}
	if !reading {
		b.finish()
	}
	return err
}

// finish marks the body done.
func (b *h2cReqBody) finish() { b.once.Do(func() { close(b.done) }) }

// wait returns once the transport is done with the body; b may be nil
// (no body).
func (b *h2cReqBody) wait() {
	if b != nil {
		<-b.done
	}
}

// h2cRespBody is an h2c backend's response body; req is its request's
// body, nil when it had none.
type h2cRespBody struct {
	rc  io.ReadCloser
	b   *Backend
	req *h2cReqBody
}

func (r *h2cRespBody) Read(p []byte) (int, error) { return r.rc.Read(p) }

// Close ends the stream, and returns once the transport is done with the
// request body too. A backend removed meanwhile then has its idle
// connections closed, as put closes an HTTP/1.1 connection coming back to
// a removed backend: retire closed those idle at the time.
func (r *h2cRespBody) Close() error {
	err := r.rc.Close()
	// The stream is over: the transport closes the request body, if it
	// has not yet, and so ends a read of it under way.
	r.req.wait()
	if r.b.removed.Load() {
		r.b.h2.CloseIdleConnections()
	}
	return err
}

// isGRPC reports whether h declares a gRPC request (application/grpc,
// application/grpc+proto...; not gRPC-Web, which works over HTTP/1.1).
func isGRPC(h http.Header) bool {
	v := h["Content-Type"]
	if len(v) == 0 {
		return false
	}
	const g = "application/grpc"
	ct := v[0]
	if len(ct) < len(g) || !strings.EqualFold(ct[:len(g)], g) {
		return false
	}
	return len(ct) == len(g) || ct[len(g)] == '+' || ct[len(g)] == ';'
}

// grpcOverHTTP1 answers a gRPC request that came over HTTP/1.1, which
// cannot carry it: gRPC needs HTTP/2 from the client to the app.
func (p *Proxy) grpcOverHTTP1(w http.ResponseWriter, idv []string) {
	p.writeError(w, http.StatusHTTPVersionNotSupported, idv,
		"cutover: "+p.opts.App+" is a gRPC app, and gRPC needs HTTP/2: this request came over HTTP/1.1; "+
			"connect over TLS (proxy.tls_listen), where cutover speaks HTTP/2\n")
}

// grpcUnavailable ends a gRPC answer whose backend went away mid-stream
// (a drain's cut, a crash) with the trailers of status UNAVAILABLE, as
// gRPC's own client reports a lost connection, rather than resetting the
// stream, which clients report as INTERNAL: UNAVAILABLE is the status
// gRPC clients retry, and reconnect streams on. h is the client's
// response header, already written.
func (p *Proxy) grpcUnavailable(h http.Header, b *Backend) {
	h[http.TrailerPrefix+"Grpc-Status"] = valuesGRPCUnavailable
	h[http.TrailerPrefix+"Grpc-Message"] = []string{"cutover: instance " + b.spec.ID + " of release " + b.spec.Release +
		" went away mid-stream (drained or stopped); call again"}
}

// valuesGRPCUnavailable is grpc-status UNAVAILABLE (codes.Unavailable).
var valuesGRPCUnavailable = []string{"14"}

// writeErrorTo is writeError for the answer to r. A gRPC call over HTTP/2
// gets the error as gRPC says (its status in grpc-status, the message in
// grpc-message, in a "trailers-only" answer with HTTP status 200): a gRPC
// client reads nothing else, and would otherwise report only "unexpected
// HTTP status code 503" and a wrong content type, without what happened
// and what to do. The access log still records the HTTP status meant.
func (p *Proxy) writeErrorTo(w http.ResponseWriter, r *http.Request, status int, idv []string, msg string) {
	if r.ProtoMajor < 2 || !isGRPC(r.Header) {
		p.writeError(w, status, idv, msg)
		return
	}
	h := w.Header()
	h["Content-Type"] = valuesGRPCContentType
	h["Grpc-Status"] = []string{strconv.Itoa(grpcCode(status))}
	h["Grpc-Message"] = []string{grpcMessage(strings.TrimSuffix(msg, "\n"))}
	h[headerRequestID] = idv
	if lw, ok := w.(*loggedWriter); ok && lw.status == 0 {
		lw.status = status
	}
	w.WriteHeader(http.StatusOK)
}

var valuesGRPCContentType = []string{"application/grpc"}

// grpcCode is the gRPC status code of an HTTP status, as gRPC maps them
// (doc/http-grpc-status-mapping.md in grpc/grpc): 400 INTERNAL, 401
// UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429, 502, 503
// and 504 UNAVAILABLE, anything else UNKNOWN.
func grpcCode(status int) int {
	switch status {
	case http.StatusBadRequest:
		return 13
	case http.StatusUnauthorized:
		return 16
	case http.StatusForbidden:
		return 7
	case http.StatusNotFound:
		return 12
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return 14
	}
	return 2
}

// grpcMessage percent-encodes msg for grpc-message: every byte outside
// printable ASCII, and '%' (gRPC over HTTP/2, "Responses").
func grpcMessage(msg string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}
