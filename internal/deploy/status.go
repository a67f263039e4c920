package deploy

import (
	"context"
	"sort"
	"time"

	"github.com/cutover/cutover/internal/proxy"
)

// Status is what `cutover status` shows.
type Status struct {
	App       string                        `json:"app"`
	Listen    string                        `json:"listen"`
	Active    string                        `json:"active"`
	Instances []InstanceStatus              `json:"instances"`
	Deploy    *Progress                     `json:"deploy"`
	Traffic   map[string]proxy.ReleaseStats `json:"traffic"`
	// Weights is each release's share of new requests.
	Weights map[string]int `json:"weights"`
	// Recent is each serving release's traffic over the last minute.
	Recent map[string]proxy.WindowStats `json:"recent"`
	// Recovered says what the daemon rebuilt or found at start (a lost
	// state.db, an instance nobody recorded), until a deploy succeeds.
	Recovered []string `json:"recovered,omitempty"`
	// Degraded, when set, is why deploys are refused now and what to do.
	Degraded string `json:"degraded,omitempty"`
}

// RecentWindow is the window Status.Recent covers.
const RecentWindow = time.Minute

// InstanceStatus is one instance in Status.
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

// Status reports the live release, every instance and the deploy in
// flight.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	active, err := e.store.Active(ctx)
	if err != nil || active == "" {
		// state.db unreadable, or not written yet: the proxy knows.
		active = e.px.Active()
	}
	cfg := e.Config()
	st := Status{App: cfg.App.Name, Listen: cfg.Proxy.Listen, Active: active, Deploy: e.Progress(), Traffic: e.px.Stats(),
		Weights: e.px.Weights(), Recent: map[string]proxy.WindowStats{}}
	st.Recovered, st.Degraded = e.Recovery()
	for rel := range st.Traffic {
		if w := e.px.Window(rel, RecentWindow); w.Requests > 0 || st.Weights[rel] > 0 {
			st.Recent[rel] = w
		}
	}
	e.mu.Lock()
	ms := make([]*managed, 0, len(e.insts))
	for _, m := range e.insts {
		ms = append(ms, m)
	}
	e.mu.Unlock()
	for _, m := range ms {
		s := m.status()
		st.Instances = append(st.Instances, InstanceStatus{
			ID: m.id, Release: m.release, PID: s.PID, Port: s.Port, State: s.State.String(),
			Healthy: m.healthy(), Restarts: s.Restarts, LastExit: s.LastExit, LastExitAt: s.LastExitAt,
			StartedAt: s.StartedAt, Adopted: s.Adopted,
		})
	}
	sort.Slice(st.Instances, func(i, j int) bool { return st.Instances[i].ID < st.Instances[j].ID })
	return st, nil
}
