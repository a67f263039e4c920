package fleet

import (
	"testing"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/release"
)

// TestSpecTCPPorts: each [[app.tcp]] entry gives the instance a port of
// its own in its port_env, all different from $PORT; an adopted
// instance's ports are kept as given.
func TestSpecTCPPorts(t *testing.T) {
	dir := t.TempDir()
	rel, err := release.NewManager(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fleet{cfg: &config.Config{DataDir: dir}, rel: rel}
	app := config.App{Name: "shop", Command: "x", TCP: []config.TCP{{PortEnv: "NAILGUN_PORT"}, {PortEnv: "ADMIN_PORT"}}}

	spec, err := f.spec(app, "r1", 1, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ports := tcpPorts(app, envLookup(spec.Env))
	seen := map[int]string{spec.Port: "PORT"}
	for _, k := range []string{"NAILGUN_PORT", "ADMIN_PORT"} {
		p := ports[k]
		if p == 0 {
			t.Fatalf("%s not in the environment: %v", k, spec.Env)
		}
		if o, dup := seen[p]; dup {
			t.Errorf("%s = %d, the port of %s too", k, p, o)
		}
		seen[p] = k
	}

	adopted, err := f.spec(app, "r1", 1, 4001, map[string]int{"NAILGUN_PORT": 4002, "ADMIN_PORT": 4003})
	if err != nil {
		t.Fatal(err)
	}
	got := tcpPorts(app, envLookup(adopted.Env))
	if adopted.Port != 4001 || got["NAILGUN_PORT"] != 4002 || got["ADMIN_PORT"] != 4003 {
		t.Errorf("adopted ports changed: PORT %d, %v", adopted.Port, got)
	}

	plain, err := f.spec(config.App{Name: "shop", Command: "x"}, "r1", 2, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Port != 0 {
		t.Errorf("without TCP ports, $PORT is left to the supervisor; got %d", plain.Port)
	}
}
