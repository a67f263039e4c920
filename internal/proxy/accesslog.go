package proxy

import (
	"bufio"
	"net"
	"net/http"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

// exchange gathers, while a request is served, what the access log
// records of it that only the request path knows. serve gets nil when
// access logging is off; its methods are no-ops on nil, so the path pays
// a nil check.
type exchange struct {
	start    time.Time
	id       string
	release  string
	instance string
	upstream time.Duration
	held     time.Duration
	retries  int
}

// answered records that backend b's release answered in upstream, after
// the request waited held.
func (x *exchange) answered(b *Backend, upstream, held time.Duration) {
	if x == nil {
		return
	}
	x.release, x.instance = b.spec.Release, b.spec.ID
	x.upstream, x.held = upstream, held
}

// holdEnded records a request that waited held and then got no backend.
func (x *exchange) holdEnded(held time.Duration) {
	if x != nil {
		x.held = held
	}
}

// serveLogged is serve with access logging: the answer's status and size
// are taken from the ResponseWriter, the rest from the exchange, and the
// entry goes to Options.AccessLog once the exchange is over, even when
// it ended by aborting the connection (a body cut short).
func (p *Proxy) serveLogged(w http.ResponseWriter, r *http.Request, preview bool) {
	lw := loggedWriter{ResponseWriter: w}
	x := exchange{start: time.Now()}
	defer p.logAccess(r, &lw, &x)
	p.serve(&lw, r, preview, &x)
}

// logAccess hands the entry of the exchange x over to the access log.
func (p *Proxy) logAccess(r *http.Request, lw *loggedWriter, x *exchange) {
	status := lw.status
	if status == 0 {
		// The client went away before any answer: nginx's 499.
		status = 499
	}
	if x.id == "" {
		// Refused before routing (admit): no id was made.
		x.id = r.Header.Get(headerRequestID)
	}
	p.opts.AccessLog.Log(traffic.Access{
		Time:       x.start,
		RequestID:  x.id,
		App:        p.opts.App,
		Release:    x.release,
		Instance:   x.instance,
		Method:     r.Method,
		Host:       r.Host,
		URI:        r.RequestURI,
		Proto:      r.Proto,
		Status:     status,
		Bytes:      lw.bytes,
		Duration:   time.Since(x.start),
		Upstream:   x.upstream,
		Held:       x.held,
		Retries:    x.retries,
		ClientAddr: r.RemoteAddr,
		Referer:    first(r.Header["Referer"]),
		UserAgent:  first(r.Header["User-Agent"]),
	})
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// loggedWriter is the ResponseWriter of a logged request: it notes the
// status and counts the body bytes written. Unwrap lets
// http.ResponseController reach the server's writer.
type loggedWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *loggedWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *loggedWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush flushes the server's writer, when it can.
func (w *loggedWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection over for a websocket: its 101 is written
// on the connection, not through the writer.
func (w *loggedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := hj.Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Unwrap returns the server's writer, for http.ResponseController.
func (w *loggedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
