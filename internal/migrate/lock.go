package migrate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrReadOnly is returned by methods that change the database on a Runner
// opened with Options.ReadOnly.
var ErrReadOnly = errors.New("migration runner opened read-only")

// lockPoll is how often a waiting runner retries the migration lock.
const lockPoll = 200 * time.Millisecond

// LockTimeoutError is returned when another runner held the migration lock
// for longer than Options.MigrateLockTimeout.
type LockTimeoutError struct {
	// Waited is how long this runner waited.
	Waited time.Duration
	// Holder describes who holds the lock, as well as it could be found
	// out; empty when unknown.
	Holder string
}

func (e *LockTimeoutError) Error() string {
	holder := e.Holder
	if holder == "" {
		holder = "another runner (could not find out which)"
	}
	return fmt.Sprintf("migration lock still held after %s by %s; wait for it to finish, or stop it if it is stuck, then run again", e.Waited.Round(time.Millisecond), holder)
}

// advisoryKey is the Postgres advisory lock key of a version table, so
// that two apps with different tables in one database do not block each
// other.
func (r *Runner) advisoryKey() int64 {
	h := fnv.New64a()
	io.WriteString(h, "cutover migrate "+r.table)
	return int64(h.Sum64())
}

// lock takes the migration lock, waiting up to MigrateLockTimeout. The
// returned function releases it; it is safe to call once.
func (r *Runner) lock(ctx context.Context, progress func(Event)) (unlock func(), err error) {
	if r.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	switch r.dialect {
	case DialectPostgres:
		return r.lockPostgres(ctx, progress)
	default:
		return r.lockFile(ctx, progress)
	}
}

// poll calls try until it succeeds, fails, or the lock timeout passes.
func (r *Runner) poll(ctx context.Context, progress func(Event), try func() (bool, error), holder func() string) error {
	start := r.now()
	reported := false
	for {
		ok, err := try()
		if err != nil || ok {
			return err
		}
		waited := r.now().Sub(start)
		if waited >= r.opts.MigrateLockTimeout {
			return &LockTimeoutError{Waited: waited, Holder: holder()}
		}
		if !reported {
			reported = true
			h := holder()
			r.log.Info("waiting for the migration lock", "holder", h, "timeout", r.opts.MigrateLockTimeout)
			if progress != nil {
				progress(Event{Kind: EventLockWait, Holder: h})
			}
		}
		if err := r.sleep(ctx, min(lockPoll, r.opts.MigrateLockTimeout-waited)); err != nil {
			return fmt.Errorf("wait for the migration lock: %w", err)
		}
	}
}

func (r *Runner) lockPostgres(ctx context.Context, progress func(Event)) (func(), error) {
	key := r.advisoryKey()
	try := func() (bool, error) {
		var ok bool
		if err := r.conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
			return false, fmt.Errorf("take migration lock: %w", err)
		}
		return ok, nil
	}
	if err := r.poll(ctx, progress, try, func() string { return r.postgresHolder(ctx, key) }); err != nil {
		return nil, err
	}
	return func() {
		// A fresh context: the lock must be released even when ctx ended.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := r.conn.ExecContext(uctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			// The session ends with Close, which releases it anyway.
			r.log.Warn("release migration lock", "err", err)
		}
	}, nil
}

// postgresHolder names the sessions holding the advisory lock key.
func (r *Runner) postgresHolder(ctx context.Context, key int64) string {
	rows, err := r.conn.QueryContext(ctx, `
SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'),
       coalesce(a.usename::text, ''), a.backend_start, coalesce(a.state, '')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid::bigint = (($1::bigint >> 32) & 4294967295)
  AND l.objid::bigint = ($1::bigint & 4294967295)
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`, key)
	if err != nil {
		r.log.Warn("find migration lock holder", "err", err)
		return ""
	}
	defer rows.Close()
	var who []string
	for rows.Next() {
		var (
			pid             int64
			app, addr, user string
			since           time.Time
			state           string
		)
		if err := rows.Scan(&pid, &app, &addr, &user, &since, &state); err != nil {
			r.log.Warn("find migration lock holder", "err", err)
			return ""
		}
		if app == "" {
			app = "(no application_name)"
		}
		who = append(who, fmt.Sprintf("pid %d %q (user %s, from %s, connected since %s, %s)",
			pid, app, user, addr, since.UTC().Format(time.RFC3339), state))
	}
	return strings.Join(who, "; ")
}

// lockPath is the file whose flock serializes SQLite runners.
func (r *Runner) lockPath() string { return r.sqlitePath + ".cutover-lock" }

func (r *Runner) lockFile(ctx context.Context, progress func(Event)) (func(), error) {
	f, err := os.OpenFile(r.lockPath(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open migration lock file: %w", err)
	}
	try := func() (bool, error) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("lock %s: %w", r.lockPath(), err)
		}
		return true, nil
	}
	holder := func() string {
		b, err := os.ReadFile(r.lockPath())
		if err != nil || len(b) == 0 {
			return ""
		}
		return strings.TrimSpace(string(b)) + " (lock file " + r.lockPath() + ")"
	}
	if err := r.poll(ctx, progress, try, holder); err != nil {
		f.Close() // Nothing was written; the wait's error matters.
		return nil, err
	}
	host, _ := os.Hostname() // Best effort: the holder message only.
	who := fmt.Sprintf("pid %d on %s, cutover migrate %s, since %s", os.Getpid(), host, r.opts.Release, r.now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(who+"\n"), 0) // Informational; a failure only loses the holder's name.
	}
	return func() {
		f.Truncate(0) // Informational, see above.
		f.Close()     // Closing releases the flock.
	}, nil
}
