package tcpproxy

import (
	"slices"
	"strings"
)

// PortStatus is one TCP port as `cutover status` shows it.
type PortStatus struct {
	Listen  string `json:"listen"`
	PortEnv string `json:"port_env"`
	Balance string `json:"balance"`
	Health  string `json:"health"`
	// Next is the instance a new connection goes to now ("first"), or the
	// first of the healthy ones in turn ("round-robin"); "" when none is
	// routed.
	Next      string          `json:"next"`
	Instances []BackendStatus `json:"instances"`
}

// BackendStatus is one instance's port of a TCP port.
type BackendStatus struct {
	ID      string `json:"id"`
	Addr    string `json:"addr"`
	Healthy bool   `json:"healthy"`
	Routed  bool   `json:"routed"`
	Conns   int    `json:"conns"`
}

// Status reports each entry.
func (p *Ports) Status() []PortStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PortStatus, 0, len(p.entries))
	for _, e := range p.entries {
		st := PortStatus{Listen: e.cfg.Listen, PortEnv: e.cfg.PortEnv, Balance: e.cfg.Balance, Health: e.cfg.Health}
		if ln := e.ln; ln != nil {
			st.Listen = ln.Addr().String()
		}
		t := e.table.Load()
		for _, b := range t.backends {
			if b.healthy.Load() {
				st.Next = b.id
				break
			}
		}
		if st.Next == "" && len(t.backends) > 0 {
			st.Next = t.backends[0].id
		}
		for _, b := range e.backends {
			st.Instances = append(st.Instances, BackendStatus{
				ID: b.id, Addr: b.addr, Healthy: b.healthy.Load(), Routed: slices.Contains(t.backends, b), Conns: b.open(),
			})
		}
		slices.SortFunc(st.Instances, func(a, b BackendStatus) int { return strings.Compare(a.ID, b.ID) })
		out = append(out, st)
	}
	return out
}
