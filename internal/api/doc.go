// Package api is the daemon's admin interface: JSON over HTTP on a unix
// socket (<data_dir>/cutover.sock, mode 0600), and the Go client the CLI
// uses. A deploy answers with a stream of newline-delimited JSON events
// (deploy.Event), the last of which has type "result".
//
// Routes:
//
//	GET  /v1/status              deploy.Status
//	GET  /v1/releases            []Release
//	GET  /v1/deploys?limit=N     []state.Deploy, newest first
//	POST /v1/deploys             deploy.Request → NDJSON stream of deploy.Event
//	                             (a preview deploy's stream ends at its preview event)
//	GET  /v1/logs?release=&instance=&lines=N&follow=1   text
//	POST /v1/control             {"action": "promote"|"abort"|"pause"|"resume"} for the
//	                             deploy in flight: refused (412, kind "refused") with
//	                             why where the step cannot honour it; else promote/abort
//	                             stream its events, the acknowledgement first, and
//	                             pause/resume answer {"action", "message"}
//	POST /v1/releases/prune      apply release retention now
//	POST /v1/stop                stop the app's instances, then the daemon
//
// Errors are JSON {"error": "...", "kind": "..."} with the HTTP status
// chosen in one place, errkind's table (statusOf looks it up); the client
// turns them back into typed errors so the CLI can pick its exit code from
// the same table.
package api
