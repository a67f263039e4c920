package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

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

// client returns an API client for the daemon of the config file. From
// then on the command runs at a lower CPU priority (see clientNice).
func (g *globals) client() (*api.Client, *config.Config, error) {
	lowerPriority()
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	return api.NewClient(cfg.SocketPath()), cfg, nil
}

// isAPIUsageError reports whether the daemon answered that the request or
// the config was at fault (exit 2).
func isAPIUsageError(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && (ae.Kind == api.KindConfig || ae.Kind == api.KindUsage)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return nil
}
