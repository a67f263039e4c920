package fleet

import (
	"sort"

	"github.com/cutover/cutover/internal/instance"
)

// Status reports every instance, by id.
func (f *Fleet) Status() []instance.Status {
	var out []instance.Status
	for _, m := range f.instancesOf("", true) {
		s := m.status()
		out = append(out, instance.Status{
			ID: m.id, Release: m.release, PID: s.PID, Port: s.Port, State: s.State.String(),
			Healthy: m.healthy(), Restarts: s.Restarts, LastExit: s.LastExit, LastExitAt: s.LastExitAt,
			StartedAt: s.StartedAt, Adopted: s.Adopted,
			ChecksPassed: m.checks.Passed.Load(), ChecksFailed: m.checks.Failed.Load(),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
