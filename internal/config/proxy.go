package config

import (
	"net/netip"
	"strings"
)

// Proxy configures the reverse proxy in front of the app.
type Proxy struct {
	// Listen (key listen) is the address the proxy serves on, host:port.
	// Default "127.0.0.1:8080".
	Listen string `toml:"listen"`

	// HoldTimeout (key hold_timeout) is how long a request waits for a
	// healthy instance when there is none, before a 503, and how long a
	// new connection to a TCP port ([[app.tcp]]) waits for an instance
	// that takes it, before it is closed. Default 30s.
	HoldTimeout Duration `toml:"hold_timeout"`

	// DrainTimeout (key drain_timeout) is how long in-flight requests,
	// streams and websockets of a retiring release have to finish before
	// they are cut. Default 30s.
	DrainTimeout Duration `toml:"drain_timeout"`

	// DrainPace (key drain_pace) spreads the closing of what is still
	// open at drain_timeout (websockets, streams, long polls) evenly over
	// this duration, so their clients do not all reconnect at once; 0
	// closes them all at once. Default 5s.
	DrainPace Duration `toml:"drain_pace"`

	// ReadHeaderTimeout (key read_header_timeout) bounds how long a client
	// may take to send request headers. Default 10s.
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`

	// IdleTimeout (key idle_timeout) closes a client keep-alive connection
	// idle this long, on the proxy's listeners and on those of [metrics]
	// and [dashboard]. Default 120s.
	IdleTimeout Duration `toml:"idle_timeout"`

	// ResponseHeaderTimeout (key response_header_timeout) is how long an
	// instance may take to start answering before a 504. Default 60s.
	ResponseHeaderTimeout Duration `toml:"response_header_timeout"`

	// ClientBodyTimeout (key client_body_timeout) is the longest a client
	// may go without sending anything of a request body it is sending;
	// after it the client gets 408 and a request the app already
	// received is aborted. Default 60s (nginx's client_body_timeout).
	ClientBodyTimeout Duration `toml:"client_body_timeout"`

	// RequestBuffering (key request_buffering) reads a request body with
	// a Content-Length of at most RequestBufferMax whole from the client
	// before the request goes to an instance, as nginx does, so a slow
	// client never holds an app connection. A chunked body always
	// streams. Default true.
	RequestBuffering bool `toml:"request_buffering"`

	// RequestBufferMemory (key request_buffer_memory) is how many bytes of
	// a buffered body are kept in memory; the rest goes to a temporary
	// file in <data_dir>/bodies, unlinked as soon as it is made. In bytes;
	// default 65536 (64 KiB); at least 1.
	RequestBufferMemory int64 `toml:"request_buffer_memory"`

	// RequestBufferMax (key request_buffer_max) is the largest body
	// buffered, in bytes: a larger one streams to the app as it arrives.
	// Default 10485760 (10 MiB); at least 1.
	RequestBufferMax int64 `toml:"request_buffer_max"`

	// MaxRequestBody (key max_request_body) refuses request bodies larger
	// than this with 413, in bytes; 0 = no limit. Default 0, so that apps
	// taking large uploads keep working (nginx's client_max_body_size is
	// 1m).
	MaxRequestBody int64 `toml:"max_request_body"`

	// TrustedProxies (key trusted_proxies) lists the proxies in front of
	// cutover (a load balancer, a CDN), as networks such as "10.0.0.0/8"
	// or single addresses: from a peer in them the forwarding fields
	// (X-Forwarded-For, which cutover appends to, X-Forwarded-Proto,
	// X-Forwarded-Host, Forwarded, X-Real-IP) are kept; from any other
	// they are dropped and set anew from the connection. Default empty:
	// trust no one. See TrustedPrefixes.
	TrustedProxies []string `toml:"trusted_proxies"`

	// MaxRequestLine (key max_request_line) bounds a request's line
	// (method, target and version, line end included), in bytes; a
	// longer one gets 414 URI Too Long. Default 8192 (8 KiB); 256 to
	// max_header_bytes.
	MaxRequestLine int `toml:"max_request_line"`

	// MaxHeaderBytes (key max_header_bytes) bounds a request's whole head
	// (request line and header fields), in bytes; a larger one gets 431
	// Request Header Fields Too Large. Each client connection may hold
	// that much while its head arrives. Default 65536 (64 KiB); 1024 to
	// 1048576 (1 MiB).
	MaxHeaderBytes int `toml:"max_header_bytes"`

	// PreviewListen (key preview_listen) is an optional second address,
	// host:port, that serves only the release in preview (see `cutover
	// deploy --preview`), to requests with its preview token like the main
	// listener. Default empty (preview on the main listener only).
	PreviewListen string `toml:"preview_listen"`

	// TLSListen (key tls_listen) is the address of the TLS listener,
	// host:port ("0.0.0.0:443"): HTTPS with HTTP/2 and HTTP/1.1, for the
	// hosts with a certificate (see app.tls_cert). It is held by the
	// keeper across upgrades as proxy.listen is. Default empty (no TLS).
	TLSListen string `toml:"tls_listen"`

	// HTTPSPort (key https_port) is the port clients reach the TLS
	// listener on, written in the plain listener's redirects to https
	// (left out when 443). Set it when a firewall or a load balancer
	// forwards 443 to another port of tls_listen. Default 0: the port of
	// tls_listen.
	HTTPSPort int `toml:"https_port"`

	// HTTP2Server (key http2_server) chooses the server of the TLS
	// listener's HTTP/2 connections: "cutover" (cutover's own, package
	// h2) or "go" (Go's net/http). Both serve the same requests; see
	// docs/tls.md for what each costs. Default "cutover".
	HTTP2Server string `toml:"http2_server"`

	// Sticky (key sticky) pins a client to the release that first served
	// it while two releases serve, with a version cookie. Default true.
	Sticky bool `toml:"sticky"`

	// Cookie (key cookie) is the name of the version cookie. Default
	// "cutover_release".
	Cookie string `toml:"cookie"`

	// VersionHeader (key version_header) is the request header with which a
	// non-browser client asks to stay on a release while two serve;
	// responses carry it with the release that answered — its id, so the
	// time of the deploy and the source's name or tag. "" turns it off:
	// responses do not name the release (a request may still ask for one
	// with X-Cutover-Release).
	// A release in preview is reached by its preview token, never by its
	// name. Default "X-Cutover-Release".
	VersionHeader string `toml:"version_header"`
}

// TrustedPrefixes returns TrustedProxies as networks; a single address is
// a network of itself. Entries that do not parse (Load refuses them) are
// left out.
func (p *Proxy) TrustedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range p.TrustedProxies {
		if pfx, err := parsePrefix(s); err == nil {
			out = append(out, pfx)
		}
	}
	return out
}

// parsePrefix parses a network such as "10.0.0.0/8" (masked) or a single
// address such as "192.0.2.10" or "::1".
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
			// Peers are compared as IPv4: "::ffff:10.0.0.0/104" is
			// "10.0.0.0/8".
			pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
