// Package sqlsplit splits a migration script into its statements, so that a
// migration can run one statement at a time outside a transaction and so that
// lint can point at the line of each statement.
//
// Postgres scripts are split by the Postgres parser itself (libpg_query,
// compiled to WebAssembly by github.com/wasilibs/go-pgquery, so cutover keeps
// CGO_ENABLED=0). The parser knows every lexical and grammatical corner that
// decides where a statement ends: dollar quotes, E'…' strings with backslash
// escapes, nested /* */ comments, BEGIN ATOMIC … END function bodies and DO
// blocks. The parser gives each statement's place in the script; each
// [Statement] carries the parse tree of that statement from the same parse,
// as package pgtree decodes it, so a caller that also needs the tree (lint)
// does not parse the script a second time. Comments come from the same
// parser's scanner, whose tokens are read straight from its protobuf result.
//
// SQLite scripts are split by a small tokenizer that follows SQLite's own
// lexical rules (tokenize.c) and the state machine of sqlite3_complete(),
// which is how SQLite itself decides that a statement is complete. The
// Postgres scanner does not fit SQLite: it nests /* */ comments, treats
// $tag$ as a dollar quote where SQLite has $name parameters, reads
// backslashes in E'…' strings, and does not know [bracketed] identifiers. The
// only grammatical rule SQLite needs for splitting is that a CREATE TRIGGER
// body (BEGIN … ; END) holds semicolons; sqlite3_complete() recognises it
// from the tokens alone, and so does this package.
//
// A statement's SQL excludes its terminating semicolon and the comments
// before and after it; comment-only and empty statements are dropped. The
// comments that precede a statement are kept in [Statement.Comments] so that
// directives such as "-- cutover:allow drop-column reason" can be read. A
// comment that starts on the line where the previous statement ended belongs
// to that statement and is not a leading comment of the next one.
package sqlsplit
