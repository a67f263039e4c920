package deploy

import (
	"context"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/instance"
	"github.com/cutover/cutover/internal/release"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/traffic"
)

// The engine's seams (see the package doc): what it needs of the state
// database, of the proxy and of the app's instances, and nothing more.

// Journal is the durable record of deploys, their steps, the releases and
// which one is live; *state.Store implements it.
type Journal interface {
	BeginDeploy(ctx context.Context, d state.Deploy) (int64, error)
	SetDeployRelease(ctx context.Context, id int64, release string) error
	AddStep(ctx context.Context, deployID int64, st state.Step) error
	FinishDeploy(ctx context.Context, id int64, st state.DeployState, errText string, at time.Time) error
	InterruptRunning(ctx context.Context, at time.Time) ([]state.Deploy, error)
	Deploys(ctx context.Context, limit int, only state.DeployState) ([]state.Deploy, error)

	Active(ctx context.Context) (string, error)
	SetActive(ctx context.Context, id string, at time.Time) error
	Release(ctx context.Context, id string) (state.Release, error)
	Releases(ctx context.Context) ([]state.Release, error)
	LastRetired(ctx context.Context) (state.Release, error)
	PutRelease(ctx context.Context, r state.Release) error
	SetReleaseStatus(ctx context.Context, id string, st state.ReleaseStatus) error
	SetReleaseMeta(ctx context.Context, id, metaJSON string) error

	// Get and Set keep small facts that outlive the daemon, such as a
	// failed held switch's refusal.
	Get(ctx context.Context, key string) (string, error)
	Set(ctx context.Context, key, value string) error
}

// Traffic is where requests go: the live release, the weights of a
// rollout, the preview, the hold of a held switch, drains, and each
// release's measurements; *proxy.Proxy implements it.
type Traffic interface {
	SetActive(release string)
	Active() string
	SetWeights(w map[string]int)
	Weights() map[string]int
	SetPreview(release, token string)

	Hold()
	Holding() bool
	WaitRequests(ctx context.Context, release string) traffic.InFlight
	Unhold(release string) traffic.HoldReport
	FailHold(why string) traffic.HoldReport
	Drain(ctx context.Context, release string, pace time.Duration) traffic.DrainResult

	Window(release string, d time.Duration) traffic.WindowStats
	Stats() map[string]traffic.ReleaseStats
}

// Instance is one instance of the app as a deploy holds it.
type Instance = instance.Handle

// InstanceStatus is one instance in Status.
type InstanceStatus = instance.Status

// Fleet is the app's always-on instances; *fleet.Fleet implements it. It
// boots, stops and drains what the deploy asks, and keeps alive on its
// own (health checks, crash and hang restarts) what runs.
type Fleet interface {
	// Start starts instance n of release with app's configuration.
	Start(app config.App, release string, n int) (Instance, error)
	// Stop takes ms out of rotation and stops them.
	Stop(ctx context.Context, ms []Instance) error
	// StopAll stops every instance (`cutover stop`).
	StopAll(ctx context.Context) error
	// Of returns the instances of release; AllBut those of every other
	// release (AllBut("") is all of them).
	Of(release string) []Instance
	AllBut(keep string) []Instance
	// Drain takes ms out of rotation, tells them, waits for their
	// requests up to timeout, and stops them.
	Drain(ctx context.Context, ms []Instance, timeout time.Duration) error
	// AnnounceDrain tells ms that their drain began and when what is
	// still open is cut; ClearDrain forgets it once they stopped.
	AnnounceDrain(ms []Instance, cutFrom time.Time)
	ClearDrain(ids ...string)

	// Find, Recover and StartMissing are the instances' part of the
	// recovery at start (see Engine.Recover).
	Find() []state.Instance
	Recover(ctx context.Context, active string, app config.App, found []state.Instance)
	StartMissing(active string, app config.App)
	// Flush writes the instances to the state database: what could not
	// be written when they changed.
	Flush(ctx context.Context) error

	Status() []InstanceStatus
	// TrimLogs holds the instances' logs to app.logs_max_total.
	TrimLogs()
	// LogFiles returns the log files of release's instances (of instance
	// id only, when set), sorted; the error says there are none and why.
	LogFiles(release, id string) ([]string, error)
	// Close stops supervising, leaving the instances running.
	Close()
}

// FleetOptions is what the engine gives the fleet it drives (see
// Options.NewFleet).
type FleetOptions struct {
	// Releases holds the release directories the instances run in.
	Releases *release.Manager
	// StateFailed is to be told of each write to the state database that
	// failed: deploys are refused until Flush succeeds.
	StateFailed func(what string, err error)
	// Note is to be told what recovery found or could not do; Status
	// shows it until a deploy succeeds.
	Note func(msg string)
}

// Processes stops the process groups of the commands (git, test, build,
// hooks) a previous daemon left running; supervisor.Groups implements it.
type Processes interface {
	// StartTime is the start time of process pid (it and pid identify
	// the process for good); an error when there is none.
	StartTime(pid int) (uint64, error)
	// KillGroup stops the group pgid, led by the process that started at
	// start: SIGTERM, then SIGKILL after timeout. A leader that is gone
	// or another process is no error.
	KillGroup(pgid int, start uint64, timeout time.Duration) error
}

// managed is one instance of the app's fleet, as the deploy steps hold it.
type managed = Instance

// instancesOf returns the instances of one release, or of every release
// but one when not is true.
func (e *Engine) instancesOf(release string, not bool) []managed {
	if not {
		return e.fleet.AllBut(release)
	}
	return e.fleet.Of(release)
}

// stopInstances takes instances out of rotation and stops them.
func (e *Engine) stopInstances(ctx context.Context, ms []managed) error {
	return e.fleet.Stop(ctx, ms)
}

// announceDrain tells each instance in ms that its drain began.
func (e *Engine) announceDrain(ms []managed, cutFrom time.Time) { e.fleet.AnnounceDrain(ms, cutFrom) }

// clearDrain removes the drain notices of instances that stopped.
func (e *Engine) clearDrain(ids ...string) { e.fleet.ClearDrain(ids...) }

// drainInstances takes instances out of rotation, tells them, waits for
// their requests in flight (up to timeout), then stops them (see drain).
func (e *Engine) drainInstances(ctx context.Context, ms []managed, timeout time.Duration) error {
	return e.fleet.Drain(ctx, ms, timeout)
}

// ids returns the instance IDs of ms.
func ids(ms []managed) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID()
	}
	return out
}

// ofRelease returns the instances of ms that run release.
func ofRelease(ms []managed, release string) []managed {
	var out []managed
	for _, m := range ms {
		if m.Release() == release {
			out = append(out, m)
		}
	}
	return out
}
