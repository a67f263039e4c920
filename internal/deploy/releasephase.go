package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/migrate"
	"github.com/cutover/cutover/internal/release"
	"github.com/cutover/cutover/internal/schema"
	"github.com/cutover/cutover/internal/state"
)

// The database side of a deploy beyond cutover's own migration files:
//
//   - the release phase: [database] migrate_command, the app's own
//     migrations, run once per deploy before boot under the migration
//     lock, and contract_command once the old release is gone;
//   - the schema preview: before either (or cutover's own expand
//     migrations) touches the live database, they run on a scratch copy of
//     its schema, and the two schemas are diffed; a change that breaks the
//     live release is refused, or shipped held;
//   - the schema each release went live on, recorded, so that a rollback
//     onto a schema its code cannot read is refused.

// dbCommand runs one of the app's database commands (key names it:
// "migrate_command" or "contract_command") in the release directory with
// the app's environment and the database URL in [database] url_env,
// streaming its output as events of step. With lock, it runs under the
// migration lock (the same one cutover's own migrations take). A non-zero
// exit is an error carrying its last lines.
func (r *Run) dbCommand(ctx context.Context, step Step, key, command, url, releaseID string, lock bool) (string, error) {
	db := r.cfg.Database
	var tail []string
	var code int
	run := func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, db.CommandTimeout.Duration)
		defer cancel()
		actx, stop := r.abortable(cctx)
		defer stop()
		env := r.hookEnv(releaseID)
		if !lock {
			// The preview: a variable of the app's environment that holds
			// the live URL (the app may read its own, not url_env) points
			// at the scratch copy too.
			if live, err := db.ExpandedURL(); err == nil && live != url {
				for i, kv := range env {
					if k, v, ok := strings.Cut(kv, "="); ok && v == live {
						env[i] = k + "=" + url
					}
				}
			}
		}
		env = append(env, db.URLEnv+"="+url)
		var err error
		tail, code, err = release.RunShell(actx, key, r.e.rel.Dir(releaseID), env, command,
			func(stream, line string) {
				r.event(Event{Type: "output", Step: step, Instance: stream, Lines: []string{line}})
			}, r.e.trackCommand)
		switch {
		case err != nil && r.aborted():
			return fmt.Errorf("%w during database.%s, which was stopped", errOperatorAbort, key)
		case err != nil && cctx.Err() != nil && ctx.Err() == nil:
			return fmt.Errorf("database.%s %q did not finish within database.command_timeout (%s)", key, command, db.CommandTimeout.Duration)
		case err != nil:
			return fmt.Errorf("database.%s %q: %w", key, command, err)
		}
		return nil
	}
	start := time.Now()
	var err error
	if lock {
		var runner *migrate.Runner
		runner, err = migrate.Open(ctx, migrate.Options{
			URL: url, Table: db.Table, Format: db.Format,
			MigrateLockTimeout: db.MigrateLockTimeout.Duration, Release: releaseID,
		})
		if err != nil {
			return "", err
		}
		defer runner.Close()
		err = runner.Locked(ctx, func(ev migrate.Event) {
			if ev.Kind == migrate.EventLockWait {
				r.info("waiting for the migration lock, held by %s", ev.Holder)
			}
		}, run)
	} else {
		err = run(ctx)
	}
	if err != nil {
		return "", err
	}
	if code != 0 {
		if n := len(tail); n > 0 {
			r.event(Event{Type: "log", Step: step, Lines: tail, Message: fmt.Sprintf("last %d lines of database.%s", n, key)})
		}
		return "", fmt.Errorf("database.%s %q exited with status %d%s", key, command, code, lastLine(tail))
	}
	return fmt.Sprintf("database.%s ok in %s%s", key, time.Since(start).Round(time.Millisecond), lastLine(tail)), nil
}

// preview is what a schema preview found.
type preview struct {
	changes  []schema.Change
	breaking []schema.Change
	took     time.Duration // the migrations and migrate_command on the copy
}

// needsPreview reports whether a deploy's database changes are previewed:
// preview is on, a release is live (a first deploy breaks nothing), and
// there is something to run.
func (r *Run) needsPreview(mig *migrations, pendingExpand int) bool {
	db := r.cfg.Database
	return db.Preview == "on" && db.URL != "" && r.from != "" &&
		(db.MigrateCommand != "" || mig != nil && pendingExpand > 0)
}

// schemaPreview runs the pending expand migrations and migrate_command on
// a scratch copy of the live database and diffs its schema before and
// after. The live database is not touched.
func (r *Run) schemaPreview(ctx context.Context, mig *migrations, releaseID string) (preview, string, error) {
	db := r.cfg.Database
	url, err := db.ExpandedURL()
	if err != nil {
		return preview{}, "", err
	}
	tmp := filepath.Join(r.cfg.DataDir, "preview")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return preview{}, "", err
	}
	copyStart := time.Now()
	scratch, err := schema.NewScratch(ctx, url, schema.ScratchOptions{
		DataTables: append(append([]string(nil), db.PreviewData...), db.Table),
		TempDir:    tmp,
		Log:        func(s string) { r.info("%s", s) },
	})
	if err != nil {
		return preview{}, "", fmt.Errorf("schema preview: copy the live schema: %w (database.preview = \"off\" skips the preview)", err)
	}
	defer func() {
		if cerr := scratch.Close(context.WithoutCancel(ctx)); cerr != nil {
			r.e.log.Warn("drop the schema preview's scratch copy", "err", cerr)
		}
	}()
	before, err := schema.Snapshot(ctx, scratch.URL())
	if err != nil {
		return preview{}, "", fmt.Errorf("schema preview: read the copied schema: %w", err)
	}
	// The live schema, to check that the preview left it alone: a command
	// that does not take its URL from url_env would migrate the live
	// database while cutover believes it previews.
	live, err := schema.Snapshot(ctx, url)
	if err != nil {
		return preview{}, "", fmt.Errorf("schema preview: read the live schema: %w", err)
	}
	copied := time.Since(copyStart)
	runStart := time.Now()
	if mig != nil {
		m := *mig
		m.url = scratch.URL()
		runner, err := m.open(ctx)
		if err != nil {
			return preview{}, "", fmt.Errorf("schema preview: %w", err)
		}
		_, err = runner.Up(ctx, m.set, migrate.Expand, nil)
		runner.Close()
		if err != nil {
			return preview{}, "", fmt.Errorf("schema preview: on the scratch copy, %w; nothing touched the live database", err)
		}
	}
	if db.MigrateCommand != "" {
		if _, err := r.dbCommand(ctx, StepSchema, "migrate_command", db.MigrateCommand, scratch.URL(), releaseID, false); err != nil {
			return preview{}, "", fmt.Errorf("schema preview: on the scratch copy, %w; nothing touched the live database. "+
				"If it failed re-applying a migration the live database already has (\"already exists\"), the copy lacks the rows of its version table: name that table in database.preview_data", err)
		}
	}
	took := time.Since(runStart)
	if liveAfter, err := schema.Snapshot(ctx, url); err != nil {
		return preview{}, "", fmt.Errorf("schema preview: read the live schema: %w", err)
	} else if cs := schema.Diff(live, liveAfter); len(cs) > 0 {
		lines := make([]string, len(cs))
		for i, c := range cs {
			lines[i] = c.String()
		}
		r.event(Event{Type: "log", Step: StepSchema, Lines: lines, Message: "the live schema changed during the preview"})
		return preview{}, "", fmt.Errorf("schema preview: the LIVE database's schema changed while the migrations ran on the scratch copy (%d change(s), listed above): database.migrate_command does not take its database URL from $%s — set database.url_env to the variable the app reads — or something else changed the live database meanwhile. Nothing more runs; check the live release",
			len(cs), db.URLEnv)
	}
	after, err := schema.Snapshot(ctx, scratch.URL())
	if err != nil {
		return preview{}, "", fmt.Errorf("schema preview: read the migrated schema: %w", err)
	}
	p := preview{changes: schema.Diff(before, after), took: took}
	p.breaking = schema.Breaking(p.changes)
	if len(p.changes) > 0 {
		lines := make([]string, len(p.changes))
		for i, c := range p.changes {
			lines[i] = c.String()
		}
		r.event(Event{Type: "log", Step: StepSchema, Lines: lines, Message: fmt.Sprintf("schema preview: %d change(s), %d breaking the live release %s", len(p.changes), len(p.breaking), r.from)})
	}
	detail := fmt.Sprintf("%d change(s), %d additive, %d breaking (copy %s, migrations %s)",
		len(p.changes), len(p.changes)-len(p.breaking), len(p.breaking), copied.Round(time.Millisecond), took.Round(time.Millisecond))
	if len(p.changes) == 0 {
		detail = fmt.Sprintf("no schema change (copy %s, migrations %s)", copied.Round(time.Millisecond), took.Round(time.Millisecond))
	}
	return p, detail, nil
}

// breakingRefusal is the refusal of a deploy whose schema changes break
// the live release: what breaks, and the two ways out.
func (r *Run) breakingRefusal(p preview) error {
	var b strings.Builder
	fmt.Fprintf(&b, "the schema preview found %d change(s) that would break the live release %s:\n", len(p.breaking), r.from)
	for _, c := range p.breaking {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	b.WriteString("Nothing was migrated and nothing booted; " + r.from + " keeps serving. Two ways out:\n")
	b.WriteString("  1. split the change (expand/contract): ship the additive part now and the removal later, once no live release reads what it removes — " + splitAdvice(p.breaking) + "\n")
	b.WriteString("  2. ship it held: `cutover deploy --hold` (or [deploy] breaking = \"hold\"): requests wait in the proxy, without an error, while the change runs and the new release boots")
	if est, ok := r.holdEstimate(p); ok {
		fmt.Fprintf(&b, " (about %s: %s of migrations on the preview, %s of boot last time)", est.total.Round(100*time.Millisecond), est.migrate.Round(100*time.Millisecond), est.boot.Round(100*time.Millisecond))
	}
	return &RefusedError{Reason: b.String()}
}

// splitAdvice says how to split the kinds of breaking change found.
func splitAdvice(cs []schema.Change) string {
	seen := map[string]bool{}
	var tips []string
	add := func(rule, tip string) {
		if !seen[rule] {
			seen[rule] = true
			tips = append(tips, tip)
		}
	}
	for _, c := range cs {
		switch c.Rule {
		case "drop-column", "drop-table", "drop-view":
			add(c.Rule, "for a drop, first deploy a release that no longer reads it, then drop it in a later deploy (or a contract migration)")
		case "rename-column", "rename-table":
			add(c.Rule, "for a rename, add the new name, write both and backfill, move the reads, then drop the old one")
		case "change-column-type":
			add(c.Rule, "for a type change, add a column of the new type, write both and backfill, switch the reads, then drop the old one")
		case "set-not-null", "add-column-not-null":
			add(c.Rule, "for NOT NULL, first deploy code that always writes the column (or give it a default), then add the constraint")
		default:
			add("other", "make the change additive first (new objects beside the old), and remove the old ones once nothing reads them")
		}
	}
	return strings.Join(tips, "; ")
}

// holdTime is how long a held deploy is expected to hold requests.
type holdTime struct{ migrate, boot, total time.Duration }

// holdEstimate is the preview's migration time plus the boot time of the
// app's last successful deploy; ok is false when no boot was measured.
func (r *Run) holdEstimate(p preview) (holdTime, bool) {
	boot, ok := r.e.lastBoot(r.e.ctx)
	if !ok {
		return holdTime{}, false
	}
	return holdTime{migrate: p.took, boot: boot, total: p.took + boot}, true
}

// lastBoot is the duration of the boot step (held or not) of the latest
// deploy that succeeded.
func (e *Engine) lastBoot(ctx context.Context) (time.Duration, bool) {
	ds, err := e.store.Deploys(ctx, 10, state.DeploySucceeded)
	if err != nil {
		return 0, false
	}
	for _, d := range ds {
		for _, st := range d.Steps {
			if (st.Name == StepBoot.String() || st.Name == StepHeldBoot.String()) && st.Status == "ok" {
				return st.FinishedAt.Sub(st.StartedAt), true
			}
		}
	}
	return 0, false
}

// SchemaPath is where the schema release went live on is recorded:
// <data_dir>/schemas/<release>.json.
func SchemaPath(cfg *config.Config, releaseID string) string {
	return filepath.Join(cfg.DataDir, "schemas", releaseID+".json")
}

// RecordSchema records the database's schema now as the one release runs
// on. The deploy calls it when a release goes live (after its contract
// step), `cutover migrate contract` after it changed the live release's
// schema.
func RecordSchema(ctx context.Context, cfg *config.Config, releaseID string) error {
	if cfg.Database.URL == "" {
		return nil
	}
	url, err := cfg.Database.ExpandedURL()
	if err == nil {
		var s *schema.Schema
		if s, err = schema.Snapshot(ctx, url); err == nil {
			var b []byte
			if b, err = json.Marshal(s); err == nil {
				path := SchemaPath(cfg, releaseID)
				if err = os.MkdirAll(filepath.Dir(path), 0o700); err == nil {
					err = release.WriteFileAtomic(path, b)
				}
			}
		}
	}
	if err != nil {
		return fmt.Errorf("record the schema %s runs on (a rollback to it will not be checked against the schema): %w", releaseID, err)
	}
	return nil
}

// recordSchema is RecordSchema with the failure logged: it only weakens a
// later rollback's check.
func (e *Engine) recordSchema(ctx context.Context, cfg *config.Config, releaseID string) {
	if err := RecordSchema(ctx, cfg, releaseID); err != nil {
		e.log.Warn("record schema", "release", releaseID, "err", err)
	}
}

// schemaGuard refuses a rollback to target when the database's schema
// changed since target was live in a way its code may not handle: what it
// used is gone or changed (the classifier's "breaking").
func (e *Engine) schemaGuard(ctx context.Context, db config.Database, target state.Release, force bool) (string, error) {
	if db.URL == "" {
		return "no database configured", nil
	}
	path := SchemaPath(e.Config(), target.ID)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "no schema recorded for " + target.ID + " (it went live before cutover recorded schemas, or with no database)", nil
	}
	if err != nil {
		return "", err
	}
	var was schema.Schema
	if err := json.Unmarshal(b, &was); err != nil {
		return "", fmt.Errorf("read the schema recorded for %s (%s): %w", target.ID, path, err)
	}
	url, err := db.ExpandedURL()
	if err != nil {
		return "", err
	}
	now, err := schema.Snapshot(ctx, url)
	if err != nil {
		return "", fmt.Errorf("read the database's schema: %w", err)
	}
	breaking := schema.Breaking(schema.Diff(&was, now))
	if len(breaking) == 0 {
		return "the schema still has everything " + target.ID + " ran on", nil
	}
	names := make([]string, len(breaking))
	for i, c := range breaking {
		names[i] = c.String()
	}
	msg := fmt.Sprintf("the schema changed since %s was live, in ways its code may not handle:\n  %s\nRoll forward instead (deploy a fixed release), or pass --force if you know its code does not use these",
		target.ID, strings.Join(names, "\n  "))
	if force {
		return "forced past: " + msg, nil
	}
	return "", &RefusedError{Reason: "rollback refused: " + msg}
}

// previewSchema runs the schema preview when the deploy has database
// changes to make, and decides: no breaking change → go on as usual;
// breaking and held (--hold or deploy.breaking = "hold") → held is true;
// breaking otherwise → refused, nothing migrated.
func (r *Run) previewSchema(ctx context.Context, mig *migrations, newID string) (held bool, err error) {
	pending := 0
	if mig != nil && r.cfg.Database.Preview == "on" && r.from != "" {
		ps, err := mig.pending(ctx, migrate.Expand)
		if err != nil {
			return false, err
		}
		pending = len(ps)
	}
	if !r.needsPreview(mig, pending) {
		return false, nil
	}
	var p preview
	if err := r.step(StepSchema, func() (string, error) {
		var detail string
		var err error
		p, detail, err = r.schemaPreview(ctx, mig, newID)
		return detail, err
	}); err != nil {
		return false, err
	}
	if len(p.breaking) == 0 {
		r.dbSafe = true
		return false, nil
	}
	if r.held() {
		// stop-first: the old release is stopped before the change runs.
		r.info("%d breaking schema change(s): deploy.strategy \"stop-first\" stops %s before they run", len(p.breaking), r.from)
		return false, nil
	}
	if !r.req.Hold && r.cfg.Deploy.Breaking != "hold" {
		return false, r.breakingRefusal(p)
	}
	limit := r.cfg.Proxy.HoldTimeout.Duration
	if est, ok := r.holdEstimate(p); ok && est.total > limit {
		return false, &RefusedError{Reason: fmt.Sprintf("a held deploy would hold requests about %s (%s of migrations on the preview, %s of boot last time), beyond proxy.hold_timeout %s: they would be answered 503. Raise proxy.hold_timeout, or split the change so it needs no hold",
			est.total.Round(100*time.Millisecond), est.migrate.Round(100*time.Millisecond), est.boot.Round(100*time.Millisecond), limit)}
	} else if p.took > limit {
		return false, &RefusedError{Reason: fmt.Sprintf("a held deploy would hold requests at least %s (the migrations on the preview), beyond proxy.hold_timeout %s: they would be answered 503. Raise proxy.hold_timeout, or split the change so it needs no hold",
			p.took.Round(100*time.Millisecond), limit)}
	}
	r.info("shipping %d breaking schema change(s) held: requests wait in the proxy while the change runs and %s boots", len(p.breaking), newID)
	return true, nil
}

// migrateCommand runs database.migrate_command against the live database,
// once, under the migration lock, as the deploy's migrate step.
func (r *Run) migrateCommand(ctx context.Context, newID string) error {
	db := r.cfg.Database
	if db.MigrateCommand == "" {
		return nil
	}
	return r.step(StepMigrate, func() (string, error) {
		url, err := db.ExpandedURL()
		if err != nil {
			return "", err
		}
		detail, err := r.dbCommand(ctx, StepMigrate, "migrate_command", db.MigrateCommand, url, newID, true)
		if err != nil {
			return "", fmt.Errorf("%w; %s keeps serving", err, orNone(r.from))
		}
		return detail, nil
	})
}

// contractCommand runs database.contract_command against the live
// database under the migration lock.
func (r *Run) contractCommand(ctx context.Context, releaseID string) (string, error) {
	db := r.cfg.Database
	url, err := db.ExpandedURL()
	if err != nil {
		return "", err
	}
	return r.dbCommand(ctx, StepContract, "contract_command", db.ContractCommand, url, releaseID, true)
}

// errSchemaChanged marks a release phase that failed after it had changed
// the live schema in a way that breaks the old release.
var errSchemaChanged = errors.New("the live schema changed in a way the old release cannot work with")

// databaseChanges is the release phase a held switch runs: the pending
// expand migrations, then migrate_command, on the live database. If it
// fails, the live schema is compared with the one before: a failure
// half-way that broke the old release's schema wraps errSchemaChanged.
func (r *Run) databaseChanges(mig *migrations, newID string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		db := r.cfg.Database
		url, err := db.ExpandedURL()
		if err != nil {
			return "", err
		}
		before, berr := schema.Snapshot(ctx, url)
		var notes []string
		run := func() error {
			if mig != nil {
				detail, err := mig.up(ctx, r, migrate.Expand)
				if err != nil {
					return err
				}
				notes = append(notes, detail)
			}
			if db.MigrateCommand != "" {
				detail, err := r.dbCommand(ctx, StepReleasePhase, "migrate_command", db.MigrateCommand, url, newID, true)
				if err != nil {
					return err
				}
				notes = append(notes, detail)
			}
			return nil
		}
		if err := run(); err != nil {
			if berr != nil {
				return "", fmt.Errorf("%w (the schema before it could not be read, so whether it changed is unknown: %v; %w)", err, berr, errSchemaChanged)
			}
			after, aerr := schema.Snapshot(context.WithoutCancel(ctx), url)
			if aerr != nil {
				return "", fmt.Errorf("%w (the schema after it could not be read: %v; %w)", err, aerr, errSchemaChanged)
			}
			if broke := schema.Breaking(schema.Diff(before, after)); len(broke) > 0 {
				names := make([]string, len(broke))
				for i, c := range broke {
					names[i] = c.Object
				}
				return "", fmt.Errorf("%w; it had already changed %s (%w)", err, strings.Join(names, ", "), errSchemaChanged)
			}
			return "", err
		}
		return strings.Join(notes, "; "), nil
	}
}
