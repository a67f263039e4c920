package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// idleConn is a client keep-alive connection that made one request.
type idleConn struct {
	c net.Conn
}

// openIdle opens n connections to base, makes one GET / on each (one
// connection at a time, as n separate clients arriving one after the
// other would) and leaves them open and idle. The caller closes them with
// closeAll, also after an error.
func openIdle(ctx context.Context, base string, n int) ([]idleConn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("parse target url %q: %w", base, err)
	}
	var d net.Dialer
	conns := make([]idleConn, 0, n)
	req := []byte("GET / HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: cutover-bench\r\n\r\n")
	for i := range n {
		c, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return conns, fmt.Errorf("open idle connection %d of %d: %w", i+1, n, err)
		}
		conns = append(conns, idleConn{c: c})
		if _, err := c.Write(req); err != nil {
			return conns, fmt.Errorf("request on idle connection %d: %w", i+1, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return conns, fmt.Errorf("response on idle connection %d: %w", i+1, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return conns, fmt.Errorf("response body on idle connection %d: %w", i+1, err)
		}
		if resp.StatusCode != http.StatusOK {
			return conns, fmt.Errorf("idle connection %d: status %d, want 200", i+1, resp.StatusCode)
		}
		if resp.Close {
			return conns, fmt.Errorf("idle connection %d: the target closed it after one request", i+1)
		}
	}
	return conns, nil
}

// closeAll closes conns.
func closeAll(conns []idleConn) {
	for _, ic := range conns {
		ic.c.Close() //nolint:errcheck // nothing to do about a failed close of a test connection
	}
}
