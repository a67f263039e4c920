// Package h1 is the HTTP/1.1 server of cutover's proxy listeners.
//
// Every request of the app passes through it, so it is built for the cost
// per request, on top of net/http's own parser: http.ReadRequest reads
// every request that has a body or a framing header and frames its body
// (Content-Length, chunked, the Transfer-Encoding / Content-Length
// conflicts and header validation that defend against request smuggling),
// so that no framing is written here. What the package adds is the
// connection loop and a small http.ResponseWriter, which differ from
// net/http's server where it costs:
//
//   - A bodiless request in origin form whose head is all in the read
//     buffer, with one valid Host, no Content-Length or Transfer-Encoding
//     and every line in the strict form clients send (ParseFieldsInto), is read
//     without http.ReadRequest (simple.go): reading a GET costs 2
//     allocations instead of 10, and the whole request, answer included,
//     4 (TestServeAllocs). Any other request, and any byte outside that form, goes
//     to http.ReadRequest, which decides. The differential tests and a fuzz
//     test check that whatever this path accepts, http.ReadRequest and the
//     server's checks read the same request from the same bytes. The
//     Header map of a request read this way is the connection's, cleared
//     for its next request: a handler may keep the values, not the map.
//   - The handler runs on the connection's goroutine and nothing else reads
//     the connection while it runs. net/http starts a goroutine per request
//     that reads ahead to learn when the client leaves, which costs a
//     goroutine, a read that finds nothing and an interrupted deadline per
//     request. Here a request whose body has been read is watched that way
//     only once it has run for 20 to 40 ms (clientGoneDelay): a fast answer
//     never pays for it, a long poll or a held request still has its context
//     canceled when the client leaves. The timer that decides it ticks per
//     connection while requests follow each other, rather than being reset
//     for each.
//   - The status line and headers are written into the connection's buffer
//     directly, without the copy of the header map net/http makes; the
//     write buffer comes from a pool per response and the response writer
//     and its header map are reused from one request of a connection to
//     the next.
//   - A handler may read the request body while it writes the response
//     (full duplex) always.
//   - The socket is read and written with package rawio: system calls the
//     Go scheduler does not hand the thread off for (see there).
//
// The server checks what net/http's server adds to http.ReadRequest:
// HTTP/1.x only (505), valid header names (400: textproto lets "Name :"
// through), a Host for HTTP/1.1 and a valid one, also when the request
// target carries the authority (400), known transfer codings (501),
// Expect (417 for anything but 100-continue, which is answered when the
// handler first reads the body, and ignored from HTTP/1.0 clients). The
// raw header block is scanned for what http.ReadRequest drops (the Host
// header, a Content-Length beside Transfer-Encoding) when it is all in the
// 4 KiB read buffer, as nearly always; a request whose target is not a
// path with a larger block is refused (400).
//
// A request's head is bounded, exactly, as nginx bounds it rather than as
// net/http does (1 MiB, plus 4 KiB of slack): its line by
// MaxRequestLineBytes (8 KiB; 414 URI Too Long) and the whole head by
// MaxHeaderBytes (64 KiB; 431 Request Header Fields Too Large). A head in
// the read buffer is checked at once; one that goes on past it is bounded
// as it is read (limitReader), so the refusal comes as soon as the bytes
// pass the bound, a connection never holds more than the bound of head
// (600 clients sending heads of a megabyte had taken a daemon from 56 to
// 750 MB), and the connection is closed after the refusal.
//
// Stricter than net/http: a request with both Transfer-Encoding: chunked
// and Content-Length is framed by the former and the connection is closed
// after its answer (RFC 9112 section 6.1), so that bytes hidden in the
// Content-Length reading of its body are never served as a request; a
// chunked request whose block was too large to scan is treated the same.
// An empty Host header is refused like a missing one. An HTTP/1.0 request
// without one (or with an empty one), which RFC 9112 allows, gets the
// address the client connected to as Request.Host, as nginx gives $host
// its server name, where net/http leaves it empty: a handler always sees a
// Host, and a proxy never fills in its backend's address instead.
//
// Connections accepted elsewhere are served with ServeConn: the TLS
// listener (package tlsfront) does the handshake and hands over those that
// chose HTTP/1.1; their requests carry the handshake's state as
// Request.TLS, as with net/http.
//
// Request.Context is canceled when the handler returns or the client
// leaves; it carries no values (no http.ServerContextKey) and implements
// AfterFunc, so context.AfterFunc and derived contexts need no goroutine.
// OPTIONS * reaches the handler (net/http answers it itself).
//
// Responses: a Content-Length set by the handler is used and enforced; a
// body without one is chunked (HTTP/1.1) or delimited by closing the
// connection (HTTP/1.0); no Content-Type is guessed from the body; a Date
// header is added when the handler set none. Trailers are declared with a
// Trailer header or set with http.TrailerPrefix, as with net/http.
// Flush, Hijack and http.ResponseController (flush, deadlines, full
// duplex) work as with net/http; a panic with http.ErrAbortHandler closes
// the connection after what was written, so a client sees a body cut short
// as such.
package h1
