package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/migrate"
	"github.com/cutover/cutover/internal/state"
)

// migrations is the database side of one deploy: the release's migration
// files and the database they go to. A nil *migrations means the app has
// no database configured or the release ships no migrations.
type migrations struct {
	db      config.Database
	url     string
	dialect string
	set     *migrate.Set
	release string
}

// loadMigrations reads the release's migrations directory. It returns nil
// when there is nothing to do.
func loadMigrations(db config.Database, releaseDir, releaseID string) (*migrations, error) {
	if db.URL == "" {
		return nil, nil
	}
	url, err := db.ExpandedURL()
	if err != nil {
		return nil, err
	}
	dialect, err := migrate.Dialect(url)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(releaseDir, db.Dir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	set, err := migrate.LoadDir(dir, db.Format)
	if err != nil {
		return nil, err
	}
	return &migrations{db: db, url: url, dialect: dialect, set: set, release: releaseID}, nil
}

func (m *migrations) open(ctx context.Context) (*migrate.Runner, error) {
	return migrate.Open(ctx, migrate.Options{
		URL:                m.url,
		Table:              m.db.Table,
		Format:             m.db.Format,
		LockTimeout:        m.db.LockTimeout.Duration,
		StatementTimeout:   m.db.StatementTimeout.Duration,
		MigrateLockTimeout: m.db.MigrateLockTimeout.Duration,
		Release:            m.release,
	})
}

// lint refuses a release whose expand migrations would break the version
// still running. It reports every finding as a log event.
func (m *migrations) lint(r *Run, mayHold bool) (string, error) {
	findings := migrate.Lint(m.set, m.dialect)
	var blocking, lines []string
	for _, f := range findings {
		for _, l := range strings.Split(f.String(), "\n") {
			lines = append(lines, l)
		}
		if f.Blocks() {
			blocking = append(blocking, fmt.Sprintf("%s:%d %s", filepath.Base(f.Path), f.Line, f.Rule))
		}
	}
	if len(lines) > 0 {
		r.event(Event{Type: "log", Lines: lines, Message: fmt.Sprintf("migration lint: %d finding(s)", len(findings))})
	}
	if len(blocking) > 0 && mayHold {
		// Held, no request reaches the live release while they run, and it
		// is drained (or was stopped) before any request reaches the new
		// one: the statements break nothing that serves.
		r.lintBlocked = true
		return fmt.Sprintf("%d statement(s) that would break the running version (%s): the deploy ships held", len(blocking), strings.Join(blocking, ", ")), nil
	}
	if len(blocking) > 0 {
		return "", fmt.Errorf("migration lint refused %d statement(s) that would break the running version (%s); see the findings above for the safe way, or add `-- cutover:allow RULE reason` to accept one deliberately, or ship it held with --hold",
			len(blocking), strings.Join(blocking, ", "))
	}
	return fmt.Sprintf("%d migration(s) checked, %d finding(s), none blocking", len(m.set.Migrations), len(findings)), nil
}

// up applies the pending migrations of one phase, reporting each.
func (m *migrations) up(ctx context.Context, r *Run, phase migrate.Phase) (string, error) {
	runner, err := m.open(ctx)
	if err != nil {
		return "", err
	}
	defer runner.Close()
	res, err := runner.Up(ctx, m.set, phase, func(ev migrate.Event) {
		switch ev.Kind {
		case migrate.EventDone:
			r.info("applied %s migration %s in %s", phase, ev.Migration, ev.Duration.Round(time.Millisecond))
		case migrate.EventLockWait:
			r.info("waiting for the migration lock, held by %s", ev.Holder)
		case migrate.EventRetry:
			r.info("migration %s hit a lock timeout; retry %d in %s", ev.Migration, ev.Attempt, ev.Wait)
		}
	})
	if err != nil {
		return "", err
	}
	if len(res.Done) == 0 {
		return fmt.Sprintf("no pending %s migrations", phase), nil
	}
	names := make([]string, len(res.Done))
	for i, o := range res.Done {
		names[i] = o.Migration.String()
	}
	return fmt.Sprintf("applied %s", strings.Join(names, ", ")), nil
}

// pending lists the migrations of phase not applied yet.
func (m *migrations) pending(ctx context.Context, phase migrate.Phase) ([]*migrate.Migration, error) {
	runner, err := m.open(ctx)
	if err != nil {
		return nil, err
	}
	defer runner.Close()
	return runner.Pending(ctx, m.set, phase)
}

// contractGuard refuses a rollback to target when contract migrations ran
// after target was last live: the old code may need what they removed.
func (e *Engine) contractGuard(ctx context.Context, target state.Release, force bool) (string, error) {
	cfg, err := e.loadConfig()
	if err != nil {
		cfg = e.Config() // the database is not per release; the daemon's view will do
	}
	if cfg.Database.URL == "" {
		return "no database configured", nil
	}
	url, err := cfg.Database.ExpandedURL()
	if err != nil {
		return "", err
	}
	runner, err := migrate.Open(ctx, migrate.Options{URL: url, Table: cfg.Database.Table, ReadOnly: true})
	if err != nil {
		return "", fmt.Errorf("read the migration history: %w", err)
	}
	defer runner.Close()
	rows, err := runner.Applied(ctx)
	if err != nil {
		return "", fmt.Errorf("read the migration history: %w", err)
	}
	var since []string
	for _, a := range rows {
		if a.Phase == migrate.Contract && a.Status == migrate.StatusApplied && a.AppliedAt.After(target.RetiredAt) {
			since = append(since, fmt.Sprintf("%d %s (applied %s by release %s)", a.ID, a.Name, a.AppliedAt.Local().Format(time.DateTime), a.Release))
		}
	}
	if len(since) == 0 {
		return "no contract migration ran since " + target.ID + " was live", nil
	}
	msg := fmt.Sprintf("contract migration(s) ran after %s was last live: %s. Its code may need what they removed; roll forward instead, or pass --force if you know it does not",
		target.ID, strings.Join(since, "; "))
	if force {
		return "forced past: " + msg, nil
	}
	return "", &RefusedError{Reason: "rollback refused: " + msg}
}
