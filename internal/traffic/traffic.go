// Package traffic is the vocabulary the proxy and the deploy engine share
// about a release's traffic: its counters and recent window (what a canary
// is judged by), what a hold and a drain did, and what is still in flight.
// It holds types (and the latency histogram's bucket layout) only, so that
// the engine and the canary judge can speak of traffic without importing
// the proxy.
package traffic

import (
	"crypto/rand"
	"time"
)

const (
	// PreviewHeader is the request header carrying the preview token,
	// for scripts and smoke tests.
	PreviewHeader = "X-Cutover-Preview"
	// PreviewCookie is the cookie carrying the preview token, which a
	// browser gets from a first request with PreviewParam.
	PreviewCookie = "cutover_preview"
	// PreviewParam is the query parameter carrying the preview token: a
	// link to click. The proxy answers it with PreviewCookie and removes
	// it from the request before the app sees it.
	PreviewParam = "cutover_preview"
)

// NewPreviewToken returns a new random preview token: 130 bits from
// crypto/rand, 26 characters of base32 (A–Z, 2–7), safe in a URL, a
// cookie and a header as is.
func NewPreviewToken() string {
	return rand.Text()
}

// WindowStats are a release's measurements over a recent window of time,
// for canary judgement.
type WindowStats struct {
	// Requests counts requests and websocket handshakes answered on behalf
	// of the release, by a backend or by a 502/504 of the proxy.
	Requests uint64
	// Errors counts those answered with a 5xx status: by a backend, or by
	// the proxy when the backend failed (502) or was too slow (504); and
	// responses the backend cut short in the middle of the body.
	Errors uint64
	// ConnErrors counts failed upstream attempts (refused, reset, timed
	// out), including those retried successfully on another backend, so
	// it can exceed the errors clients saw.
	ConnErrors uint64
	// ErrorRate is Errors / Requests, 0 without requests.
	ErrorRate float64
	// P50 and P99 are latency quantiles, from the request being sent to
	// the backend to its response headers (or the proxy's error), precise
	// to within a sixteenth of the value (half a histogram bucket). Both
	// are 0 without requests.
	P50, P99 time.Duration
	// Latency counts every request's latency (as P50 and P99 measure it)
	// in the window: the sample the canary judge's rank test compares.
	// It stays in the daemon (not in status JSON): 1.3 KiB per release.
	Latency Histogram `json:"-"`
	// LatencyBlocks splits Latency by time into consecutive blocks of
	// whole seconds, oldest first: one block per second for windows of up
	// to MaxBlocks seconds, longer blocks beyond. Requests of one second
	// share its noise (a burst of CPU load slows them together), so the
	// judge measures how much the blocks differ rather than treating every
	// request as independent. Empty blocks are kept, so two releases'
	// windows of the same length taken in the same second line up.
	LatencyBlocks []Histogram `json:"-"`
}

// MaxBlocks is the most blocks WindowStats.LatencyBlocks holds.
const MaxBlocks = 60

// ReleaseStats are a release's counters since the process started. A 503
// sent after holding belongs to no release and is not counted.
type ReleaseStats struct {
	// Requests counts requests and websockets answered on behalf of the
	// release, whether by a backend or by a 502/504 of the proxy.
	Requests uint64
	// Status5xx counts those answered with a 5xx status, from a backend or
	// from the proxy (502 on a failed backend, 504 on a slow one).
	Status5xx uint64
	// ConnErrors counts failed upstream attempts (refused, reset, timed
	// out), including those that were then retried on another backend.
	ConnErrors uint64
	// InFlight is the number of requests, streams and websockets of the
	// release's backends in progress now.
	InFlight int64
}

// HoldReport tells what a hold cost the clients.
type HoldReport struct {
	// Held counts the requests that waited during the hold (websocket
	// handshakes included).
	Held int
	// Longest is the longest wait among them; a request still waiting
	// when the hold ended counts until then.
	Longest time.Duration
	// TimedOut counts those that waited the proxy's hold timeout
	// (proxy.hold_timeout) and were answered 503.
	TimedOut int
	// Duration is how long the hold lasted.
	Duration time.Duration
}

// InFlight tells what a release had in flight when the proxy's wait for
// its requests (WaitRequests) returned.
type InFlight struct {
	// Finished counts the requests, streams and websockets that ended
	// during the wait.
	Finished int
	// Requests counts those still in flight but websockets: requests and
	// streams the wait's context ended before (0 when it did not).
	Requests int
	// Websockets counts the open websockets.
	Websockets int
}

// DrainResult reports how the proxy's drain of a release ended.
type DrainResult struct {
	// Finished counts the requests, streams and websockets of the release
	// that completed before ctx ended.
	Finished int
	// Cut counts those still in flight when ctx ended: the proxy closed
	// them, paced, but for those that ended on their own meanwhile.
	Cut int
}
