// Package proxy is cutover's version-aware HTTP reverse proxy: every
// request of the application goes through it, to the instances (backends)
// of the releases that serve, over HTTP/1.1 (or HTTP/2 cleartext to a
// gRPC app's instances).
//
// Proxy is an http.Handler for one app; Router (see Hosts) puts the
// proxies of several apps behind one listener. NewServer and
// NewPreviewServer (and Router.NewServer) serve them with
// package h1, cutover's own HTTP/1.1 server loop on net/http's request
// parser, which costs less per request than net/http's server (see the h1
// package documentation).
//
// # Hosts
//
// One listener can serve many apps: a Router sends each request to the
// Proxy of the app its host names, and every app keeps a Proxy of its
// own — its own table, releases, weights, version cookie, hold, drain,
// preview and stats — so a deploy of one app never touches another's
// traffic. The routes (Route: an app's host names, whether it is the
// default, its Proxy) are an immutable snapshot behind an atomic pointer,
// as the routing table is: a request loads it once, without a lock, and
// SetRoutes replaces it whole, so apps are added and removed while the
// others serve, without a failed request.
//
// The host is Request.Host: the Host header, or the host of a target in
// absolute form, which wins over it (RFC 9112 section 3.2.2; h1 and
// http.ReadRequest both fill Request.Host so). Its port is ignored, and
// an IPv6 literal's brackets; case and a trailing dot do not matter. An
// exact name is looked up first; then the wildcards, as nginx's
// server_name: "*.example.com" matches every name ending in
// ".example.com" at any depth ("a.example.com", "a.b.example.com"), not
// "example.com" itself, and of several wildcards that match the longest
// (most specific) wins, so "*.api.example.com" takes "v1.api.example.com"
// from "*.example.com". (Caddy's "*.example.com" takes one label only;
// nginx's form lets one wildcard serve every depth of an app's names.)
// Then the default route (Route.Default) takes the host; without one the
// client gets 404 with a short body that names no app, release or
// address. An HTTP/1.0 request without a Host carries the address the
// client reached (h1 gives it), so it goes by that address: to the route
// naming it (an IPv4 address may be a host name of a route) or to the
// default. A route list with a single route that is the default, the
// single-app form, skips the lookup: every request goes to its Proxy,
// whatever its host. The lookup allocates nothing and costs well under a
// microsecond with 50 apps (BenchmarkRouterLookup).
//
// When SetRoutes drops an app, its requests under way finish on its
// Proxy, which they already hold, and its websockets stay open; a request
// it holds (no healthy backend) waits there as before, up to HoldTimeout.
// Requests that come after go to the default app, or get 404. A Proxy
// left out of the routes is then the caller's to wind down: Drain its
// releases, FailHold to answer what it still holds, RemoveBackend.
//
// What could collide between apps on one listener: each app's version
// cookie must have its own name (Options.Cookie; SetRoutes refuses two
// routes whose proxies share one), so that a pin of one app is never
// read by another even where a browser sends both (same host name, other
// port). The preview cookie and parameter keep one name: a token is
// compared with its own app's only, so another app's is no token at all;
// but two apps' preview listeners on one host name (other ports) share
// the browser's preview cookie, so a browser that opened the second
// app's preview link needs the first one's link again.
// Request IDs are made per Proxy with a random prefix of their own, and
// the X-Forwarded-* fields come from the request, not from the app.
//
// The router is also the front door of the plain listener when a TLS
// listener serves beside it: a route with RedirectHTTPS answers a plain
// request for a host with a certificate (RouterOptions.Certs) with 308 to
// https, but ACME's HTTP-01 path (ACMEChallengePath), which is offered
// to RouterOptions.Challenge when set and else routed as any request; a
// route with HSTS gets its
// Strict-Transport-Security on answers over TLS. Without any of these the
// snapshot has no front door and a request pays one nil check for it.
//
// # Routing table
//
// Backends are added per release (AddBackend) and enter rotation once
// marked healthy (SetHealthy). SetWeights gives each release its share of
// new requests (SetActive(r) is SetWeights({r: 100})); SetPreview puts a
// release in preview. The routing table is an immutable snapshot — one
// pool of healthy backends per release, the weights, the preview — replaced
// through an atomic pointer on every change, so a change of weights is one
// atomic step and the request path takes no lock: it loads the snapshot,
// chooses a release, then a healthy backend of it round-robin with the
// release's atomic counter. Each backend has its own pool of upstream
// connections, so retiring a backend closes exactly its connections.
//
// # Upstream connections
//
// A request is sent to its backend from the handler's own goroutine, on an
// idle HTTP/1.1 keep-alive connection of the backend's pool (the most
// recently used one: a stack under a mutex) or on a new one (DialTimeout).
// A request with a body, or with a target other than a path (absolute
// form, "*"), is written with net/http's request writer; a bodiless one
// with a path target — nearly every request — is written by
// writeBodiless, which sends what that writer would (request line with
// the client's own target, Host, the header fields with line breaks made
// spaces, no framing but "Content-Length: 0" where net/http sends it)
// without its allocations. The answer is read with http.ReadResponse, so
// response framing and parsing, and their checks against request
// smuggling, are net/http's; but a simple answer (HTTP/1.1, a status of
// 200-599 with a body, exactly one Content-Length, no Transfer-Encoding,
// the whole head in the read buffer and in the strict form of
// h1.ParseFieldsInto) is read by readSimpleResponse, into the request's
// pooled outbound, which fills the response exactly as http.ReadResponse
// would: two allocations instead of ten. A differential test and a fuzz
// test check it against http.ReadResponse. The proxy adds no User-Agent. The socket is
// read and written through package rawio, as the client's. Unlike
// http.Transport, which runs a reading and a writing goroutine per
// connection, a GET costs no extra goroutine and no switch
// between goroutines; only a request with a body gets one, which streams
// the body while the response is read. Informational responses (100
// Continue, 103) are skipped. The connection returns to the pool when its
// response body was read to the end and neither side asked to close it;
// otherwise (the client left mid-download, a body cut short, Connection:
// close, a timeout) it is closed. The pool keeps at most
// MaxIdleConnsPerBackend connections, and one idle for IdleConnTimeout is
// closed when the pool next looks at it. Idle connections hold no
// buffers. Without a read-ahead, a connection the backend closed while
// idle is noticed when it is used: a request without a body that meets
// such a connection before any byte of a response is sent again on a new
// connection to the same backend (as net/http does), before the retry
// below is considered. Backend.Warm opens idle connections ahead of
// traffic; deploy calls it once a new backend answers its first health
// check, before it is healthy.
//
// # HTTP/2 cleartext upstreams (gRPC)
//
// A backend added with BackendSpec.Protocol H2C (an app with
// upstream_protocol = "h2c": a gRPC server, which speaks HTTP/2 only) is
// sent its requests over HTTP/2 without TLS, with prior knowledge (RFC
// 9113 section 3.3), by a net/http Transport of its own whose Protocols
// hold UnencryptedHTTP2 alone. net/http's, rather than
// golang.org/x/net/http2.Transport with AllowHTTP: it is the HTTP/2 client
// the Go project maintains (x/net's now wraps it), it needs no fake TLS
// dial, and CloseIdleConnections ends exactly this backend's idle
// connections. Its dial is the backend's own (dialContext), so every
// connection is tracked under the release as an HTTP/1.1 one is: Drain
// cuts it, RemoveBackend and Drain close it once idle, and a refused
// connect is the same *dialError, so the Retry rules below hold unchanged
// (a refused request goes elsewhere, the backend leaves rotation). The
// request path is the same serve as HTTP/1.1's up to the exchange; only
// Backend.roundTrip branches, on a field an HTTP/1.1 backend leaves nil.
// What differs:
//
//   - Many requests share one connection, as streams. A stream counts in
//     flight as a request does, so a drain waits for a release's open
//     gRPC streams up to its deadline; the cut then closes the connection,
//     which ends every stream still on it. A gRPC stream over HTTP/2 so
//     ended (or by the instance dying) ends with grpc-status 14
//     UNAVAILABLE in its trailers, the status gRPC clients retry and
//     reconnect on, and which grpc-go reports itself for a lost
//     connection; any other answer is reset, as an HTTP/1.1 client's
//     connection is aborted. drain_pace spreads the cuts by connection,
//     so the streams that share one end together.
//   - The request body streams (gRPC bodies have no Content-Length) and
//     the response is relayed while it still comes, flushed after every
//     read, headers flushed at once: a bidirectional stream works both
//     ways. The body of a request that came over HTTP/2 has no
//     ClientBodyTimeout: a gRPC stream may stay quiet as long as it likes.
//     A stalled HTTP/2 stream holds no connection of its own, on either
//     side.
//   - A backend's answer whose length it announced reaches an HTTP/1.1
//     client with that Content-Length, so trailers the backend sends after
//     such a body are lost to that client (never so for gRPC, whose
//     answers have no length, nor for HTTP/2 clients).
//   - Trailers (grpc-status, grpc-message) reach the client as trailers;
//     a "trailers-only" answer (a HEADERS frame that ends the stream)
//     reaches it as one, since the proxy then writes headers and no body.
//     "TE: trailers" is passed on, as gRPC requires.
//   - The client cancelling its stream (RST_STREAM) cancels the request's
//     context, and the transport resets the upstream stream: the app's
//     handler sees its context cancelled.
//   - Backend.Warm does nothing: the first request opens the one
//     connection that carries them all.
//
// gRPC needs HTTP/2 from the client too, and only the TLS listener speaks
// it (ALPN h2); the plain listener speaks HTTP/1.1 only. A gRPC request
// (Content-Type application/grpc, or application/grpc+...) that reaches
// an h2c backend's release over HTTP/1.1 is answered 505 HTTP Version Not
// Supported, saying to use the TLS listener, and counts against no
// release. Websocket upgrades to an h2c backend are not supported: they
// are HTTP/1.1.
//
// # Weights
//
// Requests without a pin are numbered with an atomic counter; request n
// goes to slot n·s mod T of a cycle of T slots, T being the sum of the
// weights divided by their greatest common divisor and s a number coprime
// with T near 0.618·T. Each release owns as many slots as its reduced
// weight, so every T consecutive requests hold exactly its share, spread
// over the cycle (25/75 sends every fourth request to the first release).
// No randomness, no lock. A weighted release without a healthy backend is
// left out of the cycle, its share going to the others; when none has a
// healthy backend, requests are held.
//
// # Version pins
//
// With Options.Sticky, while more than one release has weight (a rolling
// or canary deploy), the proxy pins each client to the release that served
// it: a response from release X carries
//
//	Set-Cookie: cutover_release=X; Path=/; HttpOnly; SameSite=Lax
//
// (cookie name in Options.Cookie), with "; Secure" added when the request
// came over TLS (Request.TLS set), unless the request already carried that
// exact value. A request whose version header (Options.VersionHeader, for
// non-browser clients; it wins over the cookie) or cookie names a release
// that has a healthy backend goes to it, whatever its weight; otherwise it
// goes by weight and the cookie is rewritten to the release that answered.
// So a client served once by the new release of a rolling deploy is never
// sent back to the old one while the new one has a healthy backend (short
// of an abort giving all the weight back to the old one), and a client on
// the old one stays there while it has a healthy backend and the deploy
// is under way.
// When a single release has weight nothing is pinned, stale cookies are
// ignored and no cookie is set, so the steady state costs nothing: the
// request's headers are not even looked at. Release names that cannot be
// cookie values are never set as pins (the header still selects them).
//
// Every response answered on behalf of a release, proxy errors included,
// carries the version header naming it, unless Options.HideVersion.
//
// # Preview
//
// A release in preview (SetPreview) gets no weighted traffic, whatever its
// weight; only a request carrying its preview token (a secret made per
// preview: NewPreviewToken) goes to it, pinning or not — by PreviewHeader,
// PreviewParam (answered with PreviewCookie, and removed from the target
// sent upstream) or PreviewCookie, compared in constant time. Its name in
// the version header or cookie does not: every response shows release
// names, and release ids (a UTC second and a source name) are easy to
// guess. PreviewHandler serves only the release in preview, for a separate
// preview address, to requests with the token (others get 403), and
// answers 503 when there is none.
//
// # Hold
//
// When no release the request may go to has a healthy backend, or no
// release has weight, a request waits for the table to change (each snapshot carries a channel
// closed when it is replaced) for up to Options.HoldTimeout. A client that
// goes away while held is released at once. Deploys therefore never show an
// error page in the instant between two versions. A request whose backend
// refused it, when no other backend is left, is held the same way (see
// Retry): kill -9 of every instance of the release at once costs the
// clients a delay, not an error.
//
// Hold holds requests on demand, for a held switch: a change that cannot
// run beside the live release (an app that cannot run two copies at once,
// a breaking migration). The held snapshot routes nothing — no weight, no
// pin, no preview — so requests wait exactly as above, and the request
// path reads nothing more than before. WaitRequests waits, without
// cutting, for a release's requests in flight (not its websockets, which
// a switch does not end); Unhold(r) ends the hold and makes r
// active in one snapshot, so no held request goes to the old release in
// between, and reports how many requests were held and the longest wait.
// A request held past HoldTimeout during a held switch gets 503 saying the
// app is switching releases, and the hold logs one line with their number
// when it ends, not one per request. FailHold answers the held requests,
// and new ones until the next Unhold, Hold or SetWeights, 503 at once with
// the reason: for a switch that failed after the database changed, when
// neither release can serve.
//
// # Retry
//
// A connection a backend refuses (or that cannot be opened within
// DialTimeout) carried nothing, so the request is always safe to send
// elsewhere, whatever its method and body: it goes to another healthy
// backend of the release it goes to, or waits for one, up to HoldTimeout
// from its first failure, as a held request does. A backend that refused
// the connection (ECONNREFUSED: nothing listens) leaves rotation at once
// (Backend.Down), before its health checker or the supervisor notices; a
// connect that timed out or failed on the proxy's side (EMFILE) does not
// take it out, since a busy backend would otherwise empty the pool, and its idle connections are closed; the proxy dials
// it again, from every 25ms to every second, and puts it back as soon as
// it accepts (a passing health check, SetHealthy(true), also does). A
// crashed instance is kept out meanwhile by deploy, which marks it
// unhealthy until its new process passes its checks.
//
// An attempt that fails after the request may have reached the app
// (reset or closed before any response byte) is sent again only for an
// idempotent request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) without a
// body, at most twice (two instances killed one after the other while
// the request was on each; a request that crashes every instance it
// reaches takes down at most three), on another backend (the same one
// only if it is alone), held if there is none. Any other request gets
// 502: sending it again could run it twice. That includes one written on
// a kept-alive connection its backend had closed by dying, which cannot be
// told apart from one the app received. Nothing is retried once the client
// has received anything, nor after a response header timeout. A reused
// connection found closed is not counted as a failed attempt (see
// Upstream connections).
//
// # Drain
//
// Every request, stream and websocket counts as in flight on its backend
// and release until it ends. Drain waits until the release has nothing in
// flight, or until its context ends; then it closes what the release still
// has open one after the other, spread evenly over the pace it is given
// (drain_pace), so that the clients of many websockets or event streams do
// not all reconnect in the same instant (the thundering herd of
// flynn/flynn#3513 and argoproj/argo-rollouts#3761), and reports how many
// finished and how many were cut. A websocket is ended with a close frame,
// status 1001 "going away", written by the goroutine relaying the
// backend's frames once it has forwarded a whole frame (it follows the
// frame headers for that); if the backend was in the middle of a frame,
// the connection is just closed. A client that stopped reading, on which
// that relay is blocked writing, is given a second to take the write,
// then its connection (or HTTP/2 stream) is closed all the same. A stream or long poll is ended by closing
// its upstream connection. Stats gives each release's counters since the process
// started (requests, 5xx, connection errors, in flight). A release with no
// backend, no weight and nothing measured for WindowSpan — one a deploy
// retired five minutes ago — is forgotten with its counters and window,
// so that months of deploys leave no trace in memory; one that comes back
// (a rollback) starts afresh.
//
// # Measurements
//
// For canary judgement, every release keeps its last WindowSpan (5
// minutes) of traffic in a ring of one-second buckets: requests, errors
// (5xx from a backend, 502/504 from the proxy on its behalf, bodies cut
// short), failed upstream attempts, and a log-linear latency histogram
// (traffic.Histogram: under 100µs, then eight buckets per doubling up to
// about 105s, and over). Latency runs from sending the request upstream to its response
// headers, so holds and long streams do not count. A request adds to its
// second's bucket with atomic operations; only the first request of a new
// second takes that bucket's lock, to reset it. Window sums the last d,
// hands out the summed histogram (the canary judge's rank test compares
// the two releases' histograms), and computes p50 and p99 to within a
// sixteenth of their value. The clock is Options.Now, so tests are exact.
//
// # Streams and websockets
//
// Response bodies without a length, and server-sent events, are flushed to
// the client after every read from the backend. Between two reads of a
// request body the client may take at most ClientBodyTimeout.
//
// A websocket reaches the app as an HTTP/1.1 upgrade (RFC 6455) on an
// upstream connection of its own, whichever way the client opened it:
//
//   - over HTTP/1.1, a GET with Upgrade: websocket: the handshake goes to
//     the backend as the client sent it (its Sec-WebSocket-Key, which the
//     client checks against the answer itself); after the backend's 101 the
//     client connection is hijacked and the two connections are spliced.
//   - over HTTP/2, an extended CONNECT with :protocol websocket (RFC 8441;
//     what browsers send on an HTTP/2 connection whose server announced
//     SETTINGS_ENABLE_CONNECT_PROTOCOL, which the TLS listener does, see
//     package tlsfront). net/http's server hands it over as Method
//     CONNECT, ProtoMajor 2 and the header ":protocol". The backend gets a
//     GET with Upgrade: websocket, Connection: Upgrade and a fresh
//     Sec-WebSocket-Key of the proxy's own; the client's
//     Sec-WebSocket-Version, -Protocol and -Extensions, and every other
//     end-to-end field, pass as for any request. The backend's 101 is
//     checked (Upgrade: websocket, the Sec-WebSocket-Accept of the key sent:
//     else 502) and becomes the client's 200, with the backend's end-to-end
//     fields (the subprotocol and extensions it chose) but its
//     Sec-WebSocket-Accept. Then the stream — its request body from the
//     client, its response body to it, flushed after every write — is
//     spliced with the upstream connection as a hijacked connection is.
//     A refusal (a 4xx or 5xx) reaches the client as it came; a 2xx other
//     than 101 gets 502, since a 2xx to a CONNECT tells the client the
//     websocket is open. Every other CONNECT gets 405.
//
// Either way the websocket is the same to the rest of the proxy: routed
// like any request (pins, the version cookie on the handshake's answer,
// preview, hold), in flight on its backend until it ends, ended by Drain
// with a close frame (see Drain; over HTTP/2 the frame is the stream's
// last DATA, then the stream ends), one access log entry when it ends
// (status 101 over HTTP/1.1, 200 over HTTP/2, with the bytes sent to the
// client over HTTP/2), and one answer counted for its release, with the
// backend's status (101). CloseWebsockets ends every websocket of the
// proxy at once, with a close frame 1001 "server going away": a stopping
// daemon calls it once the next one serves. From then on the proxy opens
// no websocket: a handshake on a connection still open gets 503 (the
// HTTP/1.1 connection closed), so that the client's next attempt reaches
// the next daemon. When the client ends its side (closes the
// connection, ends or resets the stream) the upstream connection is
// closed; when the backend does, the client's side is closed, the stream
// ending cleanly (reset only when a write to a client that stopped
// reading is in the way).
//
// # Request bodies
//
// A request body with a Content-Length of at most MaxBufferedBody (10 MiB)
// is read whole from the client before a backend is chosen, as nginx does
// (buffer.go): a slow client then holds no backend connection, and no
// worker of a Unicorn, gunicorn or PHP-FPM pool. Its first
// RequestBufferMemory bytes (64 KiB) stay in memory, the rest goes to a
// temporary file in BodyTempDir, unlinked as soon as it is created so
// that nothing is left behind, even by a crash; a file that cannot be
// made or written lets the rest of the body stream. The buffered body is
// sent with its Content-Length and without Expect: 100-continue (the
// server answered it when the body was first read). A chunked body, a
// larger one, and every body with StreamRequestBodies, stream to the
// backend as they arrive: a chunked body is how a client streams, and a
// backend may answer while it goes on. MaxRequestBody (no limit by
// default) refuses larger bodies with 413: at once when announced, or
// once a streamed one passes it. Hop-by-hop headers are removed both ways,
// trailers are passed. Websockets are spliced (see Streams and
// websockets).
//
// # Headers
//
// The Host header passes unchanged; an HTTP/1.0 request without one gets
// the proxy's own address as the client reached it (h1 sets it), never a
// backend's. A target in absolute form reaches the backend in origin form
// with the target's host as Host (RFC 9112 section 3.2.2).
//
// From a client, the backend receives X-Forwarded-For and X-Real-IP (the
// client's address), X-Forwarded-Proto and X-Forwarded-Host set by the
// proxy: the Forwarded, X-Real-IP and X-Forwarded-* fields the client
// sent are dropped, so that it cannot pose as another address or as
// HTTPS. From a peer in Options.TrustedProxies (a load balancer in front)
// they are kept and its address is appended to X-Forwarded-For. Either way
// the backend gets an X-Request-ID (the client's when sane, else a new
// one); the response carries the same X-Request-ID.
//
// # Metrics and the access log
//
// Besides the counters a deploy reads (Stats, Window), every release
// counts for Prometheus (Metrics, read by package metrics at scrape
// time): answers by status class, a histogram of durations over
// DurationBounds (the window's latency, from sending the request to its
// response headers, retries included, plus the wait for a backend before
// it: the time to read a buffered body from the client is not), held
// requests and their waits, retries and connect errors; the proxy counts
// the requests it answered without a release (503 after holding). All
// are atomic counters of the release the request already holds
// (metrics.go): no lock, no allocation, no map lookup and no clock read
// per request beyond the window's (BenchmarkCount: about 20 ns).
//
// With Options.AccessLog, each request is served through serveLogged,
// which wraps the ResponseWriter to note the status and count the body
// bytes, and gathers the release, instance, upstream time, wait and
// retries; the entry goes to the logger once the exchange is over, even
// when it ends by aborting the connection. A client gone before any
// answer is logged 499. Without it, serve gets a nil exchange: the path
// pays nil checks (accesslog.go).
//
// # Error statuses
//
// The proxy answers by itself, with a short text body, only in these cases:
//
//   - 503 Service Unavailable: no healthy instance the request may go to
//     appeared (or accepted its connection) within HoldTimeout, or a held
//     switch lasted longer than that; a held switch failed (FailHold);
//     or, from PreviewHandler, no release is in preview.
//   - 403 Forbidden: from PreviewHandler, a request without the preview
//     token.
//   - 502 Bad Gateway: the backend reset or closed the connection before
//     its response headers (after the retries, when allowed), sent a
//     malformed response, or switched to another protocol than websocket;
//     to a websocket over HTTP/2, it answered with another 2xx than 101 or
//     a wrong Sec-WebSocket-Accept.
//   - 504 Gateway Timeout: the backend did not start answering within
//     ResponseHeaderTimeout.
//   - 413 Content Too Large: the request body is over MaxRequestBody.
//   - 400 Bad Request, 408 Request Timeout: the client's request body was
//     malformed (a bad chunk size, a chunk without its CRLF) or cut short,
//     or nothing of it came for ClientBodyTimeout. It is answered as soon
//     as the bad bytes (or the timeout) come, with Connection: close; an
//     upstream request already under way is aborted by closing its
//     connection, so the app sees its body fail rather than wait for the
//     rest or take a truncated body for a complete one. These and 413 are
//     the client's errors: no release counts them.
//   - 505 HTTP Version Not Supported: a gRPC request over HTTP/1.1 to an
//     app whose backends speak h2c (see HTTP/2 cleartext upstreams).
//   - 404 Not Found: from a Router, a host no route names when there is
//     no default route (router.go).
//   - 405 Method Not Allowed: CONNECT (but a websocket's over HTTP/2) or
//     TRACE (admit.go).
//   - 400 Bad Request: a path that climbs above the root after dot-segment
//     removal ("/../x", "/%2e%2e/x"), "*" with a method other than
//     OPTIONS, or a target in absolute form that is not http(s) with a
//     host and no user info (admit.go). A path that stays inside the root
//     reaches the app byte for byte: the proxy normalises nothing.
//   - 414 URI Too Long and 431 Request Header Fields Too Large: the
//     request's line or head is over Options.MaxRequestLineBytes or
//     MaxHeaderBytes (answered by the h1 server, which then closes the
//     connection; the request never reaches a backend).
//
// A gRPC call over HTTP/2 (Content-Type application/grpc...) gets the
// 502, 503 and 504 above, and 403, as gRPC says errors are sent, since a
// gRPC client reads nothing else: HTTP status 200 with no body,
// grpc-status UNAVAILABLE (PERMISSION_DENIED for 403, after gRPC's own
// table) and the same message in grpc-message (writeErrorTo). The access
// log records the HTTP status meant.
//
// A backend that fails in the middle of a body cannot be reported with a
// status any more; the client connection is aborted so the client does not
// take the truncated body for a complete one. A client that disconnects is
// not counted as a backend error. Nothing is logged per request unless
// Options.AccessLog is set; upstream errors are logged at debug level.
package proxy
