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
	if errors.Is(err, pgtree.ErrInvalidUTF8) {
		return nil, &Error{Line: ln.at(invalidUTF8(sql)), Msg: err.Error(), Err: err}
	}
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

// invalidUTF8 returns the offset of the first byte of sql that is not valid
// UTF-8 outside a comment (where Postgres takes anything), or else of the
// first such byte anywhere, or 0. It locates pgtree.ErrInvalidUTF8, whose
// parse tree cannot say where the name or string is.
func invalidUTF8(sql string) int {
	if toks, err := scanPostgres(sql); err == nil {
		for _, t := range toks {
			if t.comment || t.start < 0 || t.end > len(sql) || t.start > t.end {
				continue
			}
			if i := firstInvalid(sql[t.start:t.end]); i >= 0 {
				return t.start + i
			}
		}
	}
	return max(firstInvalid(sql), 0)
}

// firstInvalid returns the offset of the first byte of s that is not valid
// UTF-8, or -1.
func firstInvalid(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
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
