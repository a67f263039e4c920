package lint

import (
	"fmt"
	"strings"

	"github.com/cutover/cutover/internal/migrate/sqlsplit"
)

// sqliteChecker checks the statements of one SQLite file in order. SQLite's
// ALTER TABLE only renames tables and columns and adds or drops columns, so
// the statements that matter are recognised from their leading tokens, which
// follow SQLite's grammar exactly:
//
//	DROP TABLE [IF EXISTS] [schema.]table
//	ALTER TABLE [schema.]table RENAME TO new
//	ALTER TABLE [schema.]table RENAME [COLUMN] old TO new
//	ALTER TABLE [schema.]table ADD [COLUMN] column-def
//	ALTER TABLE [schema.]table DROP [COLUMN] column
//	CREATE [TEMP|TEMPORARY] TABLE [IF NOT EXISTS] [schema.]table …
//	BEGIN | COMMIT | END | ROLLBACK (without TO) …
//
// Names compare case-insensitively, as SQLite compares them.
type sqliteChecker struct {
	transactional bool
	created       tables
	dropped       tables
}

func newSQLiteChecker(transactional bool) *sqliteChecker {
	return &sqliteChecker{transactional: transactional}
}

// tokens walks a statement's tokens.
type tokens struct {
	toks []sqlsplit.Token
	i    int
}

// accept consumes the next token if it is one of the words ws.
func (t *tokens) accept(ws ...string) bool {
	if t.i >= len(t.toks) {
		return false
	}
	for _, w := range ws {
		if t.toks[t.i].Is(w) {
			t.i++
			return true
		}
	}
	return false
}

// name consumes a [schema.]name.
func (t *tokens) name() (relation, bool) {
	if t.i >= len(t.toks) || t.toks[t.i].Kind == sqlsplit.Punct {
		return relation{}, false
	}
	r := relation{name: strings.ToLower(t.toks[t.i].Ident())}
	t.i++
	if t.i+1 < len(t.toks) && t.toks[t.i].Text == "." && t.toks[t.i+1].Kind != sqlsplit.Punct {
		r = relation{schema: r.name, name: strings.ToLower(t.toks[t.i+1].Ident())}
		t.i += 2
	}
	return r, true
}

func (c *sqliteChecker) check(st sqlsplit.Statement) []hit {
	t := &tokens{toks: st.Tokens}
	switch {
	case t.accept("create"):
		t.accept("temp", "temporary")
		if t.accept("table") {
			if t.accept("if") {
				t.accept("not")
				t.accept("exists")
			}
			if r, ok := t.name(); ok {
				c.created = append(c.created, r)
			}
		}
	case t.accept("drop"):
		if t.accept("table") {
			if t.accept("if") {
				t.accept("exists")
			}
			if r, ok := t.name(); ok {
				c.dropped = append(c.dropped, r)
				if !c.created.has(r) {
					return []hit{{rule: ruleDropTable, note: fmt.Sprintf("table %s", r)}}
				}
			}
		}
	case t.accept("alter"):
		if t.accept("table") {
			if r, ok := t.name(); ok {
				return c.alterTable(r, t)
			}
		}
	case t.accept("begin", "commit", "end"):
		if c.transactional {
			return []hit{{rule: ruleTransactionNesting}}
		}
	case t.accept("rollback"):
		t.accept("transaction")
		if c.transactional && !t.accept("to") {
			return []hit{{rule: ruleTransactionNesting}}
		}
	}
	return nil
}

func (c *sqliteChecker) alterTable(r relation, t *tokens) []hit {
	isNew := c.created.has(r)
	switch {
	case t.accept("rename"):
		if t.accept("to") {
			to, ok := t.name()
			if !ok {
				return nil
			}
			if isNew {
				c.created = append(c.created, to)
				if c.dropped.has(to) {
					return []hit{{rule: ruleTableRebuild, note: fmt.Sprintf("table %s replaces %s", r, to)}}
				}
				return nil
			}
			return []hit{{rule: ruleRenameTable, note: fmt.Sprintf("table %s to %s", r, to.name)}}
		}
		t.accept("column")
		if col, ok := t.name(); ok && !isNew {
			return []hit{{rule: ruleRenameColumn, note: fmt.Sprintf("column %s.%s", r, col.name)}}
		}
	case t.accept("drop"):
		t.accept("column")
		if col, ok := t.name(); ok && !isNew {
			return []hit{{rule: ruleDropColumn, note: fmt.Sprintf("column %s.%s", r, col.name)}}
		}
	case t.accept("add"):
		t.accept("column")
		col, ok := t.name()
		if !ok || isNew {
			return nil
		}
		// Look at the column definition's own words, outside parentheses
		// (a CHECK (x IS NOT NULL) says nothing about the column).
		depth, notNull, hasDefault := 0, false, false
		rest := t.toks[t.i:]
		for i, tok := range rest {
			switch {
			case tok.Text == "(":
				depth++
			case tok.Text == ")":
				depth--
			case depth > 0:
			case tok.Is("not") && i+1 < len(rest) && rest[i+1].Is("null"):
				notNull = true
			case tok.Is("default"):
				hasDefault = true
			}
		}
		if notNull && !hasDefault {
			return []hit{{rule: ruleAddColumnNotNull, note: fmt.Sprintf("column %s.%s", r, col.name)}}
		}
	}
	return nil
}
