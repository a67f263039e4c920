package sqlsplit

import (
	"strings"
)

// TokenKind is the lexical class of a SQLite [Token].
type TokenKind int

// Token kinds. Keywords are words: SQLite decides from context whether a word
// is a keyword, and so do callers.
const (
	// Word is a bare word: a keyword, an identifier, or a number.
	Word TokenKind = iota + 1
	// String is a '…' string literal, quotes included.
	String
	// QuotedIdent is a "…", `…` or […] quoted identifier, quotes included.
	QuotedIdent
	// Punct is any other single character, such as '(' or ','.
	Punct
)

// Token is one token of a SQLite statement.
type Token struct {
	// Kind is the token's lexical class.
	Kind TokenKind
	// Text is the token exactly as written.
	Text string
	// Offset is the byte offset of Text within the text that was split.
	Offset int
}

// Is reports whether t is the bare word w, compared case-insensitively.
func (t Token) Is(w string) bool { return t.Kind == Word && strings.EqualFold(t.Text, w) }

// Ident returns the identifier t names: a bare word as written, a quoted
// identifier (or a string used as one, which SQLite allows) without its
// quotes and with doubled quotes undone.
func (t Token) Ident() string {
	switch t.Kind {
	case QuotedIdent, String:
		if len(t.Text) < 2 {
			return t.Text
		}
		inner := t.Text[1 : len(t.Text)-1]
		switch t.Text[0] {
		case '"':
			return strings.ReplaceAll(inner, `""`, `"`)
		case '`':
			return strings.ReplaceAll(inner, "``", "`")
		case '\'':
			return strings.ReplaceAll(inner, "''", "'")
		}
		return inner
	}
	return t.Text
}

// sqliteLexeme is a token as the SQLite splitter sees it.
type sqliteLexeme struct {
	lexeme
	kind TokenKind
}

// SQLite splits a SQLite script into statements. A statement ends at a
// semicolon outside quotes and comments, except inside the body of a CREATE
// TRIGGER, which ends at "; END". An unterminated quote or trigger body is
// returned as an *[Error] with its line.
func SQLite(sql string) ([]Statement, error) {
	ln := newLines(sql)
	lexemes, err := lexSQLite(sql, ln)
	if err != nil {
		return nil, err
	}

	var (
		out     []Statement
		cur     []lexeme
		curToks []Token
		state   = stStart
		prevEnd = -1
		begin   = -1 // offset of the current statement's first token
	)
	flush := func() {
		st, last, ok := assemble(sql, cur, prevEnd, ln)
		if !ok {
			// An empty statement: its comments lead the next one.
			return
		}
		st.Tokens = curToks
		out = append(out, st)
		prevEnd = last.end
		cur, curToks, begin = nil, nil, -1
	}
	for _, l := range lexemes {
		state = completeTransition(state, classify(sql, l))
		if l.semi && state == stStart {
			flush()
			continue
		}
		cur = append(cur, l.lexeme)
		if !l.comment {
			if begin < 0 {
				begin = l.start
			}
			curToks = append(curToks, Token{Kind: l.kind, Text: sql[l.start:l.end], Offset: l.start})
		}
	}
	if state == stTrigger || state == stSemi {
		return nil, &Error{Line: ln.at(begin), Msg: "CREATE TRIGGER has no END"}
	}
	flush()
	return out, nil
}

// States of sqlite3_complete() (SQLite's complete.c), which decides whether
// a text ends with a complete statement.
const (
	stInvalid = iota // no token yet
	stStart          // after a statement's semicolon
	stNormal         // inside an ordinary statement
	stExplain        // after EXPLAIN
	stCreate         // after CREATE (and TEMP)
	stTrigger        // inside a CREATE TRIGGER
	stSemi           // after a semicolon inside a trigger
	stEnd            // after "; END" inside a trigger
)

// Token classes of sqlite3_complete().
const (
	tkSemi = iota
	tkWS
	tkOther
	tkExplain
	tkCreate
	tkTemp
	tkTrigger
	tkEnd
)

// completeTrans is sqlite3_complete()'s transition table, indexed by state
// and token class.
var completeTrans = [8][8]int{
	//            SEMI     WS         OTHER      EXPLAIN    CREATE     TEMP       TRIGGER    END
	stInvalid: {stStart, stInvalid, stNormal, stExplain, stCreate, stNormal, stNormal, stNormal},
	stStart:   {stStart, stStart, stNormal, stExplain, stCreate, stNormal, stNormal, stNormal},
	stNormal:  {stStart, stNormal, stNormal, stNormal, stNormal, stNormal, stNormal, stNormal},
	stExplain: {stStart, stExplain, stExplain, stNormal, stCreate, stNormal, stNormal, stNormal},
	stCreate:  {stStart, stCreate, stNormal, stNormal, stNormal, stCreate, stTrigger, stNormal},
	stTrigger: {stSemi, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger},
	stSemi:    {stSemi, stSemi, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger, stEnd},
	stEnd:     {stStart, stEnd, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger},
}

func completeTransition(state, class int) int { return completeTrans[state][class] }

// classify maps a lexeme to its sqlite3_complete() token class.
func classify(sql string, l sqliteLexeme) int {
	switch {
	case l.semi:
		return tkSemi
	case l.comment:
		return tkWS
	case l.kind != Word:
		return tkOther
	}
	switch w := sql[l.start:l.end]; {
	case strings.EqualFold(w, "explain"):
		return tkExplain
	case strings.EqualFold(w, "create"):
		return tkCreate
	case strings.EqualFold(w, "temp"), strings.EqualFold(w, "temporary"):
		return tkTemp
	case strings.EqualFold(w, "trigger"):
		return tkTrigger
	case strings.EqualFold(w, "end"):
		return tkEnd
	}
	return tkOther
}

// lexSQLite tokenizes a script by SQLite's lexical rules (tokenize.c):
// -- and non-nesting /* */ comments (an unterminated /* runs to the end),
// '…' strings and "…" `…` identifiers with doubled quotes, […]
// identifiers, and words of letters, digits, '_', '$' and bytes ≥ 0x80.
func lexSQLite(s string, ln lines) ([]sqliteLexeme, error) {
	var out []sqliteLexeme
	for i := 0; i < len(s); {
		c := s[i]
		start := i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
			continue
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			out = append(out, sqliteLexeme{lexeme: lexeme{start: start, end: i, comment: true}})
			continue
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			if j := strings.Index(s[i+2:], "*/"); j >= 0 {
				i += 2 + j + 2
			} else {
				i = len(s)
			}
			out = append(out, sqliteLexeme{lexeme: lexeme{start: start, end: i, comment: true}})
			continue
		case c == ';':
			i++
			out = append(out, sqliteLexeme{lexeme: lexeme{start: start, end: i, semi: true}})
			continue
		case c == '\'' || c == '"' || c == '`':
			end, ok := closeQuote(s, i, c)
			if !ok {
				return nil, &Error{Line: ln.at(start), Msg: "unterminated " + string(c) + "quoted" + string(c) + " text"}
			}
			i = end
			kind := QuotedIdent
			if c == '\'' {
				kind = String
			}
			out = append(out, sqliteLexeme{lexeme: lexeme{start: start, end: i}, kind: kind})
			continue
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, &Error{Line: ln.at(start), Msg: "unterminated [identifier]"}
			}
			i += j + 1
			out = append(out, sqliteLexeme{lexeme: lexeme{start: start, end: i}, kind: QuotedIdent})
			continue
		case isSQLiteIDChar(c):
			for i < len(s) && isSQLiteIDChar(s[i]) {
				i++
			}
			out = append(out, sqliteLexeme{lexeme: lexeme{start: start, end: i}, kind: Word})
			continue
		default:
			i++
			out = append(out, sqliteLexeme{lexeme: lexeme{start: start, end: i}, kind: Punct})
		}
	}
	return out, nil
}

// closeQuote returns the offset after the quote q that closes the quoted
// token starting at s[i], where a doubled q stands for itself.
func closeQuote(s string, i int, q byte) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		if s[j] != q {
			continue
		}
		if j+1 < len(s) && s[j+1] == q {
			j++
			continue
		}
		return j + 1, true
	}
	return 0, false
}

func isSQLiteIDChar(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
