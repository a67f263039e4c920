// Package lint refuses migration statements that would break the version of
// the application that is still running, or lock a busy table for long.
//
// A deploy runs expand migrations while the old version still serves, so in
// the expand phase lint refuses what the old code cannot survive: dropping or
// renaming tables and columns, changing a column's type, NOT NULL on a column
// the old code leaves empty, and statements that hold a lock which blocks
// reads or writes for longer than a moment (a CREATE INDEX without
// CONCURRENTLY, a constraint validated under lock, a table rewrite).
// Contract migrations run after the old version is gone: the rules about
// breaking it do not apply there, but the rules about locks still warn,
// because the new version is serving. [Rules] lists every rule with why it
// exists and the safe way to make the same change.
//
// Postgres statements are read with the real Postgres parser through
// package sqlsplit, which parses each file once; lint inspects the parse
// trees, never the text. Package pgtree decodes the node types and fields
// that the rules read, and finds the function calls anywhere in a column
// default. SQLite statements are read from their tokens: its ALTER TABLE
// grammar is small enough to recognise exactly.
//
// A finding can be accepted, with a reason, by a comment right before the
// statement:
//
//	-- cutover:allow drop-column nothing reads legacy_flag since v41
//	ALTER TABLE accounts DROP COLUMN legacy_flag;
//
// An allow comment without a reason accepts nothing and is itself a finding.
//
// Lint is static: it knows only what the migration files say. A table
// created earlier in the same file is known to be new and empty, so most
// rules exempt it; anything else is assumed to exist, be busy and be large.
// Statements inside function bodies and DO blocks are not inspected.
package lint
