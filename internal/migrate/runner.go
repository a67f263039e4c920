package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/migrate/sqlsplit"
)

// Options configure a Runner. Zero fields take the documented defaults.
type Options struct {
	// URL is the database: "postgres://…" or "sqlite:///abs/path"
	// ("sqlite://rel/path" is relative to the working directory). Required.
	URL string
	// Dir is the migrations directory. The Runner itself does not read it
	// (callers pass a Set from LoadDir); it is here so one struct carries
	// the whole [database] section.
	Dir string
	// Table is the version table. Default DefaultTable
	// ("cutover_migrations"); lower-case letters, digits and '_', with an
	// optional "schema." prefix on Postgres.
	Table string
	// Format is the migration file format for LoadDir. Default "auto".
	Format string
	// LockTimeout is Postgres' lock_timeout for every statement the runner
	// sends: a DDL that waits longer than this for a table lock fails with
	// SQLSTATE 55P03 and is retried (see LockRetries) instead of queueing
	// the application's queries behind it. Default 5s; negative means none.
	LockTimeout time.Duration
	// StatementTimeout is Postgres' statement_timeout. Default 0: none.
	StatementTimeout time.Duration
	// MigrateLockTimeout is how long a runner waits for another runner's
	// migration lock. Default 60s.
	MigrateLockTimeout time.Duration
	// LockRetries is how many times a migration (or, for a no-transaction
	// one, a statement) that failed with 55P03 is retried. Default 3;
	// negative means no retry.
	LockRetries int
	// RetryBackoff is the wait before the first retry; it doubles for each
	// next one. Default 250ms.
	RetryBackoff time.Duration
	// Logger receives progress; default discards.
	Logger *slog.Logger
	// Release is recorded with the rows this runner writes and shown to
	// other runners waiting for the lock. Default empty.
	Release string
	// ReadOnly opens without creating the version table (a missing table
	// reads as empty) and makes every method that writes fail. For status
	// and dry runs, which must not touch the database.
	ReadOnly bool
}

// Runner applies migrations to one database over one pinned connection.
// It is not safe for concurrent use.
type Runner struct {
	opts       Options
	dialect    string
	table      string
	sqlitePath string
	db         *sql.DB
	conn       *sql.Conn
	log        *slog.Logger
	// noTable is set by a ReadOnly Open that found no version table.
	noTable bool
	// legacyTable is set when the version table is keyed by its integer
	// id column and has no version column, as cutover created it before
	// dotted versions; prepareTable upgrades it when a set needs it.
	legacyTable bool

	// now and sleep are swapped by tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// Open connects to opts.URL, pins a connection and creates the version
// table if it is missing.
func Open(ctx context.Context, opts Options) (*Runner, error) {
	dialect, err := Dialect(opts.URL)
	if err != nil {
		return nil, err
	}
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if !tableName().MatchString(opts.Table) || (dialect == DialectSQLite && strings.Contains(opts.Table, ".")) {
		return nil, fmt.Errorf("version table name %q: want lower-case letters, digits and '_' (and on Postgres an optional schema. prefix)", opts.Table)
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.MigrateLockTimeout <= 0 {
		opts.MigrateLockTimeout = DefaultMigrateLockTimeout
	}
	if opts.LockRetries == 0 {
		opts.LockRetries = DefaultLockRetries
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = DefaultRetryBackoff
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{
		opts:    opts,
		dialect: dialect,
		table:   opts.Table,
		log:     opts.Logger.With("component", "migrate"),
		now:     time.Now,
		sleep:   sleepCtx,
	}
	if dialect == DialectSQLite {
		if r.sqlitePath, err = SQLitePath(opts.URL); err != nil {
			return nil, err
		}
	}
	r.db, r.conn, err = openDB(ctx, opts, dialect)
	if err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		ok, err := r.tableExists(ctx)
		if err != nil {
			r.Close() // The lookup error is the one to report.
			return nil, err
		}
		r.noTable = !ok
		if ok {
			if err := r.readShape(ctx); err != nil {
				r.Close() // The lookup error is the one to report.
				return nil, err
			}
		}
		return r, nil
	}
	if dialect == DialectSQLite {
		if err := r.ensureWAL(ctx); err != nil {
			r.Close() // The WAL error is the one to report.
			return nil, err
		}
	}
	if err := r.ensureTable(ctx); err != nil {
		r.Close() // The table error is the one to report.
		return nil, err
	}
	if err := r.readShape(ctx); err != nil {
		r.Close() // The lookup error is the one to report.
		return nil, err
	}
	return r, nil
}

// Close releases the connection (and with it any lock it still holds).
func (r *Runner) Close() error {
	err := r.conn.Close()
	if err2 := r.db.Close(); err == nil {
		err = err2
	}
	if err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// DialectName returns DialectPostgres or DialectSQLite.
func (r *Runner) DialectName() string { return r.dialect }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// EventKind says what an Event reports.
type EventKind string

// The kinds of Event.
const (
	EventLockWait  EventKind = "lock-wait" // another runner holds the lock; Holder says who
	EventStart     EventKind = "start"     // a migration starts (Statement > 1 when it resumes)
	EventStatement EventKind = "statement" // a statement of a no-transaction migration completed
	EventRetry     EventKind = "retry"     // 55P03 lock timeout; retrying after Wait
	EventDone      EventKind = "done"      // a migration completed
	EventFailed    EventKind = "failed"    // a migration failed; Err says how
)

// Event reports progress of Up and Down to the caller as it happens.
type Event struct {
	Kind      EventKind
	Migration *Migration
	// Down is set when the migration is being undone.
	Down bool
	// Statement is the 1-based statement index, where it applies.
	Statement int
	// Attempt is the retry number for EventRetry, from 1.
	Attempt int
	// Wait is the backoff before the retry.
	Wait time.Duration
	// Duration is the migration's run time for EventDone.
	Duration time.Duration
	// Holder names the lock holder for EventLockWait.
	Holder string
	// Err is the failure for EventFailed and the cause for EventRetry.
	Err error
}

// rowsByID reads the version table into a map.
func (r *Runner) rowsByID(ctx context.Context) (map[Version]Applied, error) {
	rows, err := r.Applied(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[Version]Applied, len(rows))
	for _, a := range rows {
		m[a.ID] = a
	}
	return m, nil
}

// Pending returns the migrations of set in phase that are not applied yet
// (including failed and partial ones, which the next Up retries or
// resumes), in order; repeatable ones come last, as in the set, when they
// were never applied or their file changed since. It fails when an applied
// file of a versioned migration changed
// (*ChecksumError), when a pending expand migration comes after a pending
// contract one (*PhaseOrderError), and for phase Contract when an expand
// migration is still pending (*NotAppliedError).
func (r *Runner) Pending(ctx context.Context, set *Set, phase Phase) ([]*Migration, error) {
	rows, err := r.rowsByID(ctx)
	if err != nil {
		return nil, err
	}
	return pending(set, rows, phase)
}

func pending(set *Set, rows map[Version]Applied, phase Phase) ([]*Migration, error) {
	if phase != Expand && phase != Contract {
		return nil, fmt.Errorf("unknown phase %q (want expand or contract)", phase)
	}
	var all []*Migration
	var firstContract *Migration
	for _, m := range set.Migrations {
		a, ok := rows[m.ID]
		if ok && a.Status == StatusApplied {
			switch {
			case a.Checksum == m.Checksum:
				continue
			case !m.Repeatable():
				return nil, &ChecksumError{ID: m.ID, Path: m.Up.Path, Recorded: a.Checksum, Current: m.Checksum}
			}
			// A repeatable migration whose file changed runs again.
		}
		if m.Repeatable() {
			// Repeatable migrations run after the versioned ones of
			// their phase, whenever they changed (Flyway's rule): a
			// pending contract migration does not hold back an expand
			// one.
			all = append(all, m)
			continue
		}
		if m.Phase == Contract && firstContract == nil {
			firstContract = m
		}
		if m.Phase == Expand && firstContract != nil {
			return nil, &PhaseOrderError{Expand: m, Contract: firstContract}
		}
		all = append(all, m)
	}
	var out []*Migration
	for _, m := range all {
		if m.Phase == phase {
			out = append(out, m)
		} else if phase == Contract {
			return nil, &NotAppliedError{Expand: m}
		}
	}
	return out, nil
}

// Up applies the pending migrations of phase, in order, under the
// migration lock; each is applied exactly once across all runners.
// progress, if not nil, is called synchronously with each event. Up stops
// at the first failure and returns what completed with the error.
func (r *Runner) Up(ctx context.Context, set *Set, phase Phase, progress func(Event)) (Result, error) {
	var res Result
	unlock, err := r.lock(ctx, progress)
	if err != nil {
		return res, err
	}
	defer unlock()
	if err := r.prepareTable(ctx, set); err != nil {
		return res, err
	}
	rows, err := r.rowsByID(ctx)
	if err != nil {
		return res, err
	}
	todo, err := pending(set, rows, phase)
	if err != nil {
		return res, err
	}
	emit := func(e Event) {
		if progress != nil {
			progress(e)
		}
	}
	for _, m := range todo {
		out, err := r.apply(ctx, m, rows[m.ID], emit)
		if err != nil {
			emit(Event{Kind: EventFailed, Migration: m, Err: err})
			return res, fmt.Errorf("apply migration %s: %w", m, err)
		}
		res.Done = append(res.Done, out)
		emit(Event{Kind: EventDone, Migration: m, Duration: out.Duration})
		r.log.Info("migration applied", "id", m.ID, "name", m.Name, "phase", m.Phase, "duration", out.Duration)
	}
	return res, nil
}

// statements splits a script with the parser of the dialect; the lines
// returned are lines of the file.
func (r *Runner) statements(s Script) ([]sqlsplit.Statement, error) {
	var stmts []sqlsplit.Statement
	var err error
	if r.dialect == DialectPostgres {
		stmts, err = sqlsplit.Postgres(s.SQL)
	} else {
		stmts, err = sqlsplit.SQLite(s.SQL)
	}
	if err != nil {
		var se *sqlsplit.Error
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%s:%d: cannot split into statements: %s", s.Path, se.Line+s.FirstLine-1, se.Msg)
		}
		return nil, fmt.Errorf("%s: split into statements: %w", s.Path, err)
	}
	for i := range stmts {
		stmts[i].Line += s.FirstLine - 1
	}
	return stmts, nil
}

// prefixChecksum identifies the statements that ran before a failure, so
// a resume can tell whether the file changed only from the failed
// statement on.
func prefixChecksum(stmts []sqlsplit.Statement) string {
	var b strings.Builder
	for _, s := range stmts {
		b.WriteString(s.SQL)
		b.WriteString("\x00")
	}
	return Checksum(b.String())
}

func (r *Runner) apply(ctx context.Context, m *Migration, prev Applied, emit func(Event)) (Outcome, error) {
	if m.Up.NoTransaction {
		return r.applyNoTx(ctx, m, prev, emit)
	}
	emit(Event{Kind: EventStart, Migration: m, Statement: 1})
	stmts, err := r.statements(m.Up)
	if err != nil {
		return Outcome{}, err
	}
	start := r.now()
	for attempt := 0; ; attempt++ {
		row := Applied{ID: m.ID, Name: m.Name, Phase: m.Phase, Checksum: m.Checksum, Release: r.opts.Release, Status: StatusApplied}
		err = r.inTx(ctx, func() error {
			if err := r.runStatements(ctx, m, m.Up, stmts, 0, false); err != nil {
				return err
			}
			row.AppliedAt = r.now()
			row.Duration = row.AppliedAt.Sub(start)
			return r.writeRow(ctx, r.conn, row)
		})
		if err == nil {
			return Outcome{Migration: m, Duration: row.Duration}, nil
		}
		if wait, ok := r.retryWait(err, attempt); ok {
			emit(Event{Kind: EventRetry, Migration: m, Attempt: attempt + 1, Wait: wait, Err: err})
			r.log.Warn("lock timeout, retrying migration", "id", m.ID, "attempt", attempt+1, "wait", wait)
			if err := r.sleep(ctx, wait); err != nil {
				return Outcome{}, err
			}
			continue
		}
		// Rolled back; record the failure for status, outside the
		// transaction. The next Up runs the migration again.
		failed := Applied{ID: m.ID, Name: m.Name, Phase: m.Phase, Checksum: m.Checksum, Release: r.opts.Release,
			Status: StatusFailed, AppliedAt: r.now(), Duration: r.now().Sub(start), Error: err.Error()}
		var se *StatementError
		if errors.As(err, &se) {
			failed.NextStatement = se.Index
		}
		if werr := r.writeRow(context.WithoutCancel(ctx), r.conn, failed); werr != nil {
			r.log.Warn("record failed migration", "id", m.ID, "err", werr)
		}
		return Outcome{}, err
	}
}

// retryWait says whether err is a lock timeout worth retrying after the
// given attempt (0-based), and how long to wait first.
func (r *Runner) retryWait(err error, attempt int) (time.Duration, bool) {
	if !isLockNotAvailable(err) || attempt >= r.opts.LockRetries {
		return 0, false
	}
	return r.opts.RetryBackoff << attempt, true
}

// inTx runs f in a transaction on the pinned connection: BEGIN IMMEDIATE
// on SQLite, so the write lock is taken up front instead of failing with
// SQLITE_BUSY when a read upgrades.
func (r *Runner) inTx(ctx context.Context, f func() error) error {
	begin := "BEGIN"
	if r.dialect == DialectSQLite {
		begin = "BEGIN IMMEDIATE"
	}
	if _, err := r.conn.ExecContext(ctx, begin); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := f(); err != nil {
		if _, rerr := r.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			r.log.Warn("rollback", "err", rerr)
		}
		return err
	}
	if _, err := r.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// runStatements runs stmts[from:] of script s.
func (r *Runner) runStatements(ctx context.Context, m *Migration, s Script, stmts []sqlsplit.Statement, from int, down bool) error {
	for i := from; i < len(stmts); i++ {
		if err := r.execStatement(ctx, m, s, stmts, i, down); err != nil {
			return err
		}
	}
	return nil
}

// execStatement runs stmts[i], wrapping a failure in a *StatementError.
func (r *Runner) execStatement(ctx context.Context, m *Migration, s Script, stmts []sqlsplit.Statement, i int, down bool) error {
	st := stmts[i]
	if _, err := r.conn.ExecContext(ctx, st.SQL); err != nil {
		return &StatementError{Migration: m, Down: down, Path: s.Path, Line: st.Line, Index: i + 1, Total: len(stmts),
			SQL: st.SQL, NoTransaction: s.NoTransaction, Err: err}
	}
	return nil
}

// applyNoTx runs a no-transaction migration statement by statement,
// recording before each statement which one runs, so that a failure or a
// crash leaves a partial row naming it, and the next run resumes there.
func (r *Runner) applyNoTx(ctx context.Context, m *Migration, prev Applied, emit func(Event)) (Outcome, error) {
	stmts, err := r.statements(m.Up)
	if err != nil {
		return Outcome{}, err
	}
	from := 0
	if prev.Status == StatusPartial && prev.NextStatement > 1 {
		k := prev.NextStatement - 1 // statements done
		switch {
		case k > len(stmts):
			return Outcome{}, fmt.Errorf("%s: recorded as partial after statement %d, but the file now has %d statements; undo what ran and run `cutover migrate repair %s` to start over", m.Up.Path, k, len(stmts), m.ID)
		case prev.Checksum == m.Checksum || prev.resumeChecksum == prefixChecksum(stmts[:k]):
			from = k
		default:
			return Outcome{}, fmt.Errorf("%s: statements 1 to %d ran before the last failure, and the file was changed among them, so resuming could skip or repeat work; undo what ran and run `cutover migrate repair %s` to start over, or restore those statements", m.Up.Path, k, m.ID)
		}
		r.log.Info("resuming migration", "id", m.ID, "statement", from+1)
	}
	emit(Event{Kind: EventStart, Migration: m, Statement: from + 1})
	start := r.now()
	row := Applied{ID: m.ID, Name: m.Name, Phase: m.Phase, Checksum: m.Checksum, Release: r.opts.Release, Status: StatusPartial}
	mark := func(next int, errText string) error {
		row.NextStatement, row.Error = next+1, errText
		row.resumeChecksum = prefixChecksum(stmts[:next])
		row.AppliedAt = r.now()
		row.Duration = row.AppliedAt.Sub(start)
		return r.writeRow(context.WithoutCancel(ctx), r.conn, row)
	}
	for i := from; i < len(stmts); i++ {
		if err := mark(i, ""); err != nil {
			return Outcome{}, err
		}
		for attempt := 0; ; attempt++ {
			err = r.execStatement(ctx, m, m.Up, stmts, i, false)
			wait, retry := r.retryWait(err, attempt)
			if !retry {
				break
			}
			emit(Event{Kind: EventRetry, Migration: m, Statement: i + 1, Attempt: attempt + 1, Wait: wait, Err: err})
			r.log.Warn("lock timeout, retrying statement", "id", m.ID, "statement", i+1, "attempt", attempt+1, "wait", wait)
			if err := r.sleep(ctx, wait); err != nil {
				return Outcome{}, err
			}
		}
		if err != nil {
			if merr := mark(i, err.Error()); merr != nil {
				r.log.Warn("record partial migration", "id", m.ID, "err", merr)
			}
			return Outcome{}, err
		}
		emit(Event{Kind: EventStatement, Migration: m, Statement: i + 1})
	}
	row.Status, row.NextStatement, row.Error, row.resumeChecksum = StatusApplied, 0, "", ""
	row.AppliedAt = r.now()
	row.Duration = row.AppliedAt.Sub(start)
	if err := r.writeRow(ctx, r.conn, row); err != nil {
		return Outcome{}, err
	}
	out := Outcome{Migration: m, Duration: row.Duration}
	if from > 0 {
		out.ResumedAt = from + 1
	}
	return out, nil
}
