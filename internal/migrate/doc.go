// Package migrate is cutover's migration runner: it reads a directory of
// versioned SQL files in the formats teams already use (native/Migratus,
// golang-migrate, goose, Flyway), keeps a version table in the target
// database (PostgreSQL through jackc/pgx or SQLite through modernc.org/sqlite)
// and applies each migration exactly once, in id order, under a lock.
//
// # Versions
//
// Ids are [Version]s: integers, or Flyway's dotted versions (1.1, 2.0.3),
// ordered numerically part by part. Flyway's repeatable migrations
// (R__<description>.sql) have none: they order after every versioned
// migration and run again whenever their file changes. The version table is
// keyed by the version as text; a table from before dotted versions, keyed
// by an integer id, is used as it is until a set needs a version that is
// not an integer, and then upgraded in place under the lock
// (Runner.prepareTable).
//
// Up-only directories are fine: a golang-migrate or Migratus migration
// without its .down.sql file has no down, and Down refuses it by name.
//
// # Phases
//
// Every migration belongs to a phase. Expand migrations (the default) must
// keep the running release working and run before new code boots; contract
// migrations (header "-- cutover:phase contract") remove what only the old
// release needed and run after it is gone. The deploy engine decides when;
// this package exposes the phase filter ([Runner.Pending], [Runner.Up]) and
// refuses an expand migration ordered after a pending contract one.
//
// # Transactions and failures
//
// A migration runs in one transaction together with the insert of its
// version row, so it is applied completely or not at all. A migration whose
// header says "-- cutover:no-transaction" (or goose's "-- +goose NO
// TRANSACTION") runs statement by statement, split by the real SQL parser
// (package sqlsplit); the version table records how many statements
// completed ("partial"), so the next run resumes at the statement that
// failed after the operator fixed the cause. There is no opaque dirty flag:
// every failure names the file, the line and the statement.
//
// # Locking
//
// On PostgreSQL a session advisory lock, polled with pg_try_advisory_lock on
// the runner's single pinned connection, serializes runners across
// processes and hosts; a runner that times out names the session holding
// the lock. On SQLite an exclusive lock on a file beside the database
// serializes runners on one host, and each migration runs in a BEGIN
// IMMEDIATE transaction that re-checks the version table.
//
// A Runner is not safe for concurrent use; open one per goroutine.
package migrate
