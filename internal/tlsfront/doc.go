// Package tlsfront is cutover's front door: the TLS listener, its
// certificates, and the choice between HTTP/2 and HTTP/1.1 on each of its
// connections. Behind it the requests go to the same handler as the plain
// listener's (the proxy.Router), so that everything the proxy does — the
// version cookie and pins, hold, retry, drain, preview — works the same
// whichever way a client came.
//
// # Certificates
//
// A CertSource answers a TLS handshake with a certificate for the name
// the client asked for (SNI), or with (nil, nil) for a name it does not
// have. A Chain asks its sources in order — certificates from files
// first (FileCerts), then whatever else is set (the ACME manager is one
// more CertSource) — and the first that has one answers. A source that
// also implements CertChecker tells, without a handshake, whether it has
// a certificate for a name: the plain listener asks that to decide
// whether to redirect a request to https (see proxy.RouterOptions.Certs).
//
// ACME's TLS-ALPN-01 challenge (RFC 8737) arrives as a handshake that
// offers the single protocol "acme-tls/1". The chain hands such
// handshakes to its Challenge source, when one is set, and negotiates
// that protocol; the server closes the connection once the handshake is
// done, as the challenge has then been answered. Without a Challenge
// source such hellos are served like any other.
//
// FileCerts holds one certificate and key (PEM files) per app, for the
// app's host names, matched as the Router matches them: an exact name,
// else the longest wildcard ("*.example.com" matches any name ending in
// ".example.com"), else the default app's certificate (the single-app
// form's app has no host names: its certificate serves every name). For a
// name the default certificate is not valid for, the chain's other
// sources (ACME) are asked first: the default certificate is the
// fallback (FallbackSource), never hiding another app's. The
// files are read at start, where a pair that does not load is an error
// naming the app, the config key and the file. They are then looked at
// every few seconds (Run: size and modification time) and a pair that
// changed is read again, so that a renewed certificate is served without
// a restart. A pair that no longer loads keeps the certificate it
// replaces and is logged with the reason: one bad certificate never takes
// the others, or the routing, with it.
//
// # Connections
//
// Server accepts on the TLS listener and does each handshake on the
// connection's own goroutine, bounded by HandshakeTimeout, so that a slow
// or silent client holds nothing but itself. The protocol the client and
// server agreed on by ALPN then decides:
//
//   - "h2": the HTTP/2 server Options.HTTP2Server names (DefaultHTTP2Server
//     when empty). HTTP2Cutover is cutover's own (package h2, through
//     h2.Server.ServeConn on the connection's goroutine, as h1); HTTP2Go
//     is net/http's (http.Server, fed the connection through a listener),
//     the one the Go project maintains — golang.org/x/net/http2's Server
//     is deprecated in its favour and, from Go 1.27, wraps it. Either
//     way the already-negotiated connection is handed over: one accept
//     loop and one handshake for both protocols.
//   - "http/1.1", or nothing (a client without ALPN): cutover's own
//     HTTP/1.1 server (package h1) through h1.Server.ServeConn, the one
//     the plain listener uses, with its bounds and timeouts.
//
// Below TLS, the socket is read and written with package rawio, as the
// plain listener's connections are: system calls the Go scheduler does
// not hand the thread off for.
//
// Either way every request has Request.TLS set, so that the proxy tells
// the app X-Forwarded-Proto: https and marks the version cookie Secure.
// Upstream, to the app's instances, requests stay HTTP/1.1 keep-alive,
// but for an app whose instances speak h2c (a gRPC app: see package
// proxy), whose requests go over HTTP/2 both sides of cutover. gRPC
// clients can only come this way: the plain listener speaks HTTP/1.1.
//
// WebSockets work over both. Over HTTP/1.1 a client sends an upgrade
// and the proxy hijacks the connection. Over HTTP/2 the server announces
// SETTINGS_ENABLE_CONNECT_PROTOCOL, so Chrome and Firefox open a
// wss:// WebSocket as a stream of the HTTP/2 connection they already
// have, with the extended CONNECT method (RFC 8441); the proxy turns the
// stream into an HTTP/1.1 upgrade to the app (its own Sec-WebSocket-Key,
// the stream as the client's side of the splice: see package proxy,
// "Streams and websockets"), so the app sees the same handshake either
// way. Go 1.26's server offers RFC 8441 only when GODEBUG holds
// http2xconnect=1 as net/http initialises: package xconnect adds it
// before that, whatever started the process, and this package's init
// (which runs after net/http's) puts GODEBUG back as it was, so the
// app's instances, which inherit the daemon's environment, get the
// user's GODEBUG unchanged. GODEBUG=http2xconnect=0 in cutover's
// environment keeps RFC 8441 off: browsers then open their websockets
// over HTTP/1.1 connections of their own.
//
// # Speed
//
// HTTP/1.1 over TLS meets the front door's target: 0.88-0.94x nginx's
// requests per second on small keep-alive GETs, CPU 1.00-1.11x (two
// bench runs). Over HTTP/2 net/http's server missed it (0.60-0.71x, CPU
// 2.08-2.21x): answering by itself it cost 59 µs of CPU per request
// against 25 µs for package h1 on the same TLS connection — two TLS
// records and two writes per response, four goroutines, channel round
// trips per frame. Package h2, the default since, writes a small
// response in one record and one write with one goroutine per request,
// and costs about half as much (41 against 84 µs answering by itself,
// 78 against 122 proxying, on a shared machine); with the sockets below
// TLS read and written through rawio, one bench run gave HTTP/2 1.02x
// nginx's requests per second at 1.19x its CPU. docs/tls.md ("HTTP/2
// throughput: what costs what") has the figures and how they were taken
// (bench/proxyprof -tls-cert -http2-server, -static).
//
// # Shutdown
//
// Shutdown closes the listener, waits for the handshakes under way
// (bounded by HandshakeTimeout), then shuts the two servers down as the
// plain listener's: HTTP/1.1 connections close once idle, HTTP/2 ones
// are sent GOAWAY (either HTTP/2 server), their streams in flight finish, and the clients open
// their next connection elsewhere — to the next daemon, during an
// upgrade, which accepts on the same socket (see package keeper, which
// holds it as "tls").
//
// # Defaults
//
// TLS 1.2 at least; Go's cipher suites and their order (Go chooses the
// order itself since 1.17, preferring AES-GCM where the CPU has AES
// instructions and ChaCha20-Poly1305 elsewhere); session tickets on, so
// that a client coming back resumes its session without a full
// handshake; key exchange on X25519 (with the post-quantum hybrid Go
// adds to it) and P-256.
package tlsfront
