package fleet

import (
	"sort"
	"time"
)

// InstanceStatus is one instance as `cutover status` shows it.
type InstanceStatus struct {
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
}

// Status reports every instance, by id.
func (f *Fleet) Status() []InstanceStatus {
	var out []InstanceStatus
	for _, m := range f.AllBut("") {
		s := m.status()
		out = append(out, InstanceStatus{
			ID: m.id, Release: m.release, PID: s.PID, Port: s.Port, State: s.State.String(),
			Healthy: m.healthy(), Restarts: s.Restarts, LastExit: s.LastExit, LastExitAt: s.LastExitAt,
			StartedAt: s.StartedAt, Adopted: s.Adopted,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
