package fleet

// The supervisor's spec of an instance: its id, environment, HTTP and
// TCP ports, and health checks.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/freeport"
	"github.com/cutover/cutover/internal/health"
	"github.com/cutover/cutover/internal/instance"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/supervisor"
)

func healthConfig(h config.Health) health.Config {
	return health.Config{
		Path:           h.Path,
		GRPC:           h.GRPC,
		GRPCService:    h.GRPCService,
		Interval:       h.Interval.Duration,
		Timeout:        h.Timeout.Duration,
		HealthyAfter:   h.HealthyAfter,
		UnhealthyAfter: h.UnhealthyAfter,
		RestartAfter:   h.RestartAfter,
	}
}

// upstreamProtocol is how the proxy speaks to the app's instances
// (app.upstream_protocol).
func upstreamProtocol(app config.App) proxy.Protocol {
	if app.UpstreamProtocol == config.UpstreamH2C {
		return proxy.H2C
	}
	return proxy.HTTP1
}

// spec is the supervisor's spec of instance n of releaseID. port is its
// HTTP port and tcpPorts its port of each [[app.tcp]] entry, by port_env
// (those of an instance adopted); 0 and nil pick free ones, all
// different. The TCP ports go into the environment, which the supervisor
// keeps across restarts, so an instance keeps its ports for its life.
func (f *Fleet) spec(app config.App, releaseID string, n int, port int, tcpPorts map[string]int) (supervisor.Spec, error) {
	id := releaseID + "-" + strconv.Itoa(n)
	env := append(instance.Env(app, releaseID), DrainFileEnv+"="+drainFile(f.cfg, id))
	if len(app.TCP) > 0 {
		taken := map[int]bool{}
		pick := func(p int) (int, error) {
			for p == 0 || taken[p] {
				var err error
				if p, err = freeport.Pick(); err != nil {
					return 0, fmt.Errorf("pick a port for instance %s: %w", id, err)
				}
			}
			taken[p] = true
			return p, nil
		}
		var err error
		if port, err = pick(port); err != nil {
			return supervisor.Spec{}, err
		}
		for _, t := range app.TCP {
			p, err := pick(tcpPorts[t.PortEnv])
			if err != nil {
				return supervisor.Spec{}, err
			}
			env = append(env, t.PortEnv+"="+strconv.Itoa(p))
		}
	}
	return supervisor.Spec{
		App:         app.Name,
		Release:     releaseID,
		Instance:    id,
		Dir:         f.rel.Dir(releaseID),
		Command:     app.Command,
		Env:         env,
		Port:        port,
		StopSignal:  app.Signal,
		StopTimeout: app.StopTimeout.Duration,
		LogPath:     LogPath(f.cfg, releaseID, id),
		LogMaxSize:  app.LogMaxSize,
		BootNice:    app.BootNice,
	}, nil
}

// tcpPorts returns the port of each [[app.tcp]] entry in env ("KEY=value"
// or a map), by port_env; an entry without one is left out.
func tcpPorts(app config.App, lookup func(string) string) map[string]int {
	if len(app.TCP) == 0 {
		return nil
	}
	out := map[string]int{}
	for _, t := range app.TCP {
		if p, err := strconv.Atoi(lookup(t.PortEnv)); err == nil && p > 0 {
			out[t.PortEnv] = p
		}
	}
	return out
}

// envLookup looks a key up in "KEY=value" entries; the last one wins, as
// in the process's environment.
func envLookup(env []string) func(string) string {
	return func(key string) string {
		v := ""
		for _, kv := range env {
			if k, val, ok := strings.Cut(kv, "="); ok && k == key {
				v = val
			}
		}
		return v
	}
}
