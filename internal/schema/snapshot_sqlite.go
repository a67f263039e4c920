package schema

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/cutover/cutover/internal/migrate"
)

// openSQLite opens the SQLite database of url and pins one connection.
// readOnly opens it without write access: a snapshot must not create the
// file or change the live database.
func openSQLite(ctx context.Context, url string, readOnly bool) (*sql.DB, *sql.Conn, error) {
	path, err := migrate.SQLitePath(url)
	if err != nil {
		return nil, nil, err
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)"
	if readOnly {
		dsn += "&mode=ro"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	conn, err := db.Conn(ctx)
	if err == nil {
		err = conn.PingContext(ctx)
	}
	if err != nil {
		db.Close() // The open error is the one to report.
		return nil, nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, conn, nil
}

func snapshotSQLite(ctx context.Context, url string) (*Schema, error) {
	db, conn, err := openSQLite(ctx, url, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()   // Read-only; a close error changes nothing.
	defer conn.Close() // Idem.
	// One read transaction: every query sees the same schema.
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK") // Read-only; nothing to keep.

	type object struct{ typ, name, sql string }
	var objs []object
	rows, err := conn.QueryContext(ctx, `SELECT type, name, coalesce(sql, '') FROM sqlite_master
WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read sqlite_master: %w", err)
	}
	for rows.Next() {
		var o object
		if err := rows.Scan(&o.typ, &o.name, &o.sql); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read sqlite_master: %w", err)
		}
		objs = append(objs, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sqlite_master: %w", err)
	}

	s := newSchema(DialectSQLite)
	for _, o := range objs {
		cols, pk, err := sqliteColumns(ctx, conn, o.name)
		if err != nil {
			return nil, fmt.Errorf("read columns of %s: %w", o.name, err)
		}
		if o.typ == "view" {
			s.Views[o.name] = collapseSpace(o.sql)
			for _, c := range cols {
				s.ViewColumns[o.name] = append(s.ViewColumns[o.name], c.Name)
			}
			continue
		}
		t := &Table{Columns: cols, PrimaryKey: pk}
		if err := sqliteIndexes(ctx, conn, o.name, t); err != nil {
			return nil, fmt.Errorf("read indexes of %s: %w", o.name, err)
		}
		if err := sqliteForeignKeys(ctx, conn, o.name, t); err != nil {
			return nil, fmt.Errorf("read foreign keys of %s: %w", o.name, err)
		}
		for _, chk := range sqliteChecks(o.sql) {
			var cols []string // The table's columns the expression names.
			for _, c := range t.Columns {
				if containsWord(chk, c.Name) {
					cols = append(cols, c.Name)
				}
			}
			t.Constraints = append(t.Constraints, &Constraint{Kind: ConstraintCheck, Def: chk, Columns: cols})
		}
		s.Tables[o.name] = t
	}
	return s, nil
}

// sqliteColumns reads table_xinfo: the columns, including generated ones,
// and the primary key in key order.
func sqliteColumns(ctx context.Context, conn *sql.Conn, table string) ([]*Column, []string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid`, table)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var cols []*Column
	pkAt := map[int]string{}
	for rows.Next() {
		var name, typ string
		var notNull bool
		var def sql.NullString
		var pk, hidden int
		if err := rows.Scan(&name, &typ, &notNull, &def, &pk, &hidden); err != nil {
			return nil, nil, err
		}
		if hidden == 1 { // A virtual table's hidden column.
			continue
		}
		c := &Column{Name: name, Type: normalizeSQLiteType(typ), NotNull: notNull, Default: def.String}
		if hidden == 2 || hidden == 3 {
			c.Generated = "generated"
		}
		if pk > 0 {
			pkAt[pk] = name
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	var pk []string
	for i := 1; i <= len(pkAt); i++ {
		pk = append(pk, pkAt[i])
	}
	return cols, pk, nil
}

func normalizeSQLiteType(t string) string {
	t = strings.ToLower(collapseSpace(t))
	t = strings.ReplaceAll(t, " (", "(")
	return strings.ReplaceAll(t, ", ", ",")
}

func sqliteIndexes(ctx context.Context, conn *sql.Conn, table string, t *Table) error {
	type idx struct {
		name, origin string
		unique       bool
	}
	rows, err := conn.QueryContext(ctx, `SELECT l.name, l."unique", l.origin, coalesce(m.sql, '')
FROM pragma_index_list(?1) l LEFT JOIN sqlite_master m ON m.type = 'index' AND m.name = l.name`, table)
	if err != nil {
		return err
	}
	var list []idx
	defs := map[string]string{}
	for rows.Next() {
		var i idx
		var def string
		if err := rows.Scan(&i.name, &i.unique, &i.origin, &def); err != nil {
			rows.Close()
			return err
		}
		list = append(list, i)
		defs[i.name] = def
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, i := range list {
		if i.origin == "pk" {
			continue // Table.PrimaryKey.
		}
		var cols []string
		crows, err := conn.QueryContext(ctx, `SELECT coalesce(name, '(expression)') FROM pragma_index_info(?1) ORDER BY seqno`, i.name)
		if err != nil {
			return err
		}
		for crows.Next() {
			var c string
			if err := crows.Scan(&c); err != nil {
				crows.Close()
				return err
			}
			cols = append(cols, c)
		}
		crows.Close()
		if err := crows.Err(); err != nil {
			return err
		}
		if i.origin == "u" { // A UNIQUE constraint in CREATE TABLE; its index name is SQLite's.
			t.Constraints = append(t.Constraints, &Constraint{Kind: ConstraintUnique,
				Def: "UNIQUE (" + strings.Join(cols, ", ") + ")", Columns: cols})
			continue
		}
		def := collapseSpace(defs[i.name])
		// Leave the name out of the definition, as on PostgreSQL.
		if before, after, ok := strings.Cut(def, " ON "); ok {
			if sp := strings.LastIndexByte(before, ' '); sp > 0 {
				def = before[:sp] + " ON " + after
			}
		}
		t.Indexes = append(t.Indexes, &Index{Name: i.name, Def: def, Unique: i.unique, Columns: cols})
	}
	return nil
}

func sqliteForeignKeys(ctx context.Context, conn *sql.Conn, table string, t *Table) error {
	rows, err := conn.QueryContext(ctx, `SELECT id, "table", "from", coalesce("to", ''), on_update, on_delete
FROM pragma_foreign_key_list(?1) ORDER BY id, seq`, table)
	if err != nil {
		return err
	}
	defer rows.Close()
	type fk struct {
		ref, onUpdate, onDelete string
		from, to                []string
	}
	byID := map[int]*fk{}
	var ids []int
	for rows.Next() {
		var id int
		var ref, from, to, onUpdate, onDelete string
		if err := rows.Scan(&id, &ref, &from, &to, &onUpdate, &onDelete); err != nil {
			return err
		}
		f := byID[id]
		if f == nil {
			f = &fk{ref: ref, onUpdate: onUpdate, onDelete: onDelete}
			byID[id] = f
			ids = append(ids, id)
		}
		f.from = append(f.from, from)
		f.to = append(f.to, to)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		f := byID[id]
		def := fmt.Sprintf("FOREIGN KEY (%s) REFERENCES %s(%s) ON UPDATE %s ON DELETE %s",
			strings.Join(f.from, ", "), f.ref, strings.Join(f.to, ", "), f.onUpdate, f.onDelete)
		t.Constraints = append(t.Constraints, &Constraint{Kind: ConstraintForeignKey, Def: def, Columns: f.from})
	}
	return nil
}

// sqliteChecks returns the CHECK expressions of a CREATE TABLE statement:
// SQLite keeps no catalog of them, only the statement's text. It skips
// string literals and quoted identifiers, so a column named "check" or a
// default 'check (x)' is not taken for one.
func sqliteChecks(createSQL string) []string {
	var out []string
	s := createSQL
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"', '`', '[':
			end := c
			if c == '[' {
				end = ']'
			}
			j := strings.IndexByte(s[i+1:], end)
			if j < 0 {
				return out
			}
			i += j + 1
			continue
		}
		if !hasWordAt(s, i, "check") {
			continue
		}
		j := i + len("check")
		for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r') {
			j++
		}
		if j >= len(s) || s[j] != '(' {
			continue
		}
		depth, k := 0, j
		for ; k < len(s); k++ {
			if s[k] == '\'' {
				if e := strings.IndexByte(s[k+1:], '\''); e >= 0 {
					k += e + 1
					continue
				}
			}
			if s[k] == '(' {
				depth++
			} else if s[k] == ')' {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		if k >= len(s) {
			return out
		}
		out = append(out, "CHECK "+collapseSpace(s[j:k+1]))
		i = k
	}
	return out
}

// hasWordAt reports whether s has the word w (case-insensitive) at i, not
// inside a longer identifier.
func hasWordAt(s string, i int, w string) bool {
	if i+len(w) > len(s) || !strings.EqualFold(s[i:i+len(w)], w) {
		return false
	}
	isIdent := func(b byte) bool {
		return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
	}
	if i > 0 && isIdent(s[i-1]) {
		return false
	}
	return i+len(w) == len(s) || !isIdent(s[i+len(w)])
}

// containsWord reports whether s has w as a whole word (case-insensitive).
func containsWord(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if hasWordAt(s, i, w) {
			return true
		}
	}
	return false
}
