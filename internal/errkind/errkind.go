// Package errkind names the kinds of error cutover reports — in the admin
// API's error bodies and deploy result events, and through the CLI's exit
// status — and maps each, in one table, to the HTTP status the API answers
// with and the exit code the CLI ends with. The deploy engine classifies
// its errors into these kinds (deploy.KindOf); the API and the CLI only
// look them up here.
package errkind

import "net/http"

// Kind is a kind of error, as carried in the API's JSON.
type Kind string

// The kinds.
const (
	Busy     Kind = "busy"     // another deploy runs
	Config   Kind = "config"   // the config file is broken
	Usage    Kind = "usage"    // the request is malformed or names nothing
	Refused  Kind = "refused"  // refused to protect the app
	Failed   Kind = "failed"   // the operation ran and failed
	NotFound Kind = "notfound" // no such release/instance, no deploy in flight
	Aborted  Kind = "aborted"  // aborted by the operator or by its own judgement; the old release serves
)

// Exit codes of the cutover binary.
const (
	ExitOK     = 0 // success
	ExitFailed = 1 // the operation ran and failed: deploy aborted, rollback refused…
	ExitUsage  = 2 // bad flags, arguments or configuration; nothing was done
)

// table maps each kind to its HTTP status and exit code. A kind not in it
// is Failed's.
var table = map[Kind]struct{ status, exit int }{
	Busy:     {http.StatusConflict, ExitFailed},
	Config:   {http.StatusUnprocessableEntity, ExitUsage},
	Usage:    {http.StatusBadRequest, ExitUsage},
	Refused:  {http.StatusPreconditionFailed, ExitFailed},
	Aborted:  {http.StatusPreconditionFailed, ExitFailed},
	NotFound: {http.StatusNotFound, ExitFailed},
	Failed:   {http.StatusInternalServerError, ExitFailed},
}

// HTTPStatus is the status the admin API answers an error of kind k with.
func (k Kind) HTTPStatus() int {
	if e, ok := table[k]; ok {
		return e.status
	}
	return table[Failed].status
}

// ExitCode is the exit code of a command that ends with an error of kind
// k.
func (k Kind) ExitCode() int {
	if e, ok := table[k]; ok {
		return e.exit
	}
	return table[Failed].exit
}
