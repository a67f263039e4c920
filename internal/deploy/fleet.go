package deploy

import (
	"context"
	"time"

	"github.com/cutover/cutover/internal/fleet"
)

// managed is one instance of the app's fleet, as the deploy steps hold it.
type managed = fleet.Instance

// InstanceStatus is one instance in Status.
type InstanceStatus = fleet.InstanceStatus

// instancesOf returns the instances of one release, or of every release
// but one when not is true.
func (e *Engine) instancesOf(release string, not bool) []*managed {
	if not {
		return e.fleet.AllBut(release)
	}
	return e.fleet.Of(release)
}

// stopInstances takes instances out of rotation and stops them.
func (e *Engine) stopInstances(ctx context.Context, ms []*managed) error {
	return e.fleet.Stop(ctx, ms)
}

// announceDrain tells each instance in ms that its drain began.
func (e *Engine) announceDrain(ms []*managed, cutFrom time.Time) { e.fleet.AnnounceDrain(ms, cutFrom) }

// clearDrain removes the drain notices of instances that stopped.
func (e *Engine) clearDrain(ids ...string) { e.fleet.ClearDrain(ids...) }

// drainInstances takes instances out of rotation, waits for their requests
// in flight (up to drain_timeout), then stops them.
func (e *Engine) drainInstances(ctx context.Context, ms []*managed) error {
	return e.fleet.Drain(ctx, ms, e.Config().Proxy.DrainTimeout.Duration)
}

// ids returns the instance IDs of ms.
func ids(ms []*managed) []string { return fleet.IDs(ms) }

// ofRelease returns the instances of ms that run release.
func ofRelease(ms []*managed, release string) []*managed { return fleet.OfRelease(ms, release) }

// instanceNumber extracts n from "<release>-<n>"; 0 if it has none.
func instanceNumber(id, release string) int { return fleet.InstanceNumber(id, release) }

// TailFile returns up to n last lines of a file.
func TailFile(path string, n int) []string { return fleet.TailFile(path, n) }
