package deploy

import (
	"context"
	"time"
)

// Prune applies release retention now (`cutover releases prune`): it
// removes the oldest releases beyond release.keep, never the live one, the
// rollback target, or one with running instances.
func (e *Engine) Prune(ctx context.Context) ([]string, error) {
	if !e.deployMu.TryLock() {
		p := e.Progress()
		if p == nil {
			p = &Progress{Kind: "deploy", Step: "finishing", StartedAt: time.Now()}
		}
		return nil, &BusyError{Running: *p}
	}
	defer e.deployMu.Unlock()
	live, err := e.store.Active(ctx)
	if err != nil {
		return nil, err
	}
	return e.prune(ctx, live)
}
