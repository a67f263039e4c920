package sqlsplit

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cutover/cutover/internal/migrate/pgtree"
)

// Statement is one statement of a script.
type Statement struct {
	// SQL is the statement's text from its first token to its last, without
	// the terminating semicolon and without leading or trailing comments.
	// Comments inside the statement are kept.
	SQL string
	// Line is the 1-based line of the statement's first token within the
	// text that was split.
	Line int
	// Offset is the byte offset of SQL within the text that was split.
	Offset int
	// Comments are the comments between the previous statement and this one,
	// in order, each exactly as written ("-- text" or "/* text */").
	Comments []string
	// Tree is the statement's parse tree. It is set by [Postgres] and nil
	// for [SQLite].
	Tree *pgtree.Node
	// Tokens are the statement's tokens without comments. They are set by
	// [SQLite] and nil for [Postgres], whose callers use Tree instead.
	Tokens []Token
}

// Error is a syntax error found while splitting a script.
type Error struct {
	// Line is the 1-based line of the error within the text that was split.
	Line int
	// Msg says what is wrong.
	Msg string
	// Err is the parser's own error, if there was one.
	Err error
}

// Error returns "line N: message".
func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Unwrap returns the parser's own error.
func (e *Error) Unwrap() error { return e.Err }

// lexeme is the position of one token of a script, as both splitters see it.
type lexeme struct {
	start, end int
	comment    bool
	// semi marks a semicolon between statements (empty statements).
	semi bool
}

// lines maps byte offsets to 1-based line numbers.
type lines struct{ newlines []int }

func newLines(s string) lines {
	var nl []int
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			nl = append(nl, i)
		}
	}
	return lines{newlines: nl}
}

// at returns the line of the byte at offset off.
func (l lines) at(off int) int {
	return sort.SearchInts(l.newlines, off) + 1
}

// assemble turns the tokens of one statement into a Statement. prevEnd is the
// end offset of the previous statement's last token, or -1 for the first
// statement: a comment on the same line as that end is the previous
// statement's trailing comment, not a leading comment of this one. ok is
// false when the tokens hold no statement (only comments, or nothing).
func assemble(src string, toks []lexeme, prevEnd int, ln lines) (st Statement, last lexeme, ok bool) {
	first := -1
	for i, t := range toks {
		if !t.comment && !t.semi {
			first = i
			break
		}
	}
	if first < 0 {
		return Statement{}, lexeme{}, false
	}
	lastIdx := first
	for i := len(toks) - 1; i > first; i-- {
		if !toks[i].comment && !toks[i].semi {
			lastIdx = i
			break
		}
	}
	for _, c := range toks[:first] {
		if c.semi {
			continue
		}
		if prevEnd >= 0 && !strings.Contains(src[prevEnd:c.start], "\n") {
			continue
		}
		st.Comments = append(st.Comments, src[c.start:c.end])
	}
	start, end := toks[first].start, toks[lastIdx].end
	st.SQL = src[start:end]
	st.Offset = start
	st.Line = ln.at(start)
	return st, toks[lastIdx], true
}
