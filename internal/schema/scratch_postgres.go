package schema

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// scratchSuffix marks a scratch database: "<live>_cutover_preview_<unix
// seconds>_<random>", recognisable when a killed process left one behind.
const scratchSuffix = "_cutover_preview_"

// leftoverAge is how old a scratch database must be before NewScratch
// drops it as a leftover: no preview runs that long.
const leftoverAge = time.Hour

var scratchName = regexp.MustCompile(`^(.*)` + scratchSuffix + `(\d+)_[0-9a-f]+$`)

var notNameChar = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// scratchPrefix is the part of a scratch database's name taken from the
// live database's, short enough for PostgreSQL's 63-byte names.
func scratchPrefix(live string) string {
	p := notNameChar.ReplaceAllString(live, "_")
	if len(p) > 28 {
		p = p[:28]
	}
	return p
}

type pgScratch struct {
	liveURL string
	cfg     *pgx.ConnConfig
	name    string
	major   int // server major version
}

func newPostgresScratch(ctx context.Context, liveURL string, o ScratchOptions) (*Scratch, error) {
	cfg, err := pgx.ParseConfig(liveURL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	cfg.RuntimeParams["application_name"] = "cutover schema preview"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx) // The scratch database does not depend on this session.

	var versionNum string
	if err := conn.QueryRow(ctx, "SHOW server_version_num").Scan(&versionNum); err != nil {
		return nil, fmt.Errorf("server version: %w", err)
	}
	num, err := strconv.Atoi(versionNum)
	if err != nil {
		return nil, fmt.Errorf("server version %q: %w", versionNum, err)
	}
	ps := &pgScratch{liveURL: liveURL, cfg: cfg, major: num / 10000}

	var role string
	var canCreate bool
	if err := conn.QueryRow(ctx, `SELECT current_user, rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&role, &canCreate); err != nil {
		return nil, fmt.Errorf("read privileges of the current role: %w", err)
	}
	if !canCreate {
		return nil, fmt.Errorf("role %q lacks the CREATEDB privilege: the schema preview creates a scratch database on the same server to run migrations on; "+
			"grant it (ALTER ROLE %s CREATEDB) or turn the preview off", role, pgx.Identifier{role}.Sanitize())
	}
	tools, err := findTools(ctx, ps.major)
	if err != nil {
		return nil, err
	}
	ps.dropLeftovers(ctx, conn, o)

	// The copy gets the live database's encoding and locale: the dump's
	// text (defaults, checks) must fit, and migrations see the same
	// collation.
	var encoding, collate, ctype string
	if err := conn.QueryRow(ctx, `SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database
WHERE datname = current_database()`).Scan(&encoding, &collate, &ctype); err != nil {
		return nil, fmt.Errorf("read the encoding of the live database: %w", err)
	}
	ps.name = fmt.Sprintf("%s%s%d_%s", scratchPrefix(cfg.Database), scratchSuffix, time.Now().Unix(), randomHex(3))
	start := time.Now()
	// template0: the copy gets only what the dump creates, not what a
	// site added to template1, and may take another encoding.
	create := fmt.Sprintf("CREATE DATABASE %s TEMPLATE template0 ENCODING %s LC_COLLATE %s LC_CTYPE %s",
		pgx.Identifier{ps.name}.Sanitize(), quoteLiteral(encoding), quoteLiteral(collate), quoteLiteral(ctype))
	if _, err := conn.Exec(ctx, create); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return nil, fmt.Errorf("create scratch database %s: %w (the role needs CREATEDB: ALTER ROLE %s CREATEDB)", ps.name, err, pgx.Identifier{role}.Sanitize())
		}
		return nil, fmt.Errorf("create scratch database %s: %w", ps.name, err)
	}
	s := &Scratch{url: ps.url(), close: ps.drop}
	fail := func(err error) (*Scratch, error) {
		if derr := ps.drop(context.WithoutCancel(ctx)); derr != nil {
			err = fmt.Errorf("%w (and dropping the scratch database failed: %v)", err, derr)
		}
		return nil, err
	}
	o.logf("created scratch database %s", ps.name)

	if err := ps.pipe(ctx, tools, "--schema-only"); err != nil {
		return fail(fmt.Errorf("copy schema: %w", err))
	}
	o.logf("copied the schema with %s in %s", tools.pgDump, time.Since(start).Round(time.Millisecond))

	tables, err := dataTables(ctx, conn, o.DataTables)
	if err != nil {
		return fail(err)
	}
	if len(tables) > 0 {
		args := []string{"--data-only"}
		for _, t := range tables {
			args = append(args, "--table", t)
		}
		if err := ps.pipe(ctx, tools, args...); err != nil {
			return fail(fmt.Errorf("copy rows of %s: %w", strings.Join(tables, ", "), err))
		}
		o.logf("copied the rows of %s", strings.Join(tables, ", "))
	}
	return s, nil
}

// url is the live URL with the scratch database's name.
func (ps *pgScratch) url() string {
	u, err := url.Parse(ps.liveURL)
	if err != nil { // pgx parsed it as a key=value string; keep that form.
		return ps.liveURL + " dbname=" + ps.name
	}
	u.Path = "/" + ps.name
	u.RawPath = ""
	q := u.Query()
	if q.Has("dbname") {
		q.Set("dbname", ps.name)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// dataTables returns the pg_dump --table patterns of the version tables and
// extra tables that exist, each quoted exactly ("public"."SequelizeMeta").
func dataTables(ctx context.Context, conn *pgx.Conn, extra []string) ([]string, error) {
	rows, err := conn.Query(ctx, `
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND `+userSchemas+`
	AND (c.relname = ANY($1) OR n.nspname || '.' || c.relname = ANY($1))
ORDER BY 1, 2`, append(append([]string{}, VersionTables...), extra...))
	if err != nil {
		return nil, fmt.Errorf("look for version tables: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var nsp, rel string
		if err := rows.Scan(&nsp, &rel); err != nil {
			return nil, fmt.Errorf("look for version tables: %w", err)
		}
		out = append(out, pgx.Identifier{nsp, rel}.Sanitize())
	}
	return out, rows.Err()
}

// env is the environment for pg_dump and psql: the connection parameters
// of the live database, the password in PGPASSWORD rather than on the
// command line where ps shows it. Inherited PG* variables are dropped so
// they cannot redirect the copy.
func (ps *pgScratch) env(db string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	c := ps.cfg
	env = append(env, "PGHOST="+c.Host, "PGPORT="+strconv.Itoa(int(c.Port)), "PGUSER="+c.User,
		"PGDATABASE="+db, "PGAPPNAME=cutover schema preview", "PGCONNECT_TIMEOUT=30")
	if c.Password != "" {
		env = append(env, "PGPASSWORD="+c.Password)
	}
	// TLS settings libpq reads from the URL's query.
	if u, err := url.Parse(ps.liveURL); err == nil {
		q := u.Query()
		for param, v := range map[string]string{"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
			"sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "sslpassword": "PGSSLPASSWORD"} {
			if q.Has(param) {
				env = append(env, v+"="+q.Get(param))
			}
		}
	}
	return env
}

// pipe runs pg_dump args on the live database into psql on the scratch
// database, stopping at the first error.
func (ps *pgScratch) pipe(ctx context.Context, t pgTools, args ...string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dumpArgs := append([]string{"--no-owner", "--no-privileges", "--lock-wait-timeout=30000"}, args...)
	dump := exec.CommandContext(ctx, t.pgDump, dumpArgs...)
	dump.Env = ps.env(ps.cfg.Database)
	restore := exec.CommandContext(ctx, t.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-o", os.DevNull)
	restore.Env = ps.env(ps.name)
	var dumpErr, restoreErr bytes.Buffer
	dump.Stderr = &dumpErr
	restore.Stderr = &restoreErr
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	dump.Stdout = w
	restore.Stdin = r
	if err := dump.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("start %s: %w", t.pgDump, err)
	}
	w.Close() // pg_dump holds the write end; psql sees EOF when it exits.
	if err := restore.Start(); err != nil {
		r.Close()
		cancel()
		dump.Wait() // Killed by cancel; the start error is the one to report.
		return fmt.Errorf("start %s: %w", t.psql, err)
	}
	r.Close()
	restoreRes := make(chan error, 1)
	go func() { restoreRes <- restore.Wait() }()
	dumpRes := dump.Wait()
	if dumpRes != nil {
		cancel() // psql would apply a truncated dump.
	}
	rerr := <-restoreRes
	// When psql stops at an error, pg_dump dies of the closed pipe: psql's
	// message is the cause, so it comes first.
	var errs []error
	if rerr != nil && restoreErr.Len() > 0 || rerr != nil && dumpRes == nil {
		errs = append(errs, fmt.Errorf("%s into the scratch database: %w: %s", t.psql, rerr, firstLines(restoreErr.String())))
	}
	if dumpRes != nil {
		errs = append(errs, fmt.Errorf("%s: %w: %s", t.pgDump, dumpRes, firstLines(dumpErr.String())))
	}
	return errors.Join(errs...)
}

// firstLines keeps an error output short enough for one message.
func firstLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 5 {
		lines = append(lines[:5], fmt.Sprintf("… (%d more lines)", len(lines)-5))
	}
	return strings.Join(lines, "\n")
}

// dropLeftovers drops this live database's scratch databases that are
// older than leftoverAge: a process killed during a preview never closed
// them. A failure is only logged; the new preview does not depend on it.
func (ps *pgScratch) dropLeftovers(ctx context.Context, conn *pgx.Conn, o ScratchOptions) {
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE strpos(datname, $1) > 0`, scratchSuffix)
	if err != nil {
		o.logf("look for leftover scratch databases: %v", err)
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		o.logf("look for leftover scratch databases: %v", err)
		return
	}
	prefix := scratchPrefix(ps.cfg.Database)
	for _, name := range names {
		m := scratchName.FindStringSubmatch(name)
		if m == nil || m[1] != prefix {
			continue
		}
		sec, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)) < leftoverAge {
			continue
		}
		if err := dropDatabase(ctx, conn, name, ps.major); err != nil {
			o.logf("drop leftover scratch database %s: %v", name, err)
			continue
		}
		o.logf("dropped leftover scratch database %s", name)
	}
}

// drop drops the scratch database, from a session on the live database.
func (ps *pgScratch) drop(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, ps.cfg)
	if err != nil {
		return fmt.Errorf("drop scratch database %s: connect: %w", ps.name, err)
	}
	defer conn.Close(ctx) // Done with it either way.
	if err := dropDatabase(ctx, conn, ps.name, ps.major); err != nil {
		return fmt.Errorf("drop scratch database %s: %w", ps.name, err)
	}
	return nil
}

// dropDatabase drops name even while a migration command still holds a
// session on it.
func dropDatabase(ctx context.Context, conn *pgx.Conn, name string, major int) error {
	id := pgx.Identifier{name}.Sanitize()
	if major >= 13 {
		_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)")
		return err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		return err
	}
	_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id)
	return err
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// is on since PostgreSQL 9.1).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
