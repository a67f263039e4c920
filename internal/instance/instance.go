// Package instance is the vocabulary the fleet and the deploy engine share
// about one instance of an app: Handle, what a deploy holds of an instance
// it booted, Status, an instance as `cutover status` shows it, the form of
// instance ids (Number) and an instance's environment (Env, which hooks
// get too). It starts nothing, so that the engine can speak of instances
// without importing the fleet, the proxy or the supervisor.
package instance

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// Handle is one instance as a deploy holds it. The fleet that returned it
// keeps it alive (crash and hang restarts) until it is stopped.
type Handle interface {
	// ID is the instance's id, "<release>-<n>".
	ID() string
	// Release is the release the instance runs.
	Release() string
	// App is the [app] configuration the instance runs with.
	App() config.App
	// Ready is closed once the instance's health checks first call it
	// healthy.
	Ready() <-chan struct{}
	// Crashed receives the description of each exit of the instance
	// that was restarted (a crash); it drops what nobody reads.
	Crashed() <-chan string
	// Restarts counts the crashes and hangs the instance was restarted
	// after, with the description of the latest exit.
	Restarts() (n int, lastExit string)
	// BootState says where a booting instance is, from its latest health
	// check.
	BootState() string
	// LastCheckError is the error of the latest failed health check, or
	// nil.
	LastCheckError() error
	// LogTail returns up to n last lines of the instance's log.
	LogTail(n int) []string
}

// Number extracts n from an instance id "<release>-<n>"; 0 if id is not
// of that form (another release's instance, an id cut short).
func Number(id, release string) int {
	rest, ok := strings.CutPrefix(id, release+"-")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// Status is one instance as `cutover status` shows it.
type Status struct {
	ID         string    `json:"id"`
	Release    string    `json:"release"`
	PID        int       `json:"pid"`
	Port       int       `json:"port"`
	State      string    `json:"state"`
	Healthy    bool      `json:"healthy"`
	Restarts   int       `json:"restarts"`
	LastExit   string    `json:"last_exit,omitempty"`
	LastExitAt time.Time `json:"last_exit_at,omitzero"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	Adopted    bool      `json:"adopted,omitempty"`
	// ChecksPassed and ChecksFailed count the instance's health checks
	// since the daemon started.
	ChecksPassed uint64 `json:"checks_passed,omitempty"`
	ChecksFailed uint64 `json:"checks_failed,omitempty"`
}

// Env is the environment of an instance (and of a release's
// hooks): cutover's own, then the app's [app.env], then CUTOVER_RELEASE
// and CUTOVER_APP. PORT is added by the supervisor.
func Env(app config.App, releaseID string) []string {
	env := os.Environ()
	for k, v := range app.Env {
		env = append(env, k+"="+v)
	}
	env = append(env, "CUTOVER_RELEASE="+releaseID, "CUTOVER_APP="+app.Name)
	return env
}
