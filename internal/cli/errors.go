package cli

import (
	"errors"

	"github.com/cutover/cutover/internal/config"
)

// isConfigError reports whether err comes from a config file problem.
func isConfigError(err error) bool {
	var ce *config.Error
	return errors.As(err, &ce)
}
