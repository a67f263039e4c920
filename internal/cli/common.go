package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
)

// loadConfig finds and loads the config file named by -c, $CUTOVER_CONFIG
// or ./cutover.toml.
func (g *globals) loadConfig() (*config.Config, error) {
	path, err := config.Find(g.configPath)
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	return config.Load(path)
}

// client returns an API client for the running daemon, for the commands
// that do not act on the config file as it is now (status, logs, releases,
// rollback, pause, resume, abort, promote, stop). From then on the command
// runs at a lower CPU priority (see clientNice).
//
// A mistake in the config file does not stand in their way: the daemon runs
// with the config it loaded before, and these commands are the ones needed
// when something is wrong. When the file does not load, client finds the
// admin socket through the file's data_dir read leniently (or the default
// data dir), warns on stderr with the file's errors and the data dir used,
// and returns a nil config. When no daemon answers there either, the
// config's error is returned (exit 2): the mistake is then the news.
func (g *globals) client() (*api.Client, *config.Config, error) {
	lowerPriority()
	path, err := config.Find(g.configPath)
	if err != nil {
		return nil, nil, &UsageError{Err: err}
	}
	cfg, err := config.Load(path)
	if err == nil {
		return api.NewClient(cfg.SocketPath()).App(g.app), cfg, nil
	}
	dir, set, rerr := config.DataDirOf(path)
	if rerr != nil {
		return nil, nil, err // not even readable: nothing to go on
	}
	sock := filepath.Join(dir, "cutover.sock")
	if !answers(sock) {
		return nil, nil, err // no daemon to fall back on: the mistake is the news
	}
	how := "as the file sets it"
	if !set {
		how = "the default: the file sets none that can be read"
	}
	fmt.Fprintf(g.stderr, "cutover: warning: %s does not load; the daemon keeps running with the config it loaded before:\n", path)
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(g.stderr, "  %s\n", line)
	}
	fmt.Fprintf(g.stderr, "  reaching the daemon through data_dir %s (%s); fix the file before the next deploy\n", dir, how)
	return api.NewClient(sock).App(g.app), nil, nil
}

// answers reports whether something accepts connections on the unix
// socket at path.
func answers(path string) bool {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return false
	}
	c.Close() //nolint:errcheck // a probe: nothing was written
	return true
}

// configClient is client for the commands that act on the config file as
// it is now (deploy): a config that does not load is refused (exit 2).
func (g *globals) configClient() (*api.Client, *config.Config, error) {
	lowerPriority()
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	return api.NewClient(cfg.SocketPath()).App(g.app), cfg, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return nil
}
