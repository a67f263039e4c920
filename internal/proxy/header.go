package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// Header names the proxy sets, in canonical form so they can be used as map
// keys directly.
const (
	headerRequestID      = "X-Request-Id"
	headerForwardedFor   = "X-Forwarded-For"
	headerForwardedProto = "X-Forwarded-Proto"
	headerForwardedHost  = "X-Forwarded-Host"
	headerRealIP         = "X-Real-Ip"
	headerForwarded      = "Forwarded"
)

// Shared read-only header values; neither the server nor
// (*http.Request).Write modifies the value slices of a header map it is given.
var (
	valuesHTTP     = []string{"http"}
	valuesHTTPS    = []string{"https"}
	valuesTrailers = []string{"trailers"}
	valuesUpgrade  = []string{"Upgrade"}
)

// maxRequestIDLen bounds a client-supplied X-Request-ID kept as is.
const maxRequestIDLen = 128

// isHopHeader reports whether the canonical header key k describes one
// connection rather than the message (RFC 9110 section 7.6.1), so a proxy
// must not forward it. Proxy-* covers Proxy-Authorization,
// Proxy-Authenticate and the non-standard Proxy-Connection sent by libcurl.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return strings.HasPrefix(k, "Proxy-")
}

// tokenListed reports whether the comma-separated header values vals
// contain the token k, compared case-insensitively. It does not allocate.
func tokenListed(vals []string, k string) bool {
	for _, v := range vals {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(textproto.TrimString(tok), k) {
				return true
			}
		}
	}
	return false
}

// copyEndToEnd copies into dst the headers of src that are not hop-by-hop,
// dropping also those src's Connection header names. Value slices are
// shared, not copied.
func copyEndToEnd(dst, src http.Header) {
	copyHeaders(dst, src, false)
}

// copyHeaders is copyEndToEnd, dropping also, when untrusted, the fields
// in which proxies tell where a request came from (isForwardingHeader).
func copyHeaders(dst, src http.Header, untrusted bool) {
	conn := src["Connection"]
	for k, vv := range src {
		if isHopHeader(k) || (conn != nil && tokenListed(conn, k)) || (untrusted && isForwardingHeader(k)) {
			continue
		}
		dst[k] = vv
	}
}

// isForwardingHeader reports whether the canonical header key k is one in
// which proxies tell the app where a request came from: Forwarded,
// X-Real-IP and every X-Forwarded-* (For, Proto, Host, and the Port,
// Scheme, Ssl and Prefix that Rack, Spring and others read). From a
// client that is not a trusted proxy they are lies the app would believe.
func isForwardingHeader(k string) bool {
	if len(k) < 9 || k[0] != 'X' && k[0] != 'F' {
		return false
	}
	return strings.HasPrefix(k, "X-Forwarded-") || k == headerRealIP || k == headerForwarded
}

// trusts reports whether the peer at addr (host:port, a request's
// RemoteAddr) is in Options.TrustedProxies.
func (p *Proxy) trusts(addr string) bool {
	if len(p.opts.TrustedProxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return p.trustsIP(ip)
}

func (p *Proxy) trustsIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, pfx := range p.opts.TrustedProxies {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// clientIP returns the address of the client a trusted proxy at peer
// forwarded the request for: the last address of the X-Forwarded-For
// values xff that is not a trusted proxy itself (as nginx's real_ip with
// real_ip_recursive), or peer when there is none.
func (p *Proxy) clientIP(xff []string, peer string) string {
	for i := len(xff) - 1; i >= 0; i-- {
		v := xff[i]
		for v != "" {
			var a string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				a, v = v[j+1:], v[:j]
			} else {
				a, v = v, ""
			}
			a = textproto.TrimString(a)
			ip, err := netip.ParseAddr(a)
			if err != nil {
				// Not an address: what is left of the chain cannot be
				// read further.
				return peer
			}
			if !p.trustsIP(ip) {
				return a
			}
		}
	}
	return peer
}

// newRequestID returns a new request ID: a random per-process prefix and
// a counter, unique without per-request randomness.
func (p *Proxy) newRequestID() string {
	var buf [48]byte
	b := append(buf[:0], p.idPrefix...)
	b = strconv.AppendUint(b, p.idSeq.Add(1), 36)
	return string(b)
}

// saneRequestID reports whether a client-supplied X-Request-ID may be kept:
// 1 to 128 visible ASCII characters.
func saneRequestID(v string) bool {
	if v == "" || len(v) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// outbound groups what an upstream request needs so that building one is a
// single allocation (plus its header map).
type outbound struct {
	req http.Request
	url url.URL
	// vals backs the one-element value slices of the headers the proxy sets.
	vals [3]string
	// hdr is the header map, kept across uses of a pooled outbound.
	hdr http.Header
	// in is where the backend's answer is read when it is simple.
	in inbound
}

// inbound is where an exchange reads a simple response (readhead.go):
// kept in the request's pooled outbound, with a header map kept across
// uses, so that reading one allocates only its head's string and values.
// It is valid until the outbound is freed.
type inbound struct {
	resp http.Response
	hdr  http.Header
}

// outgoing returns the request to send to the backend at addr for the
// client request r. The Host header is passed through unchanged; hop-by-hop
// headers are dropped; X-Request-ID (idv, a one-element slice) and the
// forwarding fields are set: from a client that is not a trusted proxy
// (Options.TrustedProxies), the client's Forwarded, X-Real-IP and
// X-Forwarded-* are dropped, and X-Forwarded-For and X-Real-IP are its
// address, X-Forwarded-Proto the scheme it used, X-Forwarded-Host its
// Host; from a trusted proxy, its address is appended to X-Forwarded-For,
// and the fields it sent are kept (X-Real-IP, when it sent none, is the
// last untrusted address of X-Forwarded-For). r is not modified.
func (p *Proxy) outgoing(r *http.Request, idv []string, addr string) *http.Request {
	return &p.newOutbound(r, idv, addr).req
}

// outbounds recycles outbound requests and their header maps: forwarding a
// request then allocates neither.
var outbounds = sync.Pool{New: func() any {
	return &outbound{hdr: make(http.Header, 16), in: inbound{hdr: make(http.Header, 8)}}
}}

// newOutbound is outgoing, returning the outbound from the pool; free
// gives it back once nothing uses the request any more.
func (p *Proxy) newOutbound(r *http.Request, idv []string, addr string) *outbound {
	o := outbounds.Get().(*outbound)
	out := &o.req
	*out = *r
	o.url = *r.URL
	o.url.Scheme = "http"
	o.url.Host = addr
	out.URL = &o.url
	// RequestURI keeps the client's request target: writeRequest sends an
	// origin-form target as it came (Request.Write ignores the field).
	out.Close = false
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	if r.ContentLength == 0 {
		// No body: a nil Body lets roundTrip send the request again on a
		// fresh connection when a reused one turns out closed, and write
		// it without a body goroutine.
		out.Body = nil
		out.GetBody = nil
	}

	h := o.hdr
	trusted := p.trusts(r.RemoteAddr)
	copyHeaders(h, r.Header, !trusted)
	if tokenListed(r.Header["Te"], "trailers") {
		h["Te"] = valuesTrailers
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if !trusted {
			o.vals[0] = ip
			h[headerForwardedFor] = o.vals[0:1:1]
			h[headerRealIP] = o.vals[0:1:1]
		} else {
			prior := r.Header[headerForwardedFor]
			if len(h[headerRealIP]) == 0 {
				// The client's address, as the proxy in front saw it.
				o.vals[2] = p.clientIP(prior, ip)
				h[headerRealIP] = o.vals[2:3:3]
			}
			if len(prior) > 0 {
				ip = strings.Join(prior, ", ") + ", " + ip
			}
			o.vals[0] = ip
			h[headerForwardedFor] = o.vals[0:1:1]
		}
	}
	// From a trusted proxy, the scheme and host it was asked with win.
	if !trusted || len(h[headerForwardedProto]) == 0 {
		if r.TLS != nil {
			h[headerForwardedProto] = valuesHTTPS
		} else {
			h[headerForwardedProto] = valuesHTTP
		}
	}
	if (!trusted || len(h[headerForwardedHost]) == 0) && r.Host != "" {
		o.vals[1] = r.Host
		h[headerForwardedHost] = o.vals[1:2:2]
	}
	h[headerRequestID] = idv
	if _, ok := h["User-Agent"]; !ok {
		// (*http.Request).Write sends Go's User-Agent when the header is
		// absent; present and empty, it sends none.
		h["User-Agent"] = nil
	}
	out.Header = h
	return o
}

// free returns o to the pool. The request, its header map and its URL must
// not be used after.
func (o *outbound) free() {
	h, ih := o.hdr, o.in.hdr
	clear(h)
	clear(ih)
	*o = outbound{hdr: h, in: inbound{hdr: ih}}
	outbounds.Put(o)
}
