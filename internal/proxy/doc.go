// Package proxy is cutover's version-aware HTTP/1.1 reverse proxy: every
// request of the application goes through it, to the instances (backends)
// of the release that is active.
//
// # Routing table
//
// Backends are added per release (AddBackend) and enter rotation once
// marked healthy (SetHealthy). SetActive switches new requests, in one
// atomic step, to the healthy backends of another release. The routing
// table is an immutable snapshot replaced through an atomic pointer on every
// change, so the request path takes no lock: it loads the snapshot and picks
// a backend round-robin with an atomic counter. Each backend has its own
// http.Transport (keep-alive pool, HTTP/1.1 only, no environment proxy, no
// compression), so retiring a backend closes exactly its connections.
//
// # Hold
//
// When the active release has no healthy backend, or no release is active,
// a request waits for the table to change (each snapshot carries a channel
// closed when it is replaced) for up to Options.HoldTimeout. A client that
// goes away while held is released at once. Deploys therefore never show an
// error page in the instant between two versions.
//
// # Retry
//
// An idempotent request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) without a
// body whose upstream attempt fails before any response byte — connection
// refused, or reset on a reused keep-alive connection — is retried once, on
// another healthy backend (on the same one only if it is the only one).
// Nothing is retried once the client has received anything, nor after a
// response header timeout, nor a request with a body.
//
// # Drain
//
// Every request, stream and websocket counts as in flight on its backend
// and release until it ends. Drain waits until the release has nothing in
// flight, or until its context ends; then it closes the release's remaining
// websocket and upstream connections and reports how many finished and how
// many were cut. Stats gives each release's counters (requests, 5xx,
// connection errors, in flight) for canary judgement.
//
// # Streams and websockets
//
// Response bodies without a length, and server-sent events, are flushed to
// the client after every read from the backend; request bodies stream to
// the backend as they arrive. Hop-by-hop headers are removed both ways,
// trailers are passed. A websocket handshake is sent to the backend on a
// connection of its own; after its 101 answer the client connection is
// hijacked and both are spliced together.
//
// # Headers
//
// The Host header passes unchanged. The backend receives X-Forwarded-For
// (the client address appended), X-Forwarded-Proto, X-Forwarded-Host and
// X-Request-ID (the client's when sane, else a new one); the response
// carries the same X-Request-ID.
//
// # Error statuses
//
// The proxy answers by itself, with a short text body, only in these cases:
//
//   - 503 Service Unavailable: no healthy instance of the active release
//     appeared within HoldTimeout.
//   - 502 Bad Gateway: the backend could not be reached (after the retry,
//     when allowed), reset the connection before its response headers, sent
//     a malformed response, or switched to another protocol than websocket.
//   - 504 Gateway Timeout: the backend did not start answering within
//     ResponseHeaderTimeout.
//
// A backend that fails in the middle of a body cannot be reported with a
// status any more; the client connection is aborted so the client does not
// take the truncated body for a complete one. A client that disconnects is
// not counted as a backend error. Nothing is logged per request; upstream
// errors are logged at debug level.
package proxy
