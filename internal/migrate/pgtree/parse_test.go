package pgtree

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/wasilibs/go-pgquery/parser"
)

func parseOne(t *testing.T, sql string) *Node {
	t.Helper()
	stmts, err := Parse(sql)
	if err != nil {
		t.Fatalf("Parse(%q): %v", sql, err)
	}
	if len(stmts) != 1 {
		t.Fatalf("Parse(%q): got %d statements, want 1", sql, len(stmts))
	}
	return stmts[0].Stmt
}

func TestParseLocations(t *testing.T) {
	type loc struct{ Type, Text string }
	tests := []struct {
		sql  string
		want []loc
	}{
		// The first statement starts at 0, which the JSON leaves out, and the
		// last one without a semicolon has no length.
		{"SELECT 1;\nSELECT 2", []loc{{"SelectStmt", "SELECT 1"}, {"SelectStmt", "\nSELECT 2"}}},
		{";; DROP TABLE a; -- c\n", []loc{{"DropStmt", " DROP TABLE a"}}},
		{"-- only a comment", nil},
		{"", nil},
	}
	for _, tt := range tests {
		stmts, err := Parse(tt.sql)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.sql, err)
		}
		var got []loc
		for _, s := range stmts {
			end := len(tt.sql)
			if s.StmtLen > 0 {
				end = s.StmtLocation + s.StmtLen
			}
			got = append(got, loc{s.Stmt.Type, tt.sql[s.StmtLocation:end]})
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.sql, diff)
		}
	}
}

func TestParseErrors(t *testing.T) {
	_, err := Parse("SELECT 1;\nALTER TABLE a DROPP COLUMN b;")
	var pe *parser.Error
	if !errors.As(err, &pe) || !strings.Contains(pe.Message, "syntax error") || pe.Cursorpos != 25 {
		t.Errorf("syntax error: got %#v, want a *parser.Error at character 25", err)
	}
	// A name that is not UTF-8 is refused rather than changed.
	_, err = Parse("DROP TABLE \"a\xffb\";")
	if !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("invalid UTF-8 in a name: got %v, want an error", err)
	}
	// Outside the tree it does not matter.
	if _, err := Parse("DROP TABLE a; -- \xff"); err != nil {
		t.Errorf("invalid UTF-8 in a comment: got %v, want none", err)
	}
}

func TestNodes(t *testing.T) {
	d := parseOne(t, "DROP TABLE IF EXISTS a, s.b CASCADE").GetNode().(*DropStmt)
	var names [][]string
	for _, o := range d.Objects {
		var name []string
		for _, it := range o.GetList().GetItems() {
			name = append(name, it.GetString().GetSval())
		}
		names = append(names, name)
	}
	if diff := cmp.Diff([][]string{{"a"}, {"s", "b"}}, names); diff != "" {
		t.Errorf("DROP TABLE names mismatch (-want +got):\n%s", diff)
	}
	if d.RemoveType != ObjectTable || d.Concurrent {
		t.Errorf("DROP TABLE: got %+v", d)
	}

	// Zero values are left out of the JSON, but a constant 0 is still an
	// integer constant.
	v := parseOne(t, "SET lock_timeout = 0").GetNode().(*VariableSetStmt)
	if c := v.Args[0].GetAConst(); v.Kind != VarSetValue || c == nil || c.Ival == nil || c.Ival.Ival != 0 || c.Sval != nil {
		t.Errorf("SET lock_timeout = 0: got %+v, args %v", v, v.Args)
	}
	v = parseOne(t, "SET lock_timeout = ''").GetNode().(*VariableSetStmt)
	if c := v.Args[0].GetAConst(); c == nil || c.Sval == nil || c.Sval.Sval != "" || c.Ival != nil {
		t.Errorf("SET lock_timeout = '': got args %v, want the empty string", v.Args)
	}

	at := parseOne(t, "ALTER TABLE ONLY s.t ADD COLUMN a int NOT NULL DEFAULT NULL, DROP COLUMN b").GetAlterTableStmt()
	if at == nil || at.Objtype != ObjectTable || *at.Relation != (RangeVar{Schemaname: "s", Relname: "t"}) || len(at.Cmds) != 2 {
		t.Fatalf("ALTER TABLE: got %+v", at)
	}
	add := at.Cmds[0].GetAlterTableCmd()
	col := add.Def.GetColumnDef()
	if add.Subtype != ATAddColumn || col == nil || col.Colname != "a" || len(col.Constraints) != 2 {
		t.Fatalf("ADD COLUMN: got %+v, column %+v", add, col)
	}
	if c := col.Constraints[0].GetConstraint(); c.Contype != ConstrNotNull {
		t.Errorf("NOT NULL: got %+v", c)
	}
	if c := col.Constraints[1].GetConstraint(); c.Contype != ConstrDefault || c.RawExpr.GetAConst() == nil || !c.RawExpr.GetAConst().Isnull {
		t.Errorf("DEFAULT NULL: got %+v", c)
	}
	if drop := at.Cmds[1].GetAlterTableCmd(); drop.Subtype != ATDropColumn || drop.Name != "b" || drop.Def != nil {
		t.Errorf("DROP COLUMN: got %+v", drop)
	}
	detach := parseOne(t, "ALTER TABLE t DETACH PARTITION p CONCURRENTLY").GetAlterTableStmt().Cmds[0].GetAlterTableCmd()
	if p := detach.Def.GetPartitionCmd(); detach.Subtype != ATDetachPartition || p == nil || !p.Concurrent {
		t.Errorf("DETACH PARTITION CONCURRENTLY: got %+v", detach)
	}

	if u := parseOne(t, "UPDATE s.t SET a = 1").GetNode().(*UpdateStmt); *u.Relation != (RangeVar{Schemaname: "s", Relname: "t"}) || u.WhereClause != nil {
		t.Errorf("UPDATE without WHERE: got %+v", u)
	}
	if d := parseOne(t, "DELETE FROM t WHERE a > 1").GetNode().(*DeleteStmt); d.Relation.Relname != "t" || d.WhereClause == nil {
		t.Errorf("DELETE with WHERE: got %+v", d)
	}
	if r := parseOne(t, "ALTER FUNCTION s.f(int) RENAME TO g").GetNode().(*RenameStmt); r.RenameType != ObjectFunction || r.Object.GetObjectWithArgs() == nil || len(r.Object.GetObjectWithArgs().Objname) != 2 {
		t.Errorf("ALTER FUNCTION RENAME: got %+v", r)
	}
	if m := parseOne(t, "ALTER TYPE mood SET SCHEMA old").GetNode().(*AlterObjectSchemaStmt); m.ObjectType != ObjectDataType || m.Object.GetList() == nil || m.Newschema != "old" {
		t.Errorf("ALTER TYPE SET SCHEMA: got %+v", m)
	}
	if d := parseOne(t, "ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0) NOT VALID").GetNode().(*AlterDomainStmt); d.Subtype != "C" || !d.Def.GetConstraint().SkipValidation {
		t.Errorf("ALTER DOMAIN ADD CONSTRAINT NOT VALID: got %+v", d)
	}
	ct := parseOne(t, "CREATE TABLE t (a int, PRIMARY KEY (a))").GetNode().(*CreateStmt)
	if len(ct.TableElts) != 2 || ct.TableElts[1].GetConstraint().GetContype() != ConstrPrimary || ct.TableElts[1].GetConstraint().Keys[0].GetString().GetSval() != "a" {
		t.Errorf("CREATE TABLE with a primary key: got %+v", ct)
	}

	vac := parseOne(t, "VACUUM (FULL, ANALYZE 0) t").GetNode().(*VacuumStmt)
	if full, analyze := vac.Options[0].GetDefElem(), vac.Options[1].GetDefElem(); full.Arg != nil || analyze.Arg.GetNode().(*Integer).Ival != 0 {
		t.Errorf("VACUUM options: got %v", vac.Options)
	}

	// A node type that is not decoded keeps its type.
	n := parseOne(t, "CREATE SCHEMA s")
	if n.Type != "CreateSchemaStmt" || n.GetNode() != nil || n.GetAlterTableStmt() != nil {
		t.Errorf("CREATE SCHEMA: got type %q, fields %v", n.Type, n.GetNode())
	}
	var none *Node
	if none.GetNode() != nil || none.GetString().GetSval() != "" || none.Find("FuncCall") != nil {
		t.Errorf("a nil Node is not empty")
	}
}

func TestEmptyNodeInList(t *testing.T) {
	// A NULL in a list is written as {}.
	var l List
	if err := json.Unmarshal([]byte(`{"items":[{},{"String":{"sval":"a"}}]}`), &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 2 || l.Items[0].Type != "" || l.Items[0].GetNode() != nil || l.Items[1].GetString().GetSval() != "a" {
		t.Errorf("got %v", l.Items)
	}
	var n Node
	if err := json.Unmarshal([]byte(`{"String":{},"Integer":{}}`), &n); err == nil {
		t.Errorf("a node with two types: got no error")
	}
}

func TestFind(t *testing.T) {
	tests := []struct {
		sql  string
		want []string
	}{
		{"SELECT f(g(), h()) + k()", []string{"f", "g", "h", "k"}},
		// Below nodes that are not decoded, and in their order.
		{"SELECT COALESCE(a.f(), CASE WHEN g() THEN h() END), k() OVER (PARTITION BY l())", []string{"f", "g", "h", "k", "l"}},
		{"SELECT 'FuncCall', \"FuncCall\"()", []string{"FuncCall"}},
		{"SELECT 1", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, call := range parseOne(t, tt.sql).Find("FuncCall") {
			names := call.GetFuncCall().Funcname
			got = append(got, names[len(names)-1].GetString().GetSval())
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Find(FuncCall) in %q mismatch (-want +got):\n%s", tt.sql, diff)
		}
	}
}
