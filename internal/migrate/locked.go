package migrate

import "context"

// Locked runs fn while holding the migration lock of r's version table:
// the same lock Up takes, so an app's own migration command run through
// Locked (cutover's release phase) never runs at the same time as another
// deploy's, on this host or another. progress reports a wait for the lock,
// as Up does.
func (r *Runner) Locked(ctx context.Context, progress func(Event), fn func(ctx context.Context) error) error {
	unlock, err := r.lock(ctx, progress)
	if err != nil {
		return err
	}
	defer unlock()
	return fn(ctx)
}
