// Package h2 is the HTTP/2 server (RFC 9113) of cutover's TLS listener:
// it serves an http.Handler on connections whose TLS handshake chose
// "h2" by ALPN, handed over by package tlsfront through
// Server.ServeConn, as package h1 serves those that chose HTTP/1.1.
//
// It exists for the cost per request: net/http's HTTP/2 server spends
// 59 µs of CPU on a small keep-alive GET where h1 spends 25 µs on the same
// TLS connection (docs/tls.md, "HTTP/2 throughput: what costs what"),
// because it writes a response's HEADERS and DATA as two TLS records in
// two write calls, starts four goroutines per request and passes every
// frame between goroutines over channels. Here:
//
//   - The connection's goroutine reads the frames (Framer and HPACK
//     decoding from golang.org/x/net/http2, whose Server is not used) and
//     acts on them itself: SETTINGS, PING, WINDOW_UPDATE, RST_STREAM,
//     GOAWAY, the request bodies' DATA.
//   - A request's handler runs on one goroutine of its own, started when
//     its HEADERS arrive: the one goroutine per request, with no channel
//     between it and the connection. The handler writes its frames itself,
//     under the connection's write lock, into the connection's one
//     buffered writer, and flushes it. A handler that has returned (or
//     filled its 4 KiB body buffer, or flushed) with its body in the
//     buffer sends HEADERS and DATA (END_STREAM) in one TLS record and one
//     write. Control frames the reader writes (SETTINGS and PING acks,
//     WINDOW_UPDATE) are flushed when its read buffer runs empty, so a
//     burst of frames is answered in one write.
//   - HPACK encoding with golang.org/x/net/http2/hpack; the X-Request-Id
//     of a response, different every time, is encoded without indexing
//     rather than evicting a useful entry from the dynamic table.
//   - A request's Header map is built with the canonical names of the
//     common fields looked up, not allocated; its Context is a plain
//     cancel context (AfterFunc costs no goroutine).
//
// # Seams
//
// Server (server.go) holds the connections for Shutdown and Close and
// counts them. conn (conn.go) is one connection: its read loop, the
// connection-wide state under conn.mu (streams, flow-control windows, the
// peer's settings, GOAWAY), the write side under conn.wmu (Framer writes,
// the HPACK encoder, the buffered writer). conn.mu is never held while
// taking conn.wmu: a writer takes the window it needs under mu, releases
// it, then writes under wmu. stream
// (stream.go) is one request: its state, the request built from the
// HEADERS, its body (a buffer the read loop fills and the handler
// drains, refilling the client's windows as it reads). responseWriter
// (write.go) is the handler's http.ResponseWriter: headers, body
// buffering, flow-controlled DATA, trailers, Flush.
//
// # Protocol
//
// Settings sent: MAX_CONCURRENT_STREAMS (250), INITIAL_WINDOW_SIZE (1
// MiB per stream; the connection's window is raised to 1 MiB too, so a
// connection buffers at most 1 MiB of request bodies),
// MAX_HEADER_LIST_SIZE (Server.MaxHeaderBytes). Settings received are
// acknowledged and applied: a change of INITIAL_WINDOW_SIZE moves the
// send window of every open stream, HEADER_TABLE_SIZE bounds the
// encoder's table, MAX_FRAME_SIZE the frames written.
//
// Flow control both ways: no DATA is written beyond the peer's connection
// and stream windows (a handler's Write blocks until WINDOW_UPDATE opens
// them, or the stream or connection ends); DATA received beyond the
// windows the server gave is a FLOW_CONTROL_ERROR; the client's windows
// are refilled as the handler reads the body (WINDOW_UPDATE by half a
// window at a time); DATA nobody will read (the handler closed the body
// or returned, the stream was reset) counts as read at once.
//
// Requests are checked as RFC 9113 section 8 asks: pseudo-header fields
// (:method, :scheme, :path, or :authority only for CONNECT; :protocol
// only on a CONNECT with all three, and only with Server.ExtendedConnect
// — RFC 8441, WebSockets over a stream; no duplicates, none after a
// regular field), lowercase field
// names, no connection-specific field (Connection, Keep-Alive,
// Proxy-Connection, Transfer-Encoding, Upgrade, TE other than
// "trailers"), a Content-Length that matches the DATA received: any
// failure resets the stream with PROTOCOL_ERROR, as does an :authority
// that is not a valid host. A header list larger than MaxHeaderBytes is
// answered 431 without calling the handler (a single field larger than
// it is an HPACK COMPRESSION_ERROR of the whole connection, as with
// net/http: the decoder bounds its strings by it).
// Several Cookie fields are joined with "; " (section 8.2.3), as the
// HTTP/1.1 app behind the proxy expects one.
//
// Stream and connection errors are sent as RST_STREAM and GOAWAY; after a
// GOAWAY for an error the connection is read and discarded for up to a
// second before it closes, so the client reads the GOAWAY rather than a
// reset. A client's RST_STREAM cancels the request's context and makes
// the handler's writes fail.
//
// # Requests
//
// Request.Proto is "HTTP/2.0", Host comes from :authority (else the Host
// field), RemoteAddr and TLS are the connection's, RequestURI is :path.
// The Context is canceled when the stream ends: the handler returned, the
// client reset it or the connection closed. Request bodies are streamed
// to the handler as they arrive; with "Expect: 100-continue" a 100
// response is sent when the handler first reads.
//
// # Responses
//
// As package h1's: no Content-Type is guessed, a Date is added when the
// handler set none; a response whose handler returned before calling
// WriteHeader or writing 4 KiB gets a Content-Length (net/http's also
// after an explicit WriteHeader, as it encodes headers later; this
// difference and the Keep-Alive field dropped are the only ones
// TestSameResponseAsNetHTTP finds); a Content-Length set by the handler is
// enforced (more is http.ErrContentLength, less resets the stream with
// INTERNAL_ERROR so the client sees a body cut short). WriteHeader takes
// a copy of the header map; the headers are encoded when the first DATA
// goes out, at a Flush, or when the handler returns — so that a response
// with no body is one HEADERS frame ending the stream (a gRPC
// "trailers-only" answer). Trailers are declared with a Trailer
// header or set with http.TrailerPrefix, as with net/http. Flush
// (http.Flusher, http.ResponseController) sends what was written; 1xx
// headers are sent at once. http.ResponseController's SetReadDeadline
// and SetWriteDeadline bound a body read, and a write waiting for the
// client's window, of one stream (os.ErrDeadlineExceeded). A panic resets the stream (INTERNAL_ERROR),
// logged unless it is http.ErrAbortHandler.
//
// # Lifetime
//
// The client's preface and first SETTINGS must arrive within
// ReadHeaderTimeout. A connection with no stream open is closed after
// IdleTimeout, with a GOAWAY first; that also bounds a client that sends
// part of a header block and stalls. There is no write timeout: a client
// that stops reading holds its connection until it is closed (Close, or
// the client leaving), as on HTTP/1.1. Shutdown sends every connection GOAWAY naming the last
// stream it took: the streams in flight finish, later ones are refused
// (the client retries them on a new connection, as RFC 9113 lets it), and
// each connection closes once its streams are done; Shutdown returns when
// none is left or its context ends. Close closes every connection at
// once. A client's GOAWAY is honoured the same way. ServeConn returns
// once the connection is closed and its handlers have returned.
package h2
