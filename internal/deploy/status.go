package deploy

import (
	"context"
	"time"

	"github.com/cutover/cutover/internal/tcpproxy"
	"github.com/cutover/cutover/internal/traffic"
)

// Status is what `cutover status` shows.
type Status struct {
	App       string                          `json:"app"`
	Listen    string                          `json:"listen"`
	Active    string                          `json:"active"`
	Instances []InstanceStatus                `json:"instances"`
	Deploy    *Progress                       `json:"deploy"`
	Traffic   map[string]traffic.ReleaseStats `json:"traffic"`
	// TrafficSince is when the counters of Traffic started: the daemon
	// serving the app started then. Two statuses with different values
	// come from different daemons (an upgrade, a restart in between), and
	// their counters cannot be subtracted.
	TrafficSince time.Time `json:"traffic_since"`
	// Weights is each release's share of new requests.
	Weights map[string]int `json:"weights"`
	// Recent is each serving release's traffic over the last minute.
	Recent map[string]traffic.WindowStats `json:"recent"`
	// Recovered says what the daemon rebuilt or found at start (a lost
	// state.db, an instance nobody recorded), until a deploy succeeds.
	Recovered []string `json:"recovered,omitempty"`
	// Degraded, when set, is why deploys are refused now and what to do.
	Degraded string `json:"degraded,omitempty"`
	// TCP is the app's TCP ports ([[app.tcp]]): each with the instance
	// new connections go to.
	TCP []tcpproxy.PortStatus `json:"tcp,omitempty"`
}

// RecentWindow is the window Status.Recent covers.
const RecentWindow = time.Minute

// Status reports the live release, every instance and the deploy in
// flight.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	active, err := e.store.Active(ctx)
	if err != nil || active == "" {
		// state.db unreadable, or not written yet: the proxy knows.
		active = e.px.Active()
	}
	cfg := e.Config()
	st := Status{App: cfg.App.Name, Listen: cfg.Proxy.Listen, Active: active, Deploy: e.Progress(), Traffic: e.px.Stats(), TrafficSince: e.started,
		Weights: e.px.Weights(), Recent: map[string]traffic.WindowStats{}}
	st.Recovered, st.Degraded = e.Recovery()
	for rel := range st.Traffic {
		if w := e.px.Window(rel, RecentWindow); w.Requests > 0 || st.Weights[rel] > 0 {
			st.Recent[rel] = w
		}
	}
	st.Instances = e.fleet.Status()
	if e.tcpStatus != nil {
		st.TCP = e.tcpStatus()
	}
	return st, nil
}
