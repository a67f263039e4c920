package migrate

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFailingTransactionalMigrationLeavesNothing(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dir := writeFiles(t, t.TempDir(), map[string]string{
			"1-a.up.sql":   "CREATE TABLE a (x integer);\nINSERT INTO a VALUES (1);\n\nINSERT INTO missing VALUES (1);\n",
			"1-a.down.sql": "DROP TABLE a;",
		})
		r := open(t, b.url)
		before := schema(t, r)
		_, err := r.Up(ctx, load(t, dir), Expand, nil)
		var se *StatementError
		if !errors.As(err, &se) {
			t.Fatalf("Up: got %v, want a *StatementError", err)
		}
		if se.Line != 4 || se.Index != 3 || se.Total != 3 || !strings.HasSuffix(se.Path, "1-a.up.sql") {
			t.Errorf("StatementError: got %s:%d statement %d of %d, want 1-a.up.sql:4 statement 3 of 3", se.Path, se.Line, se.Index, se.Total)
		}
		if !strings.Contains(err.Error(), "rolled back") {
			t.Errorf("error %q does not say the transaction was rolled back", err)
		}
		if diff := cmp.Diff(before, schema(t, r)); diff != "" {
			t.Errorf("failed migration left schema changes (-before +after):\n%s", diff)
		}
		rows, err := r.Applied(ctx)
		if err != nil || len(rows) != 1 || rows[0].Status != StatusFailed || rows[0].NextStatement != 3 {
			t.Fatalf("version table: got %+v, %v; want one failed row at statement 3", rows, err)
		}
		// Fix the file: the next Up runs it again from the start.
		writeFiles(t, dir, map[string]string{"1-a.up.sql": "CREATE TABLE a (x integer);\nINSERT INTO a VALUES (1);\n"})
		if _, err := r.Up(ctx, load(t, dir), Expand, nil); err != nil {
			t.Fatalf("Up after fix: %v", err)
		}
		if diff := cmp.Diff([]Version{"1"}, appliedIDs(t, r)); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
	})
}

func TestNoTransactionResume(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dir := writeFiles(t, t.TempDir(), map[string]string{
			"1-a.up.sql":   "-- cutover:no-transaction\nCREATE TABLE a (x integer);\nINSERT INTO a SELECT x FROM seed;\nCREATE TABLE b (y integer);\n",
			"1-a.down.sql": "DROP TABLE b;\nDROP TABLE a;",
		})
		r := open(t, b.url)
		var events []EventKind
		_, err := r.Up(ctx, load(t, dir), Expand, func(e Event) { events = append(events, e.Kind) })
		var se *StatementError
		if !errors.As(err, &se) {
			t.Fatalf("Up: got %v, want a *StatementError", err)
		}
		if se.Line != 3 || se.Index != 2 || !se.NoTransaction {
			t.Errorf("StatementError: got line %d statement %d (no-transaction %v), want line 3 statement 2 no-transaction", se.Line, se.Index, se.NoTransaction)
		}
		for _, want := range []string{"1-a.up.sql:3", "Statements 1 to 1 ran", "resumes at statement 2", "INSERT INTO a SELECT x FROM seed"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		if diff := cmp.Diff([]EventKind{EventStart, EventStatement, EventFailed}, events); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		rows, err := r.Applied(ctx)
		if err != nil || len(rows) != 1 || rows[0].Status != StatusPartial || rows[0].NextStatement != 2 || rows[0].Error == "" {
			t.Fatalf("version table: got %+v, %v; want one partial row at statement 2 with the error", rows, err)
		}
		// The operator fixes the database; statement 1 (CREATE TABLE a)
		// must not run again, or it would fail.
		if _, err := r.conn.ExecContext(ctx, "CREATE TABLE seed (x integer)"); err != nil {
			t.Fatal(err)
		}
		res, err := r.Up(ctx, load(t, dir), Expand, nil)
		if err != nil {
			t.Fatalf("Up after fix: %v", err)
		}
		if len(res.Done) != 1 || res.Done[0].ResumedAt != 2 {
			t.Errorf("Up after fix: got %+v, want one migration resumed at statement 2", res.Done)
		}
		if !hasTable(t, r, "b") {
			t.Errorf("table b was not created by the resumed migration")
		}
		if diff := cmp.Diff([]Version{"1"}, appliedIDs(t, r)); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
	})
}

func TestNoTransactionResumeAfterFileFix(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"1-a.up.sql":   "-- cutover:no-transaction\nCREATE TABLE a (x integer);\nINSERT INTO a VALUES (1, 2);\n",
		"1-a.down.sql": "DROP TABLE a;",
	})
	r := open(t, b.url)
	if _, err := r.Up(ctx, load(t, dir), Expand, nil); err == nil {
		t.Fatal("Up: got no error, want the failing INSERT")
	}
	// Fixing the failed statement itself keeps the completed prefix, so
	// resuming is safe.
	writeFiles(t, dir, map[string]string{"1-a.up.sql": "-- cutover:no-transaction\nCREATE TABLE a (x integer);\nINSERT INTO a VALUES (1);\n"})
	res, err := r.Up(ctx, load(t, dir), Expand, nil)
	if err != nil || len(res.Done) != 1 || res.Done[0].ResumedAt != 2 {
		t.Fatalf("Up after fixing the statement: got %+v, %v; want a resume at statement 2", res.Done, err)
	}
	// Changing a statement that already ran is refused.
	dir2 := writeFiles(t, t.TempDir(), map[string]string{
		"1-a.up.sql":   "-- cutover:no-transaction\nCREATE TABLE c (x integer);\nINSERT INTO c VALUES (1, 2);\n",
		"1-a.down.sql": "DROP TABLE c;",
	})
	r2 := open(t, sqliteBackend(t).url)
	if _, err := r2.Up(ctx, load(t, dir2), Expand, nil); err == nil {
		t.Fatal("Up: got no error, want the failing INSERT")
	}
	writeFiles(t, dir2, map[string]string{"1-a.up.sql": "-- cutover:no-transaction\nCREATE TABLE d (x integer);\nINSERT INTO d VALUES (1);\n"})
	_, err = r2.Up(ctx, load(t, dir2), Expand, nil)
	if err == nil || !strings.Contains(err.Error(), "the file was changed among them") || !strings.Contains(err.Error(), "repair 1") {
		t.Errorf("Up after changing a completed statement: got %v, want a refusal that points to repair", err)
	}
}

func TestLockTimeoutRetried(t *testing.T) {
	ctx := context.Background()
	b := postgresBackend(t)
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"1-t.up.sql":     "CREATE TABLE t (x integer);",
		"1-t.down.sql":   "DROP TABLE t;",
		"2-col.up.sql":   "ALTER TABLE t ADD COLUMN y integer;",
		"2-col.down.sql": "ALTER TABLE t DROP COLUMN y;",
	})
	set := load(t, dir)
	r := open(t, b.url, func(o *Options) { o.LockTimeout = 50 * time.Millisecond; o.RetryBackoff = time.Millisecond })
	if _, err := r.Up(ctx, &Set{Dir: dir, Format: set.Format, Migrations: set.Migrations[:1]}, Expand, nil); err != nil {
		t.Fatal(err)
	}
	// Another session holds a lock on t, as a long query of the app would.
	db, err := sql.Open("pgx", b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // Committed below; Rollback then is a no-op.
	if _, err := tx.ExecContext(ctx, "LOCK TABLE t IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	var retries []Event
	res, err := r.Up(ctx, set, Expand, func(e Event) {
		if e.Kind != EventRetry {
			return
		}
		retries = append(retries, e)
		if len(retries) == 2 {
			// Released during the backoff: the third attempt succeeds.
			if err := tx.Commit(); err != nil {
				t.Errorf("release the lock: %v", err)
			}
		}
	})
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if len(res.Done) != 1 || len(retries) != 2 {
		t.Fatalf("got %d applied after %d retries, want 1 after 2", len(res.Done), len(retries))
	}
	if !isLockNotAvailable(retries[0].Err) {
		t.Errorf("retry cause: got %v, want SQLSTATE 55P03", retries[0].Err)
	}
	if retries[1].Wait <= retries[0].Wait {
		t.Errorf("backoff did not grow: %s then %s", retries[0].Wait, retries[1].Wait)
	}
}

func TestLockTimeoutGivesUp(t *testing.T) {
	ctx := context.Background()
	b := postgresBackend(t)
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"1-t.up.sql": "CREATE TABLE t (x integer);", "1-t.down.sql": "DROP TABLE t;",
		"2-col.up.sql": "ALTER TABLE t ADD COLUMN y integer;", "2-col.down.sql": "ALTER TABLE t DROP COLUMN y;",
	})
	set := load(t, dir)
	r := open(t, b.url, func(o *Options) {
		o.LockTimeout = 20 * time.Millisecond
		o.RetryBackoff = time.Millisecond
		o.LockRetries = 2
	})
	if _, err := r.Up(ctx, &Set{Dir: dir, Migrations: set.Migrations[:1]}, Expand, nil); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // Ends the lock at the end of the test.
	if _, err := tx.ExecContext(ctx, "LOCK TABLE t IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	n := 0
	_, err = r.Up(ctx, set, Expand, func(e Event) {
		if e.Kind == EventRetry {
			n++
		}
	})
	if !isLockNotAvailable(err) || n != 2 {
		t.Errorf("Up: got %v after %d retries, want 55P03 after 2", err, n)
	}
}

func TestMigrationLockNamesHolder(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		holder := open(t, b.url, func(o *Options) { o.Release = "v41" })
		unlock, err := holder.lock(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		waiter := open(t, b.url, func(o *Options) { o.MigrateLockTimeout = 300 * time.Millisecond })
		var waits []Event
		set := load(t, writeFiles(t, t.TempDir(), manyMigrations(2)))
		_, err = waiter.Up(ctx, set, Expand, func(e Event) {
			if e.Kind == EventLockWait {
				waits = append(waits, e)
			}
		})
		var lte *LockTimeoutError
		if !errors.As(err, &lte) {
			t.Fatalf("Up: got %v, want a *LockTimeoutError", err)
		}
		if !strings.Contains(lte.Holder, "cutover migrate v41") {
			t.Errorf("holder: got %q, want it to name \"cutover migrate v41\"", lte.Holder)
		}
		if len(waits) != 1 {
			t.Errorf("lock-wait events: got %d, want 1", len(waits))
		}
		if ids := appliedIDs(t, waiter); len(ids) != 0 {
			t.Errorf("applied without the lock: %v", ids)
		}
	})
}
