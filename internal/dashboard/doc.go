// Package dashboard serves the live dashboard of a daemon: one page that
// shows every app's live release, releases in flight, weights, instances,
// req/s, error rate and p50/p99 per release, the running deploy's steps
// as they happen and the history of deploys, with buttons to pause,
// resume, promote, abort and roll back.
//
// It serves on [dashboard] listen, or on an ephemeral loopback port that
// the first `cutover dashboard` opens. Nothing about the apps is served before a
// login: GET /?token=T with the configured token, or with a one-time
// token minted by Mint (valid once, for OneTimeTTL), sets an HttpOnly,
// SameSite=Strict session cookie and redirects to /. Tokens are compared
// in constant time.
//
// Endpoints, all behind the session cookie but the page's static assets:
//
//	GET  /               the page (or a 401 page saying how to log in)
//	GET  /api/snapshot   JSON: per app, api's status, releases and deploys
//	                     plus the last WindowSecs of traffic per release
//	GET  /events         Server-Sent Events: "snapshot" every second and
//	                     "deploy" for each event of a deploy in flight, the
//	                     same events `cutover deploy` streams but for
//	                     lines ("output", "log"); the stream ends when
//	                     the session expires, or when a write has waited
//	                     StreamWriteTimeout for a page that reads nothing
//	POST /api/control    {"app","action"}: pause, resume, promote, abort
//	                     (deploy.Engine.Control) or rollback (Engine.Start)
//
// A control needs, besides the cookie, the session's CSRF token in the
// X-Cutover-CSRF header (the page carries it; a cross-site form cannot
// set a header) and, when the browser sends one, an Origin equal to the
// request's host.
//
// Every open page and GET /api/snapshot share one snapshot, taken at most
// about once a second: its reads go to the app's state database, whose
// one connection deploys write through, so a hundred open pages cost a
// deploy no more than one.
package dashboard
