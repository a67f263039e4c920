package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// The dialects a database URL can name.
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

// DefaultTable is the version table's name when Options.Table is empty.
const DefaultTable = "cutover_migrations"

// Defaults applied by Open to zero Options fields.
const (
	DefaultLockTimeout        = 5 * time.Second
	DefaultMigrateLockTimeout = 60 * time.Second
	DefaultLockRetries        = 3
	DefaultRetryBackoff       = 250 * time.Millisecond
)

// Dialect returns DialectPostgres or DialectSQLite for a database URL
// ("postgres://", "postgresql://", "sqlite://"), without connecting.
func Dialect(rawURL string) (string, error) {
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return "", fmt.Errorf("database URL %q: want postgres://… or sqlite:///path", redact(rawURL))
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return DialectPostgres, nil
	case "sqlite", "sqlite3":
		return DialectSQLite, nil
	}
	return "", fmt.Errorf("database URL %q: unsupported scheme %q (want postgres:// or sqlite://)", redact(rawURL), scheme)
}

// SQLitePath returns the file path of a sqlite:// URL: "sqlite:///abs/db"
// is "/abs/db", "sqlite://rel/db" is "rel/db". A query string is dropped.
func SQLitePath(rawURL string) (string, error) {
	_, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return "", fmt.Errorf("database URL %q: want sqlite:///path", rawURL)
	}
	rest, _, _ = strings.Cut(rest, "?")
	if rest == "" {
		return "", fmt.Errorf("database URL %q: no path (want sqlite:///abs/path or sqlite://relative/path)", rawURL)
	}
	p, err := url.PathUnescape(rest)
	if err != nil {
		return "", fmt.Errorf("database URL %q: %w", rawURL, err)
	}
	return p, nil
}

// Redact hides a password in a database URL, for messages.
func Redact(rawURL string) string { return redact(rawURL) }

// redact hides a password in a URL for messages.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Compiled when first used, not at start: every command, the lightest
// included, would pay for it otherwise.
var tableName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$`) })

// openDB opens the database and pins one connection.
func openDB(ctx context.Context, opts Options, dialect string) (*sql.DB, *sql.Conn, error) {
	var db *sql.DB
	switch dialect {
	case DialectPostgres:
		cfg, err := pgx.ParseConfig(opts.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("parse database URL %q: %w", redact(opts.URL), err)
		}
		app := "cutover migrate"
		if opts.Release != "" {
			app += " " + opts.Release
		}
		cfg.RuntimeParams["application_name"] = app
		if opts.LockTimeout > 0 {
			cfg.RuntimeParams["lock_timeout"] = fmt.Sprintf("%dms", opts.LockTimeout.Milliseconds())
		}
		if opts.StatementTimeout > 0 {
			cfg.RuntimeParams["statement_timeout"] = fmt.Sprintf("%dms", opts.StatementTimeout.Milliseconds())
		}
		db = stdlib.OpenDB(*cfg)
	case DialectSQLite:
		path, err := SQLitePath(opts.URL)
		if err != nil {
			return nil, nil, err
		}
		// journal_mode is set by Runner.ensureWAL under the migration lock:
		// several connections switching it at once fail with SQLITE_BUSY
		// regardless of busy_timeout.
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)"
		db, err = sql.Open("sqlite", dsn)
		if err != nil {
			return nil, nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	conn, err := db.Conn(ctx)
	if err == nil {
		err = conn.PingContext(ctx)
	}
	if err != nil {
		db.Close() // The connect error is the one to report.
		return nil, nil, fmt.Errorf("connect to %s: %w", redact(opts.URL), err)
	}
	return db, conn, nil
}

// q adapts a query written with $N placeholders to the dialect: SQLite
// spells numbered parameters ?N.
func (r *Runner) q(query string) string {
	query = strings.ReplaceAll(query, "{table}", r.table)
	if r.dialect == DialectSQLite {
		query = strings.ReplaceAll(query, "$", "?")
	}
	return query
}

// createTableSQL creates the version table under name. version is the
// key; id repeats it when it is an integer, for people and tools that
// query the table by id, as every version table did before dotted versions.
func (r *Runner) createTableSQL(name string) string {
	if r.dialect == DialectPostgres {
		return strings.ReplaceAll(`CREATE TABLE IF NOT EXISTS {name} (
	version text PRIMARY KEY,
	id bigint,
	name text NOT NULL,
	phase text NOT NULL,
	checksum text NOT NULL,
	applied_at timestamptz NOT NULL,
	duration_ms bigint NOT NULL DEFAULT 0,
	release text NOT NULL DEFAULT '',
	status text NOT NULL CHECK (status IN ('applied', 'failed', 'partial')),
	failed_statement integer,
	resume_checksum text,
	error text
)`, "{name}", name)
	}
	return strings.ReplaceAll(`CREATE TABLE IF NOT EXISTS {name} (
	version TEXT PRIMARY KEY,
	id INTEGER,
	name TEXT NOT NULL,
	phase TEXT NOT NULL,
	checksum TEXT NOT NULL,
	applied_at TEXT NOT NULL,
	duration_ms INTEGER NOT NULL DEFAULT 0,
	release TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL CHECK (status IN ('applied', 'failed', 'partial')),
	failed_statement INTEGER,
	resume_checksum TEXT,
	error TEXT
)`, "{name}", name)
}

// ensureWAL switches a SQLite database to WAL mode (which persists in the
// file), so that the application's readers are not blocked by migrations.
func (r *Runner) ensureWAL(ctx context.Context) error {
	var mode string
	if err := r.conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read sqlite journal mode: %w", err)
	}
	if strings.EqualFold(mode, "wal") {
		return nil
	}
	unlock, err := r.lock(ctx, nil)
	if err != nil {
		return err
	}
	defer unlock()
	if err := r.conn.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
		return fmt.Errorf("switch sqlite to WAL mode: %w", err)
	}
	return nil
}

// tableExists reports whether the version table exists.
func (r *Runner) tableExists(ctx context.Context) (bool, error) {
	var n int
	var err error
	if r.dialect == DialectPostgres {
		err = r.conn.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT to_regclass($1) AS c) t WHERE c IS NOT NULL`, r.table).Scan(&n)
	} else {
		err = r.conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1`, r.table).Scan(&n)
	}
	if err != nil {
		return false, fmt.Errorf("look for version table %s: %w", r.table, err)
	}
	return n > 0, nil
}

// ensureTable creates the version table if it is missing. On Postgres the
// creation runs under the migration lock, because concurrent CREATE TABLE
// IF NOT EXISTS can fail with a unique violation in pg_type.
func (r *Runner) ensureTable(ctx context.Context) error {
	ok, err := r.tableExists(ctx)
	if err != nil || ok {
		return err
	}
	unlock, err := r.lock(ctx, nil)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := r.conn.ExecContext(ctx, r.createTableSQL(r.table)); err != nil {
		return fmt.Errorf("create version table %s: %w", r.table, err)
	}
	return nil
}

// readShape sets r.legacyTable from the version table's columns.
func (r *Runner) readShape(ctx context.Context) error {
	var n int
	var err error
	if r.dialect == DialectPostgres {
		err = r.conn.QueryRowContext(ctx, `SELECT count(*) FROM pg_attribute
	WHERE attrelid = to_regclass($1) AND attname = 'version' AND NOT attisdropped`, r.table).Scan(&n)
	} else {
		err = r.conn.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?1) WHERE name = 'version'`, r.table).Scan(&n)
	}
	if err != nil {
		return fmt.Errorf("read the columns of version table %s: %w", r.table, err)
	}
	r.legacyTable = n == 0
	return nil
}

// prepareTable upgrades a version table keyed by integer id (what every
// cutover wrote before dotted versions) when set has a version that is not
// an integer; a table whose versions all are integers stays as it is, so
// an older cutover still reads and writes it. The caller holds the
// migration lock.
func (r *Runner) prepareTable(ctx context.Context, set *Set) error {
	if r.opts.ReadOnly || r.noTable {
		return nil
	}
	// Another runner may have upgraded it while this one waited for the
	// lock.
	if err := r.readShape(ctx); err != nil || !r.legacyTable {
		return err
	}
	need := slices.ContainsFunc(set.Migrations, func(m *Migration) bool {
		_, ok := m.ID.Int()
		return !ok
	})
	if !need {
		return nil
	}
	err := r.inTx(ctx, func() error {
		if r.dialect == DialectPostgres {
			return r.upgradePostgres(ctx)
		}
		return r.upgradeSQLite(ctx)
	})
	if err != nil {
		return fmt.Errorf("add the version column to version table %s (for versions such as %s that are not integers): %w", r.table, firstNonInt(set), err)
	}
	r.legacyTable = false
	r.log.Info("version table upgraded: keyed by version", "table", r.table)
	return nil
}

func firstNonInt(set *Set) Version {
	for _, m := range set.Migrations {
		if _, ok := m.ID.Int(); !ok {
			return m.ID
		}
	}
	return ""
}

// upgradePostgres moves the key of a legacy table from id to a new version
// column, in the caller's transaction.
func (r *Runner) upgradePostgres(ctx context.Context) error {
	var pkey string
	err := r.conn.QueryRowContext(ctx, `SELECT conname FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'p'`, r.table).Scan(&pkey)
	if err != nil {
		return fmt.Errorf("find the primary key: %w", err)
	}
	for _, stmt := range []string{
		`ALTER TABLE {table} ADD COLUMN version text`,
		`UPDATE {table} SET version = id::text`,
		`ALTER TABLE {table} ALTER COLUMN version SET NOT NULL`,
		`ALTER TABLE {table} DROP CONSTRAINT ` + pgx.Identifier{pkey}.Sanitize(),
		`ALTER TABLE {table} ALTER COLUMN id DROP NOT NULL`,
		`ALTER TABLE {table} ADD PRIMARY KEY (version)`,
	} {
		if _, err := r.conn.ExecContext(ctx, r.q(stmt)); err != nil {
			return fmt.Errorf("%s: %w", r.q(stmt), err)
		}
	}
	return nil
}

// upgradeSQLite rebuilds a legacy table with the version column as its key
// (SQLite cannot change a table's primary key in place), in the caller's
// transaction.
func (r *Runner) upgradeSQLite(ctx context.Context) error {
	tmp := r.table + "_upgrade"
	for _, stmt := range []string{
		`DROP TABLE IF EXISTS ` + tmp,
		r.createTableSQL(tmp),
		`INSERT INTO ` + tmp + ` (version, id, name, phase, checksum, applied_at, duration_ms, release, status,
	failed_statement, resume_checksum, error)
	SELECT CAST(id AS TEXT), id, name, phase, checksum, applied_at, duration_ms, release, status,
	failed_statement, resume_checksum, error FROM ` + r.table,
		`DROP TABLE ` + r.table,
		`ALTER TABLE ` + tmp + ` RENAME TO ` + r.table,
	} {
		if _, err := r.conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// RowStatus is the state of a version table row.
type RowStatus string

// The statuses of a version table row.
const (
	// StatusApplied: the migration ran completely.
	StatusApplied RowStatus = "applied"
	// StatusFailed: a transactional migration failed and was rolled back;
	// nothing of it remains and the next up runs it again.
	StatusFailed RowStatus = "failed"
	// StatusPartial: a no-transaction migration stopped before its last
	// statement; NextStatement says where the next up resumes.
	StatusPartial RowStatus = "partial"
)

// Applied is one row of the version table.
type Applied struct {
	ID       Version
	Name     string
	Phase    Phase
	Checksum string
	// AppliedAt is when the row was last written (UTC).
	AppliedAt time.Time
	// Duration is how long the migration ran.
	Duration time.Duration
	// Release is Options.Release of the runner that wrote the row.
	Release string
	Status  RowStatus
	// NextStatement is, for a partial or failed row, the 1-based index of
	// the statement that failed (or was running when the runner stopped);
	// 0 otherwise.
	NextStatement int
	// Error is the last failure's message; empty when none.
	Error string

	resumeChecksum string
}

// Applied returns the rows of the version table, by ascending id
// (Version.Compare).
func (r *Runner) Applied(ctx context.Context) ([]Applied, error) {
	if r.noTable {
		return nil, nil
	}
	// Another runner may have upgraded the table since this one looked.
	if err := r.readShape(ctx); err != nil {
		return nil, err
	}
	version := "version"
	if r.legacyTable {
		version = "CAST(id AS TEXT)"
	}
	rows, err := r.conn.QueryContext(ctx, r.q(`SELECT `+version+`, name, phase, checksum, applied_at, duration_ms, release, status,
	failed_statement, resume_checksum, error FROM {table}`))
	if err != nil {
		return nil, fmt.Errorf("read version table %s: %w", r.table, err)
	}
	defer rows.Close()
	var out []Applied
	for rows.Next() {
		var (
			a       Applied
			id      string
			at      any
			ms      int64
			next    sql.NullInt64
			resume  sql.NullString
			errText sql.NullString
			phase   string
			status  string
		)
		if err := rows.Scan(&id, &a.Name, &phase, &a.Checksum, &at, &ms, &a.Release, &status, &next, &resume, &errText); err != nil {
			return nil, fmt.Errorf("read version table %s: %w", r.table, err)
		}
		a.ID, a.Phase, a.Status = Version(id), Phase(phase), RowStatus(status)
		a.Duration = time.Duration(ms) * time.Millisecond
		a.NextStatement = int(next.Int64)
		a.resumeChecksum, a.Error = resume.String, errText.String
		a.AppliedAt, err = scanTime(at)
		if err != nil {
			return nil, fmt.Errorf("read version table %s: id %s: %w", r.table, id, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read version table %s: %w", r.table, err)
	}
	slices.SortFunc(out, func(a, b Applied) int { return a.ID.Compare(b.ID) })
	return out, nil
}

func scanTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t.UTC(), nil
	case string:
		return parseTime(t)
	case []byte:
		return parseTime(string(t))
	case nil:
		return time.Time{}, nil
	}
	return time.Time{}, fmt.Errorf("applied_at has unexpected type %T", v)
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("applied_at %q is not a time", s)
}

// execer is what both *sql.Conn and *sql.Tx offer.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// writeRow inserts or replaces the row of a.
func (r *Runner) writeRow(ctx context.Context, ex execer, a Applied) error {
	var next any
	if a.NextStatement > 0 {
		next = int64(a.NextStatement)
	}
	var resume, errText any
	if a.resumeChecksum != "" {
		resume = a.resumeChecksum
	}
	if a.Error != "" {
		errText = a.Error
	}
	var at any = a.AppliedAt.UTC()
	if r.dialect == DialectSQLite {
		at = a.AppliedAt.UTC().Format(time.RFC3339Nano)
	}
	var id any
	if n, ok := a.ID.Int(); ok {
		id = int64(n)
	}
	const set = `name = excluded.name, phase = excluded.phase, checksum = excluded.checksum,
	applied_at = excluded.applied_at, duration_ms = excluded.duration_ms, release = excluded.release,
	status = excluded.status, failed_statement = excluded.failed_statement,
	resume_checksum = excluded.resume_checksum, error = excluded.error`
	var err error
	if r.legacyTable {
		if id == nil {
			// prepareTable upgrades the table before such a version is
			// written; reaching here is a bug.
			return fmt.Errorf("record migration %s in %s: the table is keyed by integer id and was not upgraded", a.ID, r.table)
		}
		_, err = ex.ExecContext(ctx, r.q(`INSERT INTO {table}
	(id, name, phase, checksum, applied_at, duration_ms, release, status, failed_statement, resume_checksum, error)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
	ON CONFLICT (id) DO UPDATE SET `+set),
			id, a.Name, string(a.Phase), a.Checksum, at, a.Duration.Milliseconds(), a.Release,
			string(a.Status), next, resume, errText)
	} else {
		_, err = ex.ExecContext(ctx, r.q(`INSERT INTO {table}
	(version, id, name, phase, checksum, applied_at, duration_ms, release, status, failed_statement, resume_checksum, error)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
	ON CONFLICT (version) DO UPDATE SET id = excluded.id, `+set),
			string(a.ID), id, a.Name, string(a.Phase), a.Checksum, at, a.Duration.Milliseconds(), a.Release,
			string(a.Status), next, resume, errText)
	}
	if err != nil {
		return fmt.Errorf("record migration %s in %s: %w", a.ID, r.table, err)
	}
	return nil
}

func (r *Runner) deleteRow(ctx context.Context, ex execer, id Version) error {
	query, arg := r.q(`DELETE FROM {table} WHERE version = $1`), any(string(id))
	if r.legacyTable {
		n, _ := id.Int() // a legacy table holds integer versions only
		query, arg = r.q(`DELETE FROM {table} WHERE id = $1`), int64(n)
	}
	if _, err := ex.ExecContext(ctx, query, arg); err != nil {
		return fmt.Errorf("delete migration %s from %s: %w", id, r.table, err)
	}
	return nil
}

// isLockNotAvailable reports whether err is Postgres' SQLSTATE 55P03
// (lock_not_available), what lock_timeout raises.
func isLockNotAvailable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}
