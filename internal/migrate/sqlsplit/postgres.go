package sqlsplit

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/wasilibs/go-pgquery/parser"

	"github.com/cutover/cutover/internal/migrate/pgtree"
)

// Postgres splits a Postgres script into statements with the Postgres parser.
// A syntax error is returned as an *[Error] with the line it is on.
func Postgres(sql string) ([]Statement, error) {
	ln := newLines(sql)
	// libpg_query reads a C string: a NUL byte would silently end the script.
	if i := strings.IndexByte(sql, 0); i >= 0 {
		return nil, &Error{Line: ln.at(i), Msg: "NUL byte in SQL"}
	}
	stmts, err := pgtree.Parse(sql)
	if err != nil {
		return nil, parseError(sql, ln, err)
	}
	if len(stmts) == 0 {
		return nil, nil
	}
	toks, err := scanPostgres(sql)
	if err != nil {
		// The parser accepted the script, so its own scanner should too.
		return nil, parseError(sql, ln, err)
	}

	var out []Statement
	prevEnd := -1
	ti := 0
	for _, raw := range stmts {
		// The statement's own tokens lie in [StmtLocation, StmtLocation+StmtLen)
		// (StmtLen 0: to the end). Tokens before it, from the end of the
		// previous statement, are the terminating semicolons of empty
		// statements and leading comments.
		end := len(sql)
		if raw.StmtLen > 0 {
			end = raw.StmtLocation + raw.StmtLen
		}
		j := ti
		for j < len(toks) && toks[j].end <= end {
			j++
		}
		st, last, ok := assemble(sql, toks[ti:j], prevEnd, ln)
		ti = j
		if !ok {
			continue
		}
		st.Tree = raw.Stmt
		out = append(out, st)
		prevEnd = last.end
	}
	return out, nil
}

// parseError turns the parser's error into an *Error with a line number.
func parseError(sql string, ln lines, err error) error {
	var pe *parser.Error
	if !errors.As(err, &pe) {
		return fmt.Errorf("parse SQL: %w", err)
	}
	line := 1
	if pe.Cursorpos > 0 {
		line = ln.at(charToByte(sql, pe.Cursorpos-1))
	}
	return &Error{Line: line, Msg: pe.Message, Err: err}
}

// charToByte converts a 0-based character index, as Postgres reports cursor
// positions, to a byte offset into s.
func charToByte(s string, char int) int {
	off := 0
	for i := 0; i < char && off < len(s); i++ {
		_, n := utf8.DecodeRuneInString(s[off:])
		off += n
	}
	return off
}
