package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/migrate"
	"github.com/cutover/cutover/internal/state"
)

// Request asks for a deploy or a rollback.
type Request struct {
	// Source is the release to ship: an absolute path to a directory or a
	// .tar.gz. Empty for a rollback.
	Source string
	// Rollback makes this a rollback to Release (empty: the previous one).
	Rollback bool
	Release  string
	// Force skips refusals that protect the app (rollback across contract
	// migrations).
	Force bool
}

// run is one deploy in progress.
type run struct {
	e       *Engine
	id      int64
	emit    Emitter
	kind    string
	release string
	from    string
	app     config.App
	cfg     *config.Config
}

func (r *run) event(ev Event) {
	ev.Time = time.Now()
	if r.emit != nil {
		r.emit(ev)
	}
}

func (r *run) info(format string, args ...any) {
	r.event(Event{Type: "info", Message: fmt.Sprintf(format, args...)})
}

// step runs fn as a named step: it emits start and end events and records
// the step in state.
func (r *run) step(name string, fn func() (string, error)) error {
	r.e.setStep(name)
	start := time.Now()
	r.event(Event{Type: "step", Step: name, Status: "start"})
	detail, err := fn()
	status := "ok"
	if err != nil {
		status = "failed"
		detail = err.Error()
	}
	dur := time.Since(start)
	r.event(Event{Type: "step", Step: name, Status: status, DurationMS: float64(dur.Microseconds()) / 1000, Message: detail})
	if r.id != 0 {
		if serr := r.e.store.AddStep(r.e.ctx, r.id, state.Step{Name: name, Status: status, StartedAt: start, FinishedAt: start.Add(dur), Detail: detail}); serr != nil {
			r.e.log.Error("record step", "step", name, "err", serr)
		}
	}
	return err
}

// Deploy runs a deploy or rollback to its end, emitting step events as it
// goes, and returns the release that is live afterwards. The caller emits
// the result: by the time Deploy returns, the deploy lock is free, so a
// client that starts the next deploy on seeing the result is not refused. It returns *BusyError
// when another deploy runs, *config.Error when the config file is broken,
// *RefusedError when the request is refused; other errors mean the deploy
// failed and the previous release kept serving.
func (e *Engine) Deploy(req Request, emit Emitter) (string, error) {
	if !e.deployMu.TryLock() {
		p := e.Progress()
		if p == nil {
			p = &Progress{Kind: "deploy", Step: "finishing", StartedAt: time.Now()}
		}
		return "", &BusyError{Running: *p}
	}
	defer e.deployMu.Unlock()
	ctx := e.ctx

	kind := "deploy"
	if req.Rollback {
		kind = "rollback"
	}
	active, err := e.store.Active(ctx)
	if err != nil {
		return "", err
	}
	r := &run{e: e, emit: emit, kind: kind, from: active}

	e.mu.Lock()
	e.progress = &Progress{Kind: kind, From: active, Step: StepLock, StartedAt: time.Now()}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.progress = nil
		e.mu.Unlock()
	}()

	// lock: we hold it; record the deploy.
	if err := r.step(StepLock, func() (string, error) {
		id, err := e.store.BeginDeploy(ctx, state.Deploy{Kind: kind, FromRelease: active, StartedAt: time.Now()})
		if err != nil {
			return "", err
		}
		r.id = id
		e.mu.Lock()
		e.progress.DeployID = id
		e.mu.Unlock()
		return fmt.Sprintf("deploy #%d", id), nil
	}); err != nil {
		return "", err
	}

	newID, err := r.execute(ctx, req)
	finishState, errText := state.DeploySucceeded, ""
	if err != nil {
		finishState, errText = state.DeployFailed, err.Error()
	}
	if ferr := e.store.FinishDeploy(context.WithoutCancel(ctx), r.id, finishState, errText, time.Now()); ferr != nil {
		e.log.Error("record deploy outcome", "deploy", r.id, "err", ferr)
	}
	return newID, err
}

func (r *run) execute(ctx context.Context, req Request) (string, error) {
	e := r.e
	var newID string
	if req.Rollback {
		var target state.Release
		if err := r.step(StepPrepare, func() (string, error) {
			t, app, err := e.rollbackTarget(ctx, req.Release, r.from)
			if err != nil {
				return "", err
			}
			target, newID, r.app = t, t.ID, app
			return "rolling back to " + newID + " with the configuration it ran with", nil
		}); err != nil {
			return "", err
		}
		if err := r.step(StepCheck, func() (string, error) {
			return e.contractGuard(ctx, target, req.Force)
		}); err != nil {
			return "", err
		}
	} else {
		if err := r.step(StepPrepare, func() (string, error) {
			cfg, err := config.Load(e.Config().Path)
			if err != nil {
				return "", err
			}
			r.cfg, r.app = cfg, cfg.App
			id, err := e.rel.Prepare(req.Source)
			if err != nil {
				return "", err
			}
			newID = id
			rec := state.Release{ID: id, CreatedAt: time.Now(), Source: req.Source, Dir: e.rel.Dir(id),
				Status: state.ReleasePrepared, ConfigJSON: appConfigJSON(cfg.App)}
			if err := e.store.PutRelease(ctx, rec); err != nil {
				return "", err
			}
			return fmt.Sprintf("release %s from %s", id, req.Source), nil
		}); err != nil {
			return "", err
		}
	}
	r.release = newID
	e.mu.Lock()
	e.progress.Release = newID
	e.mu.Unlock()
	if err := e.store.SetDeployRelease(ctx, r.id, newID); err != nil {
		return "", err
	}

	// check + expand: the release's migrations, linted, then the expand
	// ones applied before any new instance starts.
	var mig *migrations
	if !req.Rollback {
		failRelease := func() {
			if serr := e.store.SetReleaseStatus(context.WithoutCancel(ctx), newID, state.ReleaseFailed); serr != nil {
				e.log.Error("record failed release", "release", newID, "err", serr)
			}
		}
		if err := r.step(StepCheck, func() (string, error) {
			m, err := loadMigrations(r.cfg.Database, e.rel.Dir(newID), newID)
			if err != nil {
				return "", err
			}
			if m == nil {
				return "no migrations", nil
			}
			mig = m
			return m.lint(r)
		}); err != nil {
			failRelease()
			return "", err
		}
		if mig != nil {
			if err := r.step(StepExpand, func() (string, error) { return mig.up(ctx, r, migrate.Expand) }); err != nil {
				failRelease()
				return "", err
			}
		}
	}

	// boot
	var booted []*managed
	if err := r.step(StepBoot, func() (string, error) {
		ms, err := e.boot(ctx, r, newID, r.app)
		if err != nil {
			return "", err
		}
		booted = ms
		return fmt.Sprintf("%d instance(s) healthy", len(ms)), nil
	}); err != nil {
		if !req.Rollback {
			if serr := e.store.SetReleaseStatus(context.WithoutCancel(ctx), newID, state.ReleaseFailed); serr != nil {
				e.log.Error("record failed release", "release", newID, "err", serr)
			}
		}
		return "", err
	}

	// switch
	if err := r.step(StepSwitch, func() (string, error) {
		e.px.SetActive(newID)
		if err := e.store.SetActive(context.WithoutCancel(ctx), newID, time.Now()); err != nil {
			return "", err
		}
		if r.from == "" {
			return "traffic → " + newID, nil
		}
		return fmt.Sprintf("traffic %s → %s", r.from, newID), nil
	}); err != nil {
		// The proxy already sends traffic to the new release and it is
		// healthy; the old one is left running for the next deploy's
		// recovery to sort out.
		return "", err
	}
	_ = booted

	// drain and stop everything that is not the new release.
	drainErr := r.step(StepDrain, func() (string, error) {
		return e.retireAllBut(ctx, newID)
	})
	if drainErr != nil {
		r.info("the old release could not be stopped cleanly: %v", drainErr)
	}

	if mig != nil && drainErr != nil {
		r.info("contract migrations not run: an instance of the old release may still be running")
	} else if mig != nil {
		if err := r.step(StepContract, func() (string, error) {
			if r.cfg.Database.Contract == "auto" {
				return mig.up(ctx, r, migrate.Contract)
			}
			pending, err := mig.pendingContract(ctx)
			if err != nil {
				return "", err
			}
			if len(pending) == 0 {
				return "no pending contract migrations", nil
			}
			return fmt.Sprintf("%d contract migration(s) pending (database.contract = \"manual\"); run `cutover migrate contract` once you are sure no old code runs", len(pending)), nil
		}); err != nil {
			// The new release serves; the schema keeps what the old one
			// needed, which is safe. Report and go on.
			r.info("contract migrations failed; the new release keeps serving and the old schema parts stay: %v", err)
		}
	}

	if err := r.step(StepFinish, func() (string, error) {
		if err := e.rel.SetCurrent(newID); err != nil {
			return "", err
		}
		removed, err := e.prune(ctx, newID)
		if err != nil {
			return "", err
		}
		if len(removed) > 0 {
			return fmt.Sprintf("current → %s; pruned %s", newID, strings.Join(removed, ", ")), nil
		}
		return "current → " + newID, nil
	}); err != nil {
		return newID, err
	}
	return newID, nil
}

// boot starts app.Instances new instances of release and waits until each
// is healthy. On failure they are all stopped and their log tails emitted.
func (e *Engine) boot(ctx context.Context, r *run, releaseID string, app config.App) ([]*managed, error) {
	var ms []*managed
	fail := func(err error) ([]*managed, error) {
		for _, m := range ms {
			lines := TailFile(m.logPath(e), 20)
			if len(lines) > 0 {
				r.event(Event{Type: "log", Instance: m.id, Lines: lines,
					Message: fmt.Sprintf("last %d log lines of %s", len(lines), m.id)})
			}
		}
		if serr := e.stopInstances(context.WithoutCancel(ctx), ms); serr != nil {
			e.log.Error("stop failed instances", "release", releaseID, "err", serr)
		}
		return nil, err
	}
	for n := 1; n <= app.Instances; n++ {
		m, err := e.startInstance(e.spec(app, releaseID, n, 0), app)
		if err != nil {
			return fail(err)
		}
		ms = append(ms, m)
	}
	deadline := time.NewTimer(app.Health.BootTimeout.Duration)
	defer deadline.Stop()
	for _, m := range ms {
		select {
		case <-m.ready():
		case exit := <-m.crashed:
			return fail(fmt.Errorf("instance %s exited during boot (%s); the live release was not touched", m.id, exit))
		case <-deadline.C:
			why := "no health check passed"
			m.mu.Lock()
			if m.checker != nil && m.checker.LastError() != nil {
				why = "last health check: " + m.checker.LastError().Error()
			}
			m.mu.Unlock()
			return fail(fmt.Errorf("instance %s not healthy after boot_timeout %s (%s); the live release was not touched",
				m.id, app.Health.BootTimeout.Duration, why))
		case <-ctx.Done():
			return fail(fmt.Errorf("boot interrupted: %w", ctx.Err()))
		}
	}
	return ms, nil
}

func (m *managed) logPath(e *Engine) string {
	return filepath.Join(e.Config().LogsDir(), m.release, m.id+".log")
}

// retireAllBut drains every release other than keep and stops its
// instances.
func (e *Engine) retireAllBut(ctx context.Context, keep string) (string, error) {
	old := e.instancesOf(keep, true)
	if len(old) == 0 {
		return "nothing to drain", nil
	}
	releases := map[string]bool{}
	for _, m := range old {
		releases[m.release] = true
	}
	drainTimeout := e.Config().Proxy.DrainTimeout.Duration
	var notes []string
	for rel := range releases {
		dctx, cancel := context.WithTimeout(ctx, drainTimeout)
		res := e.px.Drain(dctx, rel)
		cancel()
		notes = append(notes, fmt.Sprintf("%s: %d in flight finished, %d cut at drain_timeout", rel, res.Finished, res.Cut))
	}
	if err := e.stopInstances(ctx, old); err != nil {
		return strings.Join(notes, "; "), err
	}
	sort.Strings(notes)
	return fmt.Sprintf("%s; %d instance(s) stopped", strings.Join(notes, "; "), len(old)), nil
}

// rollbackTarget picks the release to roll back to and the app config it
// ran with.
func (e *Engine) rollbackTarget(ctx context.Context, want, active string) (state.Release, config.App, error) {
	var app config.App
	var none state.Release
	rels, err := e.store.Releases(ctx)
	if err != nil {
		return none, app, err
	}
	var target *state.Release
	if want != "" {
		for i := range rels {
			if rels[i].ID == want || strings.HasSuffix(rels[i].ID, "-"+want) {
				if target != nil && target.ID != rels[i].ID {
					return none, app, &RefusedError{Reason: fmt.Sprintf("%q matches several releases (%s, %s); give the full id", want, target.ID, rels[i].ID)}
				}
				target = &rels[i]
			}
		}
		if target == nil {
			return none, app, &RefusedError{Reason: fmt.Sprintf("no release %q; see `cutover releases`", want)}
		}
	} else {
		// The previous release: the one retired most recently.
		for i := range rels {
			if rels[i].Status == state.ReleaseRetired && (target == nil || rels[i].RetiredAt.After(target.RetiredAt)) {
				target = &rels[i]
			}
		}
		if target == nil {
			return none, app, &RefusedError{Reason: "no previous release to roll back to; see `cutover releases`"}
		}
	}
	if target.ID == active {
		return none, app, &RefusedError{Reason: fmt.Sprintf("release %s is already live", target.ID)}
	}
	if target.Status == state.ReleaseFailed || target.Status == state.ReleasePrepared {
		return none, app, &RefusedError{Reason: fmt.Sprintf("release %s never went live (%s); deploy it instead", target.ID, target.Status)}
	}
	if _, err := os.Stat(e.rel.Dir(target.ID)); err != nil {
		return none, app, &RefusedError{Reason: fmt.Sprintf("release %s is no longer on disk (pruned); deploy it again from its source %s", target.ID, target.Source)}
	}
	app, err = decodeAppConfig(target.ConfigJSON)
	if err != nil {
		return none, app, fmt.Errorf("release %s: %w", target.ID, err)
	}
	return *target, app, nil
}

// prune applies retention, never touching the live release or the
// rollback target.
func (e *Engine) prune(ctx context.Context, live string) ([]string, error) {
	keep := e.Config().Release.Keep
	protect := []string{live}
	rels, err := e.store.Releases(ctx)
	if err != nil {
		return nil, err
	}
	var prev *state.Release
	for i := range rels {
		if rels[i].Status == state.ReleaseRetired && (prev == nil || rels[i].RetiredAt.After(prev.RetiredAt)) {
			prev = &rels[i]
		}
	}
	if prev != nil {
		protect = append(protect, prev.ID)
	}
	for _, m := range e.instancesOf("", true) {
		protect = append(protect, m.release)
	}
	removed, err := e.rel.Prune(keep, protect...)
	for _, id := range removed {
		if serr := e.store.SetReleaseStatus(ctx, id, state.ReleasePruned); serr != nil && !errors.Is(serr, state.ErrNotFound) {
			e.log.Error("record pruned release", "release", id, "err", serr)
		}
	}
	return removed, err
}
