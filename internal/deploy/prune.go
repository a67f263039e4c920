package deploy

import (
	"context"
	"time"

	"github.com/cutover/cutover/internal/state"
)

// Prune applies release retention now (`cutover releases prune`): it
// removes releases beyond release.keep — first those that never went live
// (failed or only prepared), then the oldest — never the live one, the
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
	return e.prune(ctx, live, e.Config().Release.Keep)
}

// neverLive lists the releases that never went live (failed, or prepared
// and never deployed): no rollback can go back to them, so retention
// removes them before any release that served.
func neverLive(ctx context.Context, store Journal) ([]string, error) {
	rels, err := store.Releases(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, r := range rels {
		if r.Status == state.ReleaseFailed || r.Status == state.ReleasePrepared {
			ids = append(ids, r.ID)
		}
	}
	return ids, nil
}
