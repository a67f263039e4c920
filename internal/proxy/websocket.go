package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"time"
)

// isUpgrade reports whether a request asks to switch to the websocket
// protocol. Other upgrades are forwarded as plain requests, without their
// Upgrade header.
func isUpgrade(h http.Header) bool {
	return tokenListed(h["Upgrade"], "websocket") && tokenListed(h["Connection"], "upgrade")
}

// serveUpgrade forwards a websocket handshake on a connection of its own to
// the backend and, once the backend switches protocols, splices the client
// and backend connections together until either side closes or Drain cuts
// them. The websocket counts as in flight on its backend all along.
func (p *Proxy) serveUpgrade(w http.ResponseWriter, r *http.Request, idv []string, sel *selection) {
	ctx := r.Context()
	hj, ok := w.(http.Hijacker)
	if !ok {
		p.writeError(w, http.StatusHTTPVersionNotSupported, idv, "cutover: websockets need HTTP/1.1\n")
		return
	}
	tg, err := p.acquire(ctx, sel)
	if err != nil {
		p.acquireFailed(ctx, w, idv, err)
		return
	}
	b := tg.b
	start := p.now()
	b.begin()
	defer func() { b.end() }()

	// A backend that refuses the connection leaves rotation and the
	// handshake goes to another one, or waits for one (see serve).
	var up net.Conn
	var holdUntil time.Time
	for attempt := 1; ; attempt++ {
		up, err = b.dialer.DialContext(ctx, "tcp", b.spec.Addr)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		err = &dialError{addr: b.spec.Addr, err: err}
		if attempt == maxAttempts {
			p.upgradeFailed(w, r, b, idv, start, err)
			return
		}
		b.rel.connError()
		b.refused(err)
		if holdUntil.IsZero() {
			holdUntil = time.Now().Add(p.opts.HoldTimeout)
		}
		rt, herr := p.reacquire(ctx, sel, b, holdUntil)
		if herr != nil {
			p.acquireFailed(ctx, w, idv, herr)
			return
		}
		b.end()
		tg, b = rt, rt.b
		b.begin()
	}
	out := outgoing(r, idv, b.spec.Addr)
	out.Header["Connection"] = valuesUpgrade
	out.Header["Upgrade"] = r.Header["Upgrade"]
	b.rel.add(up)
	defer func() {
		b.rel.remove(up)
		// Closing may repeat the close that ended the splice.
		_ = up.Close()
	}()
	// The handshake answer is bounded like any response's headers.
	if err := up.SetDeadline(time.Now().Add(p.opts.ResponseHeaderTimeout)); err != nil {
		p.upgradeFailed(w, r, b, idv, start, err)
		return
	}
	if err := out.Write(up); err != nil {
		p.upgradeFailed(w, r, b, idv, start, err)
		return
	}
	upr := bufio.NewReader(up)
	resp, err := http.ReadResponse(upr, out)
	if err != nil {
		p.upgradeFailed(w, r, b, idv, start, err)
		return
	}
	if err := up.SetDeadline(time.Time{}); err != nil {
		p.upgradeFailed(w, r, b, idv, start, err)
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// The backend refused the upgrade; its answer is an ordinary
		// response.
		b.rel.record(resp.StatusCode, start)
		p.relay(w, r, resp, idv, b, tg.setCookie)
		return
	}
	if !tokenListed(resp.Header["Upgrade"], "websocket") {
		b.rel.connError()
		b.rel.record(http.StatusBadGateway, start)
		p.stamp(w.Header(), b.rel, false)
		p.writeError(w, http.StatusBadGateway, idv, "cutover: instance of release "+b.spec.Release+" switched to another protocol than websocket\n")
		return
	}
	b.rel.record(resp.StatusCode, start)

	h := w.Header()
	copyEndToEnd(h, resp.Header)
	p.stamp(h, b.rel, tg.setCookie)
	h["Connection"] = valuesUpgrade
	h["Upgrade"] = resp.Header["Upgrade"]
	h[headerRequestID] = idv
	client, brw, err := hj.Hijack()
	if err != nil {
		p.log.Debug("hijack client connection", "release", b.spec.Release, "instance", b.spec.ID, "err", err)
		return
	}
	b.rel.add(client)
	defer func() {
		b.rel.remove(client)
		// Closing may repeat the close that ended the splice.
		_ = client.Close()
	}()
	// The server's header read deadline must not cut the websocket.
	if err := client.SetDeadline(time.Time{}); err != nil {
		return
	}
	resp.Header = h
	resp.Body = nil // only the status line and headers; the rest is spliced
	if err := resp.Write(brw); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	splice(client, brw.Reader, up, upr)
}

// upgradeFailed answers a websocket handshake that could not reach the
// backend: 504 when it was too slow, else 502.
func (p *Proxy) upgradeFailed(w http.ResponseWriter, r *http.Request, b *Backend, idv []string, start time.Time, err error) {
	if r.Context().Err() != nil {
		return
	}
	b.rel.connError()
	p.log.Debug("upstream websocket handshake failed", "release", b.spec.Release, "instance", b.spec.ID, "err", err)
	status, msg := http.StatusBadGateway, "cutover: instance of release "+b.spec.Release+" failed to answer\n"
	if isTimeout(err) {
		status, msg = http.StatusGatewayTimeout, "cutover: instance of release "+b.spec.Release+
			" did not answer within "+p.opts.ResponseHeaderTimeout.String()+"\n"
	}
	b.rel.record(status, start)
	p.stamp(w.Header(), b.rel, false)
	p.writeError(w, status, idv, msg)
}

// splice copies both ways between the client and backend connections
// (reading through their buffered readers, which may already hold data)
// until one direction ends; then it closes both connections, which ends the
// other, and waits for it.
func splice(client net.Conn, clientr io.Reader, up net.Conn, upr io.Reader) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Errors end the splice; there is no one to report them to.
		_, _ = io.Copy(up, clientr)
		_ = up.Close()
		_ = client.Close()
	}()
	_, _ = io.Copy(client, upr)
	_ = client.Close()
	_ = up.Close()
	<-done
}
