package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/release"
	"github.com/cutover/cutover/internal/state"
)

// recovery is what Recover could not take from state.db as it was, and
// what the engine still owes it. Guarded by Engine.mu.
type recovery struct {
	// notes say what was rebuilt or found at start; Status shows them
	// until the next deploy succeeds.
	notes []string
	// degraded is why every deploy is refused for this engine's life
	// (Options.Degraded).
	degraded string
	// unwritable is why state.db cannot be written now: deploys are
	// refused until a flush succeeds.
	unwritable string
	// unsaved: an instance change is not in state.db yet.
	unsaved bool
	// interruptPending: deploys recorded as running could not be marked
	// interrupted at start; the next deploy does it first.
	interruptPending bool
	flusher          bool // the flush loop runs
}

// flushEvery is how often what could not be written to state.db is tried
// again.
const flushEvery = 2 * time.Second

// note says loudly what Recover rebuilt or could not do, and keeps it for
// Status.
func (e *Engine) note(msg string) {
	e.log.Warn(msg)
	e.mu.Lock()
	e.rec.notes = append(e.rec.notes, msg)
	e.mu.Unlock()
}

// Recovery returns what Recover rebuilt (cleared by the next deploy that
// succeeds) and, when deploys are refused, why.
func (e *Engine) Recovery() (notes []string, degraded string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	degraded = e.rec.degraded
	if degraded == "" {
		degraded = e.rec.unwritable
	}
	return slices.Clone(e.rec.notes), degraded
}

// clearNotes forgets what Recover rebuilt: a deploy succeeded since.
func (e *Engine) clearNotes() {
	e.mu.Lock()
	e.rec.notes = nil
	e.mu.Unlock()
}

// stateFailed records that state.db could not be written (or read): the
// engine goes on from memory, and deploys are refused until flushState
// succeeds.
func (e *Engine) stateFailed(what string, err error) {
	why := fmt.Sprintf("state.db cannot be written (%s: %v): cutover serves and supervises on, keeps what it must record in memory and writes it as soon as it can; deploys are refused until then: free space (or fix permissions) on %s",
		what, err, e.Config().StatePath())
	e.mu.Lock()
	first := e.rec.unwritable == ""
	e.rec.unwritable, e.rec.unsaved = why, true
	e.mu.Unlock()
	if first {
		e.log.Error(why)
	}
}

// deployRefusal is why a deploy cannot start now, or "". State that
// could not be written is tried once more first.
func (e *Engine) deployRefusal(ctx context.Context) string {
	e.mu.Lock()
	degraded, unwritable := e.rec.degraded, e.rec.unwritable
	e.mu.Unlock()
	if degraded != "" {
		return "deploys are refused: " + degraded
	}
	if unwritable != "" && e.flushState(ctx, true) != nil {
		e.mu.Lock()
		unwritable = e.rec.unwritable
		e.mu.Unlock()
		return "deploys are refused: " + unwritable
	}
	return ""
}

// flushState writes to state.db what could not be written before: the
// instances as they are in memory (rows of instances that are gone
// deleted) and, with deploys (only under deployMu, before a deploy
// starts), the deploys still recorded as running marked interrupted. It
// clears the refusal once nothing is owed.
func (e *Engine) flushState(ctx context.Context, deploys bool) error {
	e.mu.Lock()
	unsaved, interrupt := e.rec.unsaved, e.rec.interruptPending
	e.mu.Unlock()
	if !unsaved && !interrupt {
		return nil
	}
	err := func() error {
		if interrupt && deploys {
			if _, err := e.store.InterruptRunning(ctx, time.Now()); err != nil {
				return err
			}
			e.mu.Lock()
			e.rec.interruptPending = false
			e.mu.Unlock()
		}
		if !unsaved {
			return nil
		}
		return e.fleet.Flush(ctx)
	}()
	if err != nil {
		e.stateFailed("write what was kept in memory", err)
		return err
	}
	e.mu.Lock()
	e.rec.unsaved = false
	was := e.rec.unwritable
	if !e.rec.interruptPending {
		e.rec.unwritable = ""
	}
	cleared := was != "" && e.rec.unwritable == ""
	e.mu.Unlock()
	if cleared {
		e.log.Warn("state.db can be written again: what was kept in memory is recorded; deploys are accepted again")
	}
	return nil
}

// markUnsaved remembers that an instance change did not reach state.db.
func (e *Engine) markUnsaved(what string, err error) { e.stateFailed(what, err) }

// startFlusher starts, once, the loop that writes what is owed to
// state.db as soon as it can.
func (e *Engine) startFlusher() {
	e.mu.Lock()
	if e.rec.flusher || e.closed {
		e.mu.Unlock()
		return
	}
	e.rec.flusher = true
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-e.ctx.Done():
				return
			case <-t.C:
			}
			// Instances only: marking deploys interrupted is for
			// deployRefusal, under the deploy lock.
			e.flushState(e.ctx, false) //nolint:errcheck // stateFailed logged it; tried again next tick
		}
	}()
}

// removeTemporary removes what a prepare killed half-way left in
// releases/: nothing runs from there, and nothing else would remove it.
func (e *Engine) removeTemporary() {
	gone, err := e.rel.RemoveTemporary()
	for _, g := range gone {
		e.log.Warn("removed what a prepare stopped half-way left", "path", e.rel.Dir(g))
	}
	if err != nil {
		e.log.Warn("remove what a prepare stopped half-way left", "err", err)
	}
}

// moveOldSnapshots takes the configuration snapshots an older cutover
// wrote into the release directories out of them: the app may serve its
// directory, and the snapshot holds the environment's secrets.
func (e *Engine) moveOldSnapshots() {
	moved, err := e.rel.MoveOldSnapshots()
	if len(moved) > 0 {
		e.log.Warn("moved the configuration snapshots out of the release directories, where the app could serve them",
			"file", release.SnapshotFile, "to", filepath.Join(e.Config().DataDir, "snapshots"), "releases", moved)
	}
	if err != nil {
		e.log.Warn("move the configuration snapshots out of the release directories", "err", err)
	}
}

// liveRelease returns the live release and the [app] configuration it
// runs with. When state.db does not know it (a deleted, emptied or
// replaced file, one restored without its -wal) it is taken from the
// `current` link, else from the release of the instances found running;
// when state.db names a release but `current` and every running instance
// say another (an older copy of state.db), those win. The release rows
// state.db lacks are then rebuilt from releases/.
func (e *Engine) liveRelease(ctx context.Context, recorded string, found []state.Instance) (string, config.App) {
	byRel := map[string]int{}
	for _, f := range found {
		byRel[f.Release]++
	}
	cur, err := e.rel.Current()
	if err != nil {
		e.log.Warn("read the current link", "err", err)
	}
	curOK := cur != "" && isDir(e.rel.Dir(cur))
	active := recorded
	switch {
	case active == "" && curOK:
		active = cur
		e.note(fmt.Sprintf("state.db records no live release; `current` points at %s: it is the live release again", cur))
	case active == "":
		best := ""
		for r, n := range byRel {
			if r != "" && (n > byRel[best] || n == byRel[best] && r > best) {
				best = r
			}
		}
		if best != "" {
			active = best
			e.note(fmt.Sprintf("state.db records no live release and `current` names none; %d running instance(s) of %s were found: it is the live release again", byRel[best], best))
		}
	case curOK && cur != active && byRel[active] == 0 && byRel[cur] > 0:
		e.note(fmt.Sprintf("state.db records %s as live, but `current` and %d running instance(s) say %s (an older copy of state.db?): %s is the live release again",
			active, byRel[cur], cur, cur))
		active = cur
	}
	if active == "" {
		return "", config.App{}
	}
	rec, err := e.store.Release(ctx, active)
	if err == nil && active == recorded {
		if app, derr := decodeAppConfig(rec.ConfigJSON); derr == nil {
			return active, app
		}
	}
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		e.stateFailed("read release "+active, err)
	}
	app := e.snapshotApp(active)
	e.rebuildReleases(ctx, active, app)
	return active, app
}

// snapshotApp returns the [app] configuration release id was deployed
// with, from its snapshot (snapshots/<id>.json); a release without one (prepared by an
// older cutover) runs with [app] of cutover.toml as it is now.
func (e *Engine) snapshotApp(id string) config.App {
	var app config.App
	err := e.rel.ReadSnapshot(id, &app)
	if err == nil {
		return app
	}
	cfg := e.Config()
	if fresh, lerr := e.loadConfig(); lerr == nil {
		cfg = fresh
	}
	app, _, serr := snapshotEnv(cfg.App)
	if serr != nil {
		app = cfg.App
	}
	e.note(fmt.Sprintf("release %s has no configuration snapshot (%v): it runs with [app] of %s as it is now", id, err, cfg.Path))
	return app
}

// rebuildReleases records the releases on disk that state.db lacks, from
// their metadata files, and makes active the live one. Releases older than
// active are recorded as retired (the newest of them is the rollback
// target), newer ones as prepared (never live).
func (e *Engine) rebuildReleases(ctx context.Context, active string, activeApp config.App) {
	known := map[string]state.Release{}
	recs, err := e.store.Releases(ctx)
	if err != nil {
		e.stateFailed("list releases", err)
		return
	}
	for _, r := range recs {
		known[r.ID] = r
	}
	ids, err := e.rel.List()
	if err != nil {
		e.log.Warn("list release directories", "err", err)
	}
	if !slices.Contains(ids, active) {
		ids = append(ids, active) // its directory is gone, its instances run
		slices.Sort(ids)
	}
	var rebuilt []string
	for _, id := range ids {
		if _, ok := known[id]; ok {
			continue
		}
		dir := e.rel.Dir(id)
		var rm ReleaseMeta
		if err := release.ReadMeta(dir, &rm); err != nil {
			e.log.Warn("release without metadata", "release", id, "err", err)
		}
		created := rm.CreatedAt
		if created.IsZero() {
			created = time.Now()
			if fi, err := os.Stat(dir); err == nil {
				created = fi.ModTime()
			}
		}
		app := activeApp
		if id != active {
			// Decoded into a zero App: into a copy of activeApp, the
			// JSON would be merged into activeApp's Env map, which the
			// copy shares, and the live release would get this one's
			// environment.
			var snap config.App
			if err := e.rel.ReadSnapshot(id, &snap); err == nil {
				app = snap
			}
		}
		rec := state.Release{ID: id, CreatedAt: created, Source: describeSource(rm.Meta), Dir: dir,
			Status: state.ReleasePrepared, ConfigJSON: appConfigJSON(app)}
		if id < active {
			rec.Status, rec.RetiredAt = state.ReleaseRetired, created
		}
		if err := e.store.PutRelease(ctx, rec); err != nil {
			e.stateFailed("record release "+id, err)
			return
		}
		rebuilt = append(rebuilt, id+" ("+string(rec.Status)+")")
	}
	if len(rebuilt) > 0 {
		e.note(fmt.Sprintf("state.db lacked %d release(s), rebuilt from releases/: %s", len(rebuilt), strings.Join(rebuilt, ", ")))
	}
	if rec, ok := known[active]; ok && rec.Status == state.ReleaseLive {
		if cur, err := e.store.Active(ctx); err == nil && cur == active {
			return
		}
	}
	if err := e.store.SetActive(ctx, active, time.Now()); err != nil {
		e.stateFailed("record "+active+" as live", err)
	}
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
