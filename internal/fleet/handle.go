package fleet

// What an Instance shows to the deploy engine (instance.Handle).

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/health"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/supervisor"
)

// Restarts counts the crashes and hangs the instance was restarted after,
// with the description of its latest exit.
func (m *Instance) Restarts() (n int, lastExit string) {
	st := m.status()
	return st.Restarts, st.LastExit
}

// ID is the instance's id, "<release>-<n>".
func (m *Instance) ID() string { return m.id }

// Release is the release the instance runs.
func (m *Instance) Release() string { return m.release }

// App is the [app] configuration the instance runs with.
func (m *Instance) App() config.App { return m.app }

// Status is the instance's process as the supervisor sees it.
func (m *Instance) Status() supervisor.Status { return m.status() }

// Healthy reports whether the instance is in rotation.
func (m *Instance) Healthy() bool { return m.healthy() }

// Ready is closed once the instance's health checker first calls it
// healthy.
func (m *Instance) Ready() <-chan struct{} { return m.ready() }

// Crashed receives the supervisor's description of each exit of the
// instance that it restarts (a crash); it is buffered and drops what
// nobody reads.
func (m *Instance) Crashed() <-chan string { return m.crashed }

// LastCheckError is the error of the latest failed health check, or nil.
func (m *Instance) LastCheckError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.checker == nil {
		return nil
	}
	return m.checker.LastError()
}

// Backend is the instance's proxy backend, nil before its process runs.
func (m *Instance) Backend() *proxy.Backend { return m.proxyBackend() }

// LogPath is the file the instance's output goes to.
func (m *Instance) LogPath() string { return m.logPath }

// LogTail returns up to n last lines of the instance's log.
func (m *Instance) LogTail(n int) []string { return TailFile(m.logPath, n) }

// BootState says where a booting instance is, from its latest health
// check: "last health check: GET …: status 404 Not Found", with a hint
// when the answer looks like a wrong app.health.path.
func (m *Instance) BootState() string {
	m.mu.Lock()
	chk := m.checker
	m.mu.Unlock()
	if chk == nil {
		return "not started yet"
	}
	passes, err := chk.Streak()
	switch {
	case err == nil && passes == 0:
		return "no health check has answered yet"
	case err == nil:
		return fmt.Sprintf("passing, %d of the %d checks in a row it needs (app.health.healthy_after)", passes, max(m.app.Health.HealthyAfter, 1))
	}
	why := "last health check: " + err.Error()
	var se *health.StatusError
	if errors.As(err, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusMethodNotAllowed) {
		// The app may still be setting up its routes: keep waiting, but
		// say what it most often means.
		why += fmt.Sprintf("; if this lasts, app.health.path %q is not a path the app serves", m.app.Health.Path)
	}
	return why
}
