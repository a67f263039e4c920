package cli

import (
	"fmt"
	"testing"

	"github.com/cutover/cutover/internal/api"
)

// TestControlRefusedExitCode: an action the deploy refuses is a failed
// operation (exit 1), not a usage error.
func TestControlRefusedExitCode(t *testing.T) {
	err := fmt.Errorf("abort: %w", &api.Error{Kind: api.KindRefused, Msg: "abort refused (deploy #3, step drain): the new release r2 is live; `cutover rollback` goes back"})
	if got := exitCode(err); got != ExitFailed {
		t.Errorf("exit code of a refused control action: got %d, want %d", got, ExitFailed)
	}
}
