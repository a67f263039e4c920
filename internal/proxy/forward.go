package proxy

import (
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// copyBufSize is the size of the pooled buffers bodies are copied through.
const copyBufSize = 32 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// ServeHTTP forwards r to a healthy backend of the release it is pinned
// to or, by weight, of a serving release, holding it while there is none,
// and relays the answer. Websocket upgrades are spliced through. See the
// package documentation for the error statuses.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.opts.AccessLog != nil {
		p.serveLogged(w, r, false)
		return
	}
	p.serve(w, r, false, nil)
}

// serve forwards r; preview restricts it to the release in preview. x,
// when not nil, gathers what the access log records of the exchange.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, preview bool, x *exchange) {
	if !admit(w, r) {
		return
	}
	var idv []string
	if v := r.Header[headerRequestID]; len(v) > 0 && saneRequestID(v[0]) {
		idv = v[0:1:1]
	} else {
		idv = []string{p.newRequestID()}
	}
	if x != nil {
		x.id = idv[0]
	}
	sel := p.selectFor(r, preview)
	// The only CONNECT admit lets through is a websocket's over HTTP/2.
	if isUpgrade(r.Header) || r.Method == http.MethodConnect {
		p.serveUpgrade(w, r, idv, &sel, x)
		return
	}
	var cb *clientBody
	var bb *bufferedBody
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		if limit := p.opts.MaxRequestBody; limit > 0 && r.ContentLength > limit {
			// Refused before reading: a client waiting for 100 Continue
			// sends nothing.
			p.clientBodyFailed(w, idv, errBodyTooLarge)
			return
		}
		cb = newClientBody(w, r.Body, p.opts.ClientBodyTimeout, p.opts.MaxRequestBody)
		if p.buffering(r.ContentLength) {
			var err error
			if bb, err = p.bufferBody(cb, r.ContentLength); err != nil {
				p.clientBodyFailed(w, idv, err)
				return
			}
			defer bb.Close()
		}
	}

	ctx := r.Context()
	tg, err := p.acquire(ctx, &sel)
	held := tg.held
	if err != nil {
		x.holdEnded(held)
		p.acquireFailed(ctx, w, r, idv, err)
		return
	}
	b := tg.b
	// Counted in flight before the snapshot is looked at again, so that a
	// hold published since the request was routed is either seen here
	// (the request then waits in it) or sees the request in flight
	// (WaitRequests waits for it): no request reaches a backend unseen
	// once a held switch has waited for those in flight.
	b.begin()
	for t := p.table.Load(); t.hold != nil || t.holdFailed != nil; t = p.table.Load() {
		b.end()
		tg, err = p.acquire(ctx, &sel)
		held += tg.held
		if err != nil {
			x.holdEnded(held)
			p.acquireFailed(ctx, w, r, idv, err)
			return
		}
		b = tg.b
		b.begin()
	}
	if b.h2 != nil {
		if r.ProtoMajor < 2 && isGRPC(r.Header) {
			b.end()
			x.holdEnded(held)
			p.grpcOverHTTP1(w, idv)
			return
		}
		if cb != nil && r.ProtoMajor >= 2 {
			// A gRPC stream may stay quiet as long as it likes; the
			// client's HTTP/2 connection has its own liveness.
			cb.timeout = 0
		}
	}
	o := p.newOutbound(r, idv, b.spec.Addr)
	// Once serve returns, the exchange is over (a request body was sent or
	// abandoned, the answer relayed): nothing uses the request.
	defer o.free()
	out := &o.req
	if bb != nil {
		bb.attach(out, o.hdr)
	} else if cb != nil {
		out.Body = cb
	}
	retryable := out.Body == nil && idempotent(r.Method)
	if out.Body != nil {
		// A backend may answer while the upload still streams in (an echo,
		// a progress stream); net/http would otherwise stop reading the
		// request body once the response starts. Failing leaves the
		// default, which only matters to such backends.
		_ = http.NewResponseController(w).EnableFullDuplex()
	}

	start := p.now()
	// waited is how long the request waited for a backend before start;
	// held counts the waits after failed attempts too, which lie between
	// start and the answer.
	waited := held
	var resp *http.Response
	// holdUntil bounds the wait for another backend after the first
	// failed attempt; resets counts the attempts that failed after the
	// request may have reached the app.
	var holdUntil time.Time
	resets := 0
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			b.begin()
		}
		resp, err = b.roundTrip(ctx, w, out, &o.in)
		if err == nil {
			break
		}
		b.end()
		if ctx.Err() != nil {
			// The client went away; that is not the backend's fault.
			return
		}
		if cb.failed() {
			// The client's body failed: the upstream request was aborted
			// (writeBody), and the fault is the client's.
			p.clientBodyFailed(w, idv, cb.err)
			return
		}
		b.rel.connError()
		if isDialError(err) {
			b.rel.m.connectErrors.Add(1)
		}
		p.log.Debug("upstream request failed", "release", b.spec.Release, "instance", b.spec.ID,
			"attempt", attempt, "err", err)
		// A connection the backend refused carried nothing: the request may
		// go anywhere else, whatever its method and body. Anything else may
		// have reached the app, and only an idempotent bodiless request is
		// sent again, at most maxResetRetries times.
		refused := isDialError(err)
		timeout := !refused && isTimeout(err)
		if refusedByBackend(err) {
			b.refused(err)
		}
		if attempt < maxAttempts && (refused || (retryable && !timeout && resets < maxResetRetries)) {
			if !refused {
				resets++
			}
			if holdUntil.IsZero() {
				holdUntil = time.Now().Add(p.opts.HoldTimeout)
			}
			b.rel.m.retries.Add(1)
			if x != nil {
				x.retries++
			}
			rt, herr := p.reacquire(ctx, &sel, b, holdUntil)
			held += rt.held
			if herr == nil {
				tg, b = rt, rt.b
				out = retarget(out, b.spec.Addr)
				continue
			}
			closeUnsent(out, refused)
			x.holdEnded(held)
			p.acquireFailed(ctx, w, r, idv, herr)
			return
		}
		closeUnsent(out, refused)
		status, msg := http.StatusBadGateway, "cutover: instance of release "+b.spec.Release+" failed to answer\n"
		if timeout {
			status, msg = http.StatusGatewayTimeout, "cutover: instance of release "+b.spec.Release+
				" did not answer within "+p.opts.ResponseHeaderTimeout.String()+"\n"
		}
		d := b.rel.record(status, start)
		b.rel.m.observe(status, waited+d, held)
		x.answered(b, d, held)
		p.stamp(w.Header(), r, b.rel, false)
		p.writeErrorTo(w, r, status, idv, msg)
		return
	}
	defer b.end()
	d := b.rel.record(resp.StatusCode, start)
	b.rel.m.observe(resp.StatusCode, waited+d, held)
	x.answered(b, d, held)
	p.relay(w, r, resp, idv, b, tg.setCookie, cb)
}

// maxAttempts bounds the upstream attempts of one request. Each refused
// attempt takes its backend out of rotation, so the next goes elsewhere
// or waits; the bound only guards against backends that flap faster
// than requests are retried.
const maxAttempts = 16

// maxResetRetries bounds how many times an idempotent bodiless request
// is sent again after an attempt that may have reached the app failed
// (reset, closed) before any response byte. Two lets a request outlast
// two instances killed at once while it was in flight on each, one after
// the other; the bound keeps a request that crashes every instance it
// reaches (a query of death) from taking down more than three.
const maxResetRetries = 2

// closeUnsent closes the body of a request about to be answered by the
// proxy when no attempt sent it (refused), as http.Transport does: the
// server then reads what is left of a small upload before answering,
// instead of resetting a client that is still sending it. The error of
// closing a body nobody will read tells nothing.
func closeUnsent(out *http.Request, refused bool) {
	if refused && out.Body != nil {
		_ = out.Body.Close()
	}
}

// acquireFailed answers the request r for which no backend was found:
// 503, unless the client went away.
func (p *Proxy) acquireFailed(ctx context.Context, w http.ResponseWriter, r *http.Request, idv []string, err error) {
	if ctx.Err() == nil {
		p.unserved.Add(1)
	}
	var failed *holdFailedError
	switch {
	case ctx.Err() != nil:
	case errors.As(err, &failed):
		p.writeErrorTo(w, r, http.StatusServiceUnavailable, idv, failed.body)
	case errors.Is(err, errHeldTooLong):
		p.writeErrorTo(w, r, http.StatusServiceUnavailable, idv, p.heldBody)
	case errors.Is(err, errNoPreview):
		p.writeErrorTo(w, r, http.StatusServiceUnavailable, idv, "cutover: no release in preview\n")
	case errors.Is(err, errPreviewToken):
		p.writeErrorTo(w, r, http.StatusForbidden, idv, "cutover: this address serves the release in preview only to requests with its preview token (the link `cutover deploy --preview` printed)\n")
	default:
		p.writeErrorTo(w, r, http.StatusServiceUnavailable, idv, p.holdBody)
	}
}

// relay writes the backend's response resp to the client: headers without
// the hop-by-hop ones, the body (flushed as it comes when streamed) and
// trailers, with the release that answered (and the version cookie when
// setCookie). A backend failing mid-body aborts the client connection, so
// the client does not take a truncated body for a complete one; it is
// counted against the release unless the client's request body cb (nil:
// none) failed first, which aborted the exchange.
func (p *Proxy) relay(w http.ResponseWriter, r *http.Request, resp *http.Response, idv []string, b *Backend, setCookie bool, cb *clientBody) {
	h := w.Header()
	copyEndToEnd(h, resp.Header)
	p.stamp(h, r, b.rel, setCookie)
	if _, ok := h["Content-Type"]; !ok {
		// Keep net/http from sniffing and adding a Content-Type the backend
		// did not send.
		h["Content-Type"] = nil
	}
	h[headerRequestID] = idv
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(resp.StatusCode)

	flusher, _ := w.(http.Flusher)
	stream := flusher != nil && (resp.ContentLength < 0 || isEventStream(resp.Header))
	if stream && (b.h2 != nil || isEventStream(resp.Header)) {
		// Event streams, and an h2c backend's streams (gRPC), may stay
		// quiet for long; the client should see the headers now.
		flusher.Flush()
	}
	readErr, writeErr := copyBody(w, resp.Body, flusher, stream)
	// Closing now, not deferred, fills resp.Trailer.
	resp.Body.Close()
	if readErr != nil && writeErr == nil && r.Context().Err() == nil {
		if cb.failed() {
			panic(http.ErrAbortHandler)
		}
		b.rel.bodyFailed(resp.StatusCode)
		p.log.Debug("upstream body failed", "release", b.spec.Release, "instance", b.spec.ID, "err", readErr)
		if b.h2 != nil && r.ProtoMajor >= 2 && isGRPC(resp.Header) {
			p.grpcUnavailable(h, b)
			return
		}
		panic(http.ErrAbortHandler)
	}
	if readErr != nil || writeErr != nil {
		return
	}
	if len(resp.Trailer) == 0 {
		return
	}
	if flusher != nil {
		// Force chunking: for a short body net/http would otherwise compute
		// a Content-Length and have nowhere to put the trailers.
		flusher.Flush()
	}
	if len(resp.Trailer) == announced {
		for k, vv := range resp.Trailer {
			h[k] = vv
		}
		return
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
}

// copyBody copies body to w through a pooled buffer, flushing after every
// write when stream is set. It returns the error reading body (nil at EOF)
// or the error writing to the client.
func copyBody(w io.Writer, body io.Reader, flusher http.Flusher, stream bool) (readErr, writeErr error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil, werr
			}
			if stream {
				flusher.Flush()
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

// retarget returns a copy of the request out aimed at addr: a bodiless
// one, or one whose body no attempt has read yet (a refused connection). A new
// request is built so that the failed attempt's request stays untouched.
func retarget(out *http.Request, addr string) *http.Request {
	o := new(outbound)
	o.req = *out
	o.url = *out.URL
	o.url.Host = addr
	o.req.URL = &o.url
	return &o.req
}

// writeError answers with a short text body from the proxy itself.
func (p *Proxy) writeError(w http.ResponseWriter, status int, idv []string, msg string) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h[headerRequestID] = idv
	w.WriteHeader(status)
	// A client that went away cannot be told anything else.
	_, _ = io.WriteString(w, msg)
}

// idempotent reports whether a request with this method may be sent twice
// (RFC 9110 section 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// isDialError reports whether err is a failure to connect to a backend,
// which sent nothing.
func isDialError(err error) bool {
	var de *dialError
	return errors.As(err, &de)
}

// refusedByBackend reports whether err says the backend's address has no
// listener (ECONNREFUSED): its process is gone or not listening yet, so it
// leaves rotation until it accepts again. Other dial errors — a connect
// timeout when the backend's accept queue is full under a spike, the
// proxy's own EMFILE — say nothing about that backend being down: the
// request is sent elsewhere (nothing reached the app) but the backend
// stays in rotation, or one busy moment would empty the whole pool.
func refusedByBackend(err error) bool {
	return isDialError(err) && errors.Is(err, syscall.ECONNREFUSED)
}

// isTimeout reports whether err is the backend being too slow to answer
// (ResponseHeaderTimeout), as opposed to failing to connect or resetting.
func isTimeout(err error) bool {
	var de *dialError
	if errors.As(err, &de) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isEventStream reports whether h declares a server-sent events body.
func isEventStream(h http.Header) bool {
	v := h["Content-Type"]
	if len(v) == 0 {
		return false
	}
	const es = "text/event-stream"
	ct := v[0]
	if len(ct) < len(es) || !strings.EqualFold(ct[:len(es)], es) {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}
