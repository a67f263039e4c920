package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/cutover/cutover/internal/release"
)

// hook runs one of the [deploy] hooks in the release directory, streaming
// its output as events. A non-zero exit is an error carrying the last
// lines of output.
func (r *Run) hook(ctx context.Context, name, command, releaseID string) (string, error) {
	hctx, cancel := context.WithTimeout(ctx, r.cfg.Deploy.HookTimeout.Duration)
	defer cancel()
	tail, code, err := release.RunShell(hctx, name, r.e.rel.Dir(releaseID), r.hookEnv(releaseID), command,
		func(stream, line string) {
			r.event(Event{Type: "output", Step: StepHook, Instance: stream, Lines: []string{line}})
		}, r.e.trackCommand)
	if err != nil {
		if hctx.Err() != nil && ctx.Err() == nil {
			return "", fmt.Errorf("%s %q did not finish within deploy.hook_timeout (%s)", name, command, r.cfg.Deploy.HookTimeout.Duration)
		}
		return "", fmt.Errorf("%s %q: %w", name, command, err)
	}
	if code != 0 {
		return "", fmt.Errorf("%s %q exited with status %d%s", name, command, code, lastLine(tail))
	}
	return fmt.Sprintf("%s %q ok", name, command), nil
}

// lastLine is ": " and the last line of a command's output tail, or ""
// when it printed nothing: what a failure or success message ends with.
func lastLine(tail []string) string {
	if len(tail) == 0 {
		return ""
	}
	return ": " + strings.TrimSpace(tail[len(tail)-1])
}
