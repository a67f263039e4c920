package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"modernc.org/sqlite"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/migrate"
	"github.com/cutover/cutover/internal/state"
)

// run is the body of a deploy: it records it, runs it, records the
// outcome, and returns the release live afterwards.
func (r *Run) run(ctx context.Context) (string, error) {
	e := r.e
	if err := r.step(StepLock, func() (string, error) {
		id, err := e.store.BeginDeploy(ctx, state.Deploy{Kind: r.kind, FromRelease: r.from, StartedAt: time.Now()})
		if err != nil {
			return "", err
		}
		r.id = id
		e.mu.Lock()
		e.progress.DeployID = id
		e.mu.Unlock()
		r.ctl.mu.Lock()
		r.ctl.deployID = id
		r.ctl.mu.Unlock()
		return fmt.Sprintf("deploy #%d", id), nil
	}); err != nil {
		return "", err
	}
	live, err := r.execute(ctx)
	if err != nil && diskFull(err) {
		err = fmt.Errorf("%w (the disk of %s is full: free space there, e.g. with `cutover releases prune`, then deploy again)", err, e.Config().DataDir)
	}
	outcome, errText := state.DeploySucceeded, ""
	switch {
	case err == nil:
	case errors.Is(err, errRolledBack):
		outcome, errText = state.DeployRolledBack, err.Error()
	case errors.Is(err, ErrAborted):
		outcome, errText = state.DeployAborted, err.Error()
	default:
		outcome, errText = state.DeployFailed, err.Error()
	}
	if ferr := e.store.FinishDeploy(context.WithoutCancel(ctx), r.id, outcome, errText, time.Now()); ferr != nil {
		e.log.Error("record deploy outcome", "deploy", r.id, "err", ferr)
	}
	return live, err
}

// errRolledBack marks an abort after traffic had moved; it wraps ErrAborted.
var errRolledBack error = sentinel{"rolled back", ErrAborted}

// sentinel is an error with its own text that still matches what it wraps.
type sentinel struct {
	msg string
	err error
}

func (s sentinel) Error() string { return s.msg }
func (s sentinel) Unwrap() error { return s.err }

func (r *Run) execute(ctx context.Context) (string, error) {
	e, req := r.e, r.req
	newID, err := r.prepare(ctx)
	if err != nil {
		return r.from, err
	}
	r.release = newID
	e.mu.Lock()
	e.progress.Release = newID
	e.mu.Unlock()
	strategy := r.cfg.Deploy.Strategy
	// A held switch (held.go) replaces boot, preview, hook and shift: for a
	// stop-first app, and after a failed held switch, whose refusal only a
	// held switch to a release that serves may end (the old release's
	// instances were stopped).
	held := r.held() || e.px.Holding()
	if req.Rollback && !held {
		strategy = "bluegreen" // going back is one switch: no canary of known code
	}
	r.ctl.mu.Lock()
	r.ctl.release, r.ctl.strategy = newID, strategy
	r.ctl.mu.Unlock()
	if err := e.store.SetDeployRelease(ctx, r.id, newID); err != nil {
		return r.from, err
	}
	failRelease := func() {
		r.stop("the deploy of " + newID + " failed")
		if req.Rollback {
			return
		}
		if serr := e.store.SetReleaseStatus(context.WithoutCancel(ctx), newID, state.ReleaseFailed); serr != nil {
			e.log.Error("record failed release", "release", newID, "err", serr)
		}
	}

	// check + expand: the release's migrations, linted, then the expand
	// ones applied before any new instance starts.
	var mig *migrations
	if !req.Rollback {
		if err := r.step(StepCheck, func() (string, error) {
			m, err := loadMigrations(r.cfg.Database, e.rel.Dir(newID), newID)
			if err != nil || m == nil {
				return "no migrations", err
			}
			mig = m
			return m.lint(r, req.Hold || r.cfg.Deploy.Breaking == "hold" || held)
		}); err != nil {
			failRelease()
			return r.from, err
		}
		needHold, err := r.previewSchema(ctx, mig, newID)
		if err != nil {
			failRelease()
			return r.from, err
		}
		r.holdDB = needHold || req.Hold || r.lintBlocked
		if held || r.holdDB {
			// The database changes run inside the held switch, once
			// nothing reaches the old release.
			if mig != nil || r.cfg.Database.MigrateCommand != "" {
				r.during = r.databaseChanges(mig, newID)
			}
		} else {
			if mig != nil {
				if err := r.step(StepExpand, func() (string, error) { return mig.up(ctx, r, migrate.Expand) }); err != nil {
					failRelease()
					return r.from, err
				}
			}
			if err := r.migrateCommand(ctx, newID); err != nil {
				failRelease()
				return r.from, err
			}
		}
	}
	held = held || req.Hold || r.holdDB

	// boot: everything at once, except a rolling deploy without preview,
	// which boots batch by batch as it shifts.
	if !held && (strategy != "rolling" || req.Preview) {
		if err := r.step(StepBoot, func() (string, error) {
			ms, err := e.boot(ctx, r, newID, r.app, r.app.Instances, 1, r.aborting())
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d instance(s) healthy", len(ms)), nil
		}); err != nil {
			failRelease()
			return r.from, err
		}
	}
	abortNew := func(reason error) (string, error) {
		r.stop(reason.Error())
		r.step(StepDrain, func() (string, error) { //nolint:errcheck // reported as a step
			return r.retire(ctx, newID)
		})
		failRelease()
		return r.from, reason
	}

	if req.Preview && !held {
		if err := r.step(StepPreview, func() (string, error) { return r.preview(ctx, newID) }); err != nil {
			return abortNew(err)
		}
	}

	if hook := r.cfg.Deploy.BeforeSwitch; hook != "" && !held {
		if err := r.step(StepHook, func() (string, error) {
			// The operator's abort stops the hook at once: nothing has
			// switched yet.
			hctx, stop := r.abortable(ctx)
			defer stop()
			detail, err := r.hook(hctx, "before_switch", hook, newID)
			if err != nil && r.aborted() {
				return "", fmt.Errorf("%w during the before_switch hook, which was stopped; nothing switched", errOperatorAbort)
			}
			return detail, err
		}); err != nil {
			if errors.Is(err, ErrAborted) {
				return abortNew(err)
			}
			return abortNew(fmt.Errorf("before_switch hook failed, nothing switched: %w", err))
		}
	}

	// shift
	var shiftErr error
	switch {
	case held:
		shiftErr = r.heldShift(ctx, newID, r.held(), r.releasePhase())
	case strategy == "rolling":
		shiftErr = r.rolling(ctx, newID)
	case strategy == "canary":
		shiftErr = r.canary(ctx, newID)
	default:
		shiftErr = r.step(StepSwitch, func() (string, error) { return r.switchTo(ctx, newID) })
	}
	if shiftErr != nil {
		if errors.Is(shiftErr, ErrAborted) {
			return abortNew(shiftErr)
		}
		if errors.Is(shiftErr, errNotSwitched) && strategy != "rolling" {
			// The old release still runs in full: all traffic back on it
			// (a canary's weights), as state.db says.
			if r.from != "" {
				e.px.SetActive(r.from)
			}
			return abortNew(fmt.Errorf("%w; %s keeps serving", shiftErr, orNone(r.from)))
		}
		if len(e.instancesOf(newID, false)) == 0 {
			// Nothing of the new release runs (a rolling deploy's first
			// batch did not boot): a plain failed release.
			failRelease()
			return r.from, shiftErr
		}
		// A failure to record a rolling deploy's switch, whose old
		// instances are gone already: the new release serves; leave it
		// running for the operator.
		if errors.Is(shiftErr, errNotSwitched) {
			shiftErr = fmt.Errorf("%w; %s's instances carry all the traffic, but state.db still names %s live: deploy again once state.db can be written", shiftErr, newID, orNone(r.from))
		}
		return e.activeRelease(), shiftErr
	}

	if hook := r.cfg.Deploy.AfterSwitch; hook != "" {
		if err := r.step(StepHook, func() (string, error) { return r.hook(ctx, "after_switch", hook, newID) }); err != nil {
			r.info("after_switch hook failed (the deploy goes on): %v", err)
		}
	}

	// The watch needs a release to go back to: none on a first deploy, and
	// none after a held breaking schema change, which the old release
	// cannot run on. Rollbacks are watched as deploys are.
	if w := r.cfg.Deploy.Watch.Duration; w > 0 && r.holdDB && r.during != nil && !r.dbSafe && r.from != "" {
		r.info("no watch: %s cannot run on the changed schema, so there is nothing to go back to", r.from)
	} else if w > 0 && r.from != "" {
		if err := r.step(StepWatch, func() (string, error) { return r.watch(ctx, newID, w) }); err != nil {
			if errors.Is(err, ErrAborted) {
				return abortNew(err)
			}
			return newID, err
		}
	}

	// drain and stop everything that is not the new release.
	drainErr := r.step(StepDrain, func() (string, error) {
		return r.retireAllBut(ctx, newID)
	})
	if drainErr != nil {
		r.info("the old release could not be stopped cleanly: %v", drainErr)
	}

	contract := mig != nil || r.cfg.Database.ContractCommand != "" && !req.Rollback
	if contract && drainErr != nil {
		r.info("contract migrations not run: an instance of the old release may still be running")
	} else if contract {
		if err := r.step(StepContract, func() (string, error) {
			var pending []*migrate.Migration
			if mig != nil {
				var err error
				if pending, err = mig.pending(ctx, migrate.Contract); err != nil {
					return "", err
				}
			}
			cmd := r.cfg.Database.ContractCommand
			if r.cfg.Database.Contract != "auto" {
				switch {
				case len(pending) > 0 && cmd != "":
					return fmt.Sprintf("%d contract migration(s) and database.contract_command pending (database.contract = \"manual\"); run `cutover migrate contract` once you are sure no old code runs", len(pending)), nil
				case cmd != "":
					return "database.contract_command pending (database.contract = \"manual\"); run `cutover migrate contract` once you are sure no old code runs", nil
				case len(pending) > 0:
					return fmt.Sprintf("%d contract migration(s) pending (database.contract = \"manual\"); run `cutover migrate contract` once you are sure no old code runs", len(pending)), nil
				}
				return "no pending contract migrations", nil
			}
			var notes []string
			if mig != nil {
				detail, err := mig.up(ctx, r, migrate.Contract)
				if err != nil {
					return "", err
				}
				notes = append(notes, detail)
			}
			if cmd != "" {
				detail, err := r.contractCommand(ctx, newID)
				if err != nil {
					return "", err
				}
				notes = append(notes, detail)
			}
			return strings.Join(notes, "; "), nil
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
		e.recordSchema(ctx, r.cfg, newID)
		removed, err := e.prune(ctx, newID, r.cfg.Release.Keep)
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

// errNotSwitched marks a switch that could not be recorded, and so did not
// happen: traffic stayed where it was.
var errNotSwitched = errors.New("nothing switched")

// switchTo records that release is live, then moves all traffic to it at
// once. Recorded first: a switch state.db cannot record (a full disk) does
// not happen, and a daemon killed between the two comes back serving what
// is recorded, as the proxy would have.
func (r *Run) switchTo(ctx context.Context, release string) (string, error) {
	e := r.e
	if err := e.store.SetActive(context.WithoutCancel(ctx), release, time.Now()); err != nil {
		return "", fmt.Errorf("record the switch to %s: %w (%w)", release, err, errNotSwitched)
	}
	e.px.SetActive(release)
	r.setSwitched()
	if r.from == "" {
		return "traffic → " + release, nil
	}
	return fmt.Sprintf("traffic %s → %s", r.from, release), nil
}

// activeRelease returns the release recorded as live.
func (e *Engine) activeRelease() string {
	a, err := e.store.Active(e.ctx)
	if err != nil {
		e.log.Error("read live release", "err", err)
	}
	return a
}

// boot starts count new instances of release, numbered from first, and
// waits until each is healthy. On failure they are all stopped and their
// log tails emitted. A close of abort (the operator's abort; nil for none)
// stops them at once.
func (e *Engine) boot(ctx context.Context, r *Run, releaseID string, app config.App, count, first int, abort <-chan struct{}) ([]managed, error) {
	var ms []managed
	fail := func(err error) ([]managed, error) {
		for _, m := range ms {
			lines := m.LogTail(20)
			if len(lines) > 0 {
				r.event(Event{Type: "log", Instance: m.ID(), Lines: lines,
					Message: fmt.Sprintf("last %d log lines of %s", len(lines), m.ID())})
			}
		}
		if serr := e.stopInstances(context.WithoutCancel(ctx), ms); serr != nil {
			e.log.Error("stop failed instances", "release", releaseID, "err", serr)
		}
		return nil, err
	}
	for n := first; n < first+count; n++ {
		m, err := e.fleet.Start(app, releaseID, n)
		if err != nil {
			return fail(err)
		}
		ms = append(ms, m)
	}
	// Every instance is watched at once, so that a crash of any of them
	// ends the boot as soon as it is reported, whichever one the boot
	// would otherwise be waiting for.
	done := make(chan struct{})
	defer close(done)
	readyc := make(chan managed, len(ms))
	crashc := make(chan bootCrash, len(ms))
	for _, m := range ms {
		ready := m.Ready()
		go func() {
			select {
			case <-ready:
				readyc <- m
			case <-done:
			}
		}()
		go func() {
			select {
			case exit := <-m.Crashed():
				crashc <- bootCrash{r, m, exit}
			case <-done:
			}
		}()
	}
	bootStart := time.Now()
	deadline := time.NewTimer(app.Health.BootTimeout.Duration)
	defer deadline.Stop()
	report := time.NewTicker(e.bootReportEvery)
	defer report.Stop()
	healthy := map[managed]bool{}
	for len(healthy) < len(ms) {
		select {
		case <-report.C:
			for _, m := range ms {
				if !healthy[m] {
					r.event(Event{Type: "waiting", Step: StepBoot, Instance: m.ID(), Message: fmt.Sprintf("instance %s: %s (%s of boot_timeout %s)",
						m.ID(), m.BootState(), time.Since(bootStart).Round(time.Second), app.Health.BootTimeout.Duration)})
				}
			}
		case m := <-readyc:
			healthy[m] = true
		case c := <-crashc:
			return fail(bootCrash{r, c.m, c.exit}.err())
		case <-deadline.C:
			var m managed
			for _, m = range ms {
				if !healthy[m] {
					break
				}
			}
			why := "no health check passed"
			if err := m.LastCheckError(); err != nil {
				why = "last health check: " + err.Error()
			}
			return fail(fmt.Errorf("instance %s not healthy after boot_timeout %s (%s)%s",
				m.ID(), app.Health.BootTimeout.Duration, why, untouched(r)))
		case <-abort:
			return fail(fmt.Errorf("%w during boot: the booting instances of %s were stopped; %s kept serving", errOperatorAbort, releaseID, orNone(r.from)))
		case <-ctx.Done():
			return fail(fmt.Errorf("boot interrupted: %w", ctx.Err()))
		}
	}
	// The select above picks at random among what is ready at once, and a
	// crash reported while waiting for another instance may still be on
	// its way: the supervisor's restart count is what decides. A crash is
	// counted before its instance restarts, so before any health check of
	// the restarted process can pass.
	for _, m := range ms {
		if restarts, lastExit := m.Restarts(); restarts > 0 {
			return fail(bootCrash{r, m, fmt.Sprintf("%s; %d crash(es) before it turned healthy", lastExit, restarts)}.err())
		}
	}
	return ms, nil
}

// untouched says that the live release was not touched by a failed boot,
// except in a held switch, where it was held (and maybe stopped).
func untouched(r *Run) string {
	if r != nil && r.inHold {
		return ""
	}
	return "; the live release was not touched"
}

// bootCrash is an instance that exited while its release booted.
type bootCrash struct {
	r    *Run
	m    managed
	exit string // the supervisor's description of the exit
}

func (c bootCrash) err() error {
	return fmt.Errorf("instance %s exited during boot (%s)%s", c.m.ID(), c.exit, untouched(c.r))
}

// retire drains one release and stops its instances.
func (r *Run) retire(ctx context.Context, release string) (string, error) {
	e, cfg := r.e, r.config()
	ms := e.instancesOf(release, false)
	if len(ms) == 0 {
		return "nothing to drain", nil
	}
	rs, err := e.drain(ctx, ms, drainHow{timeout: cfg.Proxy.DrainTimeout.Duration, pace: cfg.Proxy.DrainPace.Duration})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: %d in flight finished, %d cut; %d instance(s) stopped", release, rs[0].Finished, rs[0].Cut, len(ms)), nil
}

// retireAllBut drains every release other than keep and stops its
// instances.
func (r *Run) retireAllBut(ctx context.Context, keep string) (string, error) {
	e, cfg := r.e, r.config()
	old := e.instancesOf(keep, true)
	if len(old) == 0 {
		return "nothing to drain", nil
	}
	rs, err := e.drain(ctx, old, drainHow{timeout: cfg.Proxy.DrainTimeout.Duration, pace: cfg.Proxy.DrainPace.Duration})
	var notes []string
	for _, r := range rs {
		notes = append(notes, fmt.Sprintf("%s: %d in flight finished, %d cut at drain_timeout", r.release, r.Finished, r.Cut))
	}
	if err != nil {
		return strings.Join(notes, "; "), err
	}
	return fmt.Sprintf("%s; %d instance(s) stopped", strings.Join(notes, "; "), len(old)), nil
}

// rollbackTarget picks the release to roll back to and the app config it
// ran with.
func (e *Engine) rollbackTarget(ctx context.Context, want, active string) (state.Release, config.App, error) {
	var app config.App
	var none state.Release
	var target *state.Release
	if want != "" {
		rels, err := e.store.Releases(ctx)
		if err != nil {
			return none, app, err
		}
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
		prev, err := e.store.LastRetired(ctx)
		if errors.Is(err, state.ErrNotFound) {
			return none, app, &RefusedError{Reason: "no previous release to roll back to; see `cutover releases`"}
		}
		if err != nil {
			return none, app, err
		}
		target = &prev
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
	app, err := decodeAppConfig(target.ConfigJSON)
	if err != nil {
		return none, app, fmt.Errorf("release %s: %w", target.ID, err)
	}
	return *target, app, nil
}

// prune applies retention (release.keep: keep), never touching the live
// release or the rollback target; releases that never went live go first
// (see release.Manager.Prune).
func (e *Engine) prune(ctx context.Context, live string, keep int) ([]string, error) {
	protect := []string{live}
	switch prev, err := e.store.LastRetired(ctx); {
	case err == nil:
		protect = append(protect, prev.ID)
	case !errors.Is(err, state.ErrNotFound):
		return nil, err
	}
	for _, m := range e.instancesOf("", true) {
		protect = append(protect, m.Release())
	}
	first, err := neverLive(ctx, e.store)
	if err != nil {
		return nil, err
	}
	removed, err := e.rel.Prune(keep, first, protect...)
	defer e.fleet.TrimLogs()
	for _, id := range removed {
		if serr := e.store.SetReleaseStatus(ctx, id, state.ReleasePruned); serr != nil && !errors.Is(serr, state.ErrNotFound) {
			e.log.Error("record pruned release", "release", id, "err", serr)
		}
	}
	return removed, err
}

// diskFull reports whether err comes of a full disk: a write that failed
// with ENOSPC, or SQLite's SQLITE_FULL (13) from state.db.
func diskFull(err error) bool {
	var se *sqlite.Error
	return errors.Is(err, syscall.ENOSPC) || errors.As(err, &se) && se.Code()&0xff == 13
}
