package deploy

import (
	"context"
	"path/filepath"
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
	return e.prune(ctx, live)
}

// neverLive lists the releases that never went live (failed, or prepared
// and never deployed): no rollback can go back to them, so retention
// removes them before any release that served.
func neverLive(ctx context.Context, store *state.Store) ([]string, error) {
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

// logTrimEvery is how often the logs' total cap (app.logs_max_total) is
// enforced besides after each prune.
const logTrimEvery = 30 * time.Second

// trimLogsEvery enforces the logs' total cap every interval until the
// engine is closed.
func (e *Engine) trimLogsEvery(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
			e.trimLogs()
		}
	}
}

// trimLogs holds <data_dir>/logs to app.logs_max_total, sparing the files
// the engine's instances write to; it logs what it removed, and says once
// (until it is under again) when those files alone pass the cap.
func (e *Engine) trimLogs() {
	cfg := e.Config()
	open := map[string]bool{}
	for _, m := range e.instancesOf("", true) {
		open[filepath.Join(cfg.LogsDir(), m.release, m.id+".log")] = true
	}
	t, err := e.rel.TrimLogs(cfg.App.LogsMaxTotal, open)
	if err != nil {
		e.log.Warn("hold the logs to app.logs_max_total", "err", err)
		return
	}
	if len(t.Removed) > 0 {
		e.log.Info("removed the oldest log files to hold app.logs_max_total", "files", len(t.Removed),
			"bytes", t.RemovedBytes, "total", t.Total, "max", cfg.App.LogsMaxTotal)
	}
	over := t.Total > cfg.App.LogsMaxTotal
	if over && !e.logsOver.Swap(true) {
		e.log.Warn("the logs of the running instances alone pass app.logs_max_total; they are kept (each is capped by app.log_max_size): raise logs_max_total or lower log_max_size",
			"total", t.Total, "max", cfg.App.LogsMaxTotal, "config", cfg.Path)
	} else if !over {
		e.logsOver.Store(false)
	}
}
