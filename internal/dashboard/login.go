package dashboard

// Failed logins: how many wrong tokens one client may send.

import (
	"net"
	"net/http"
	"net/netip"
	"time"
)

// MaxFailedLogins is how many wrong tokens one client address (an IPv6
// client: its /64 network, see clientAddr) may send in FailedLoginWindow;
// after that its logins are refused with 429, the right token too, until
// the window ends; only a one-time token (Mint) still logs in. A token of 16 characters or
// more cannot be guessed at that pace; the bound keeps a guesser from
// flooding the daemon's log.
const (
	MaxFailedLogins   = 10
	FailedLoginWindow = time.Minute
)

// maxTracked bounds the addresses failures are kept for (see makeRoom).
const maxTracked = 4096

type failures struct {
	n     int
	since time.Time // start of the window
}

// clientAddr is the client failed logins are counted for: the
// connection's IPv4 address, or the /64 network of its IPv6 address
// ("2001:db8:1:2::/64"). An IPv6 client holds a whole /64 (privacy
// addresses change within it), and counting its addresses one by one
// would give it MaxFailedLogins tries for each of 2^64 of them.
func clientAddr(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr
		}
		return host
	}
	a := ap.Addr().Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64) //nolint:errcheck // cannot fail for an IPv6 address and 64
	return p.String()
}

// limited reports whether addr has used its failed logins in the current
// window, and how long until the window ends.
func (s *Server) limited(addr string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failed[addr]
	if f == nil {
		return 0, false
	}
	left := f.since.Add(FailedLoginWindow).Sub(s.now())
	if left <= 0 {
		delete(s.failed, addr)
		return 0, false
	}
	return left, f.n >= MaxFailedLogins
}

// fail counts a failed login of addr and reports whether to log it: every
// one up to the limit, then one line for the rest of the window.
func (s *Server) fail(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	f := s.failed[addr]
	if f == nil || now.Sub(f.since) >= FailedLoginWindow {
		if len(s.failed) >= maxTracked {
			s.makeRoom(now)
		}
		f = &failures{since: now}
		s.failed[addr] = f
	}
	f.n++
	if f.n < MaxFailedLogins {
		return true
	}
	if f.n == MaxFailedLogins {
		s.log.Warn("dashboard logins from this address refused for the rest of the window: too many wrong tokens",
			"remote", addr, "failed", f.n, "window", FailedLoginWindow)
	}
	return false
}

// makeRoom drops tracked addresses until fewer than maxTracked are left:
// those whose window ended, then those still within their allowance, and
// only then, if every one is refused, the one whose window ends first. A
// refused address is never dropped while others could be: a guesser with
// many addresses must not free its own by failing from the others.
// s.mu is held.
func (s *Server) makeRoom(now time.Time) {
	for k, o := range s.failed {
		if now.Sub(o.since) >= FailedLoginWindow {
			delete(s.failed, k)
		}
	}
	for k, o := range s.failed {
		if len(s.failed) < maxTracked {
			return
		}
		if o.n < MaxFailedLogins {
			delete(s.failed, k)
		}
	}
	for len(s.failed) >= maxTracked {
		oldest := ""
		for k, o := range s.failed {
			if oldest == "" || o.since.Before(s.failed[oldest].since) {
				oldest = k
			}
		}
		delete(s.failed, oldest)
	}
}
