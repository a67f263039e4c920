package sqlsplit

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSQLite(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []split
	}{
		{
			name: "two statements on their lines",
			sql:  "CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT);\n\nALTER TABLE a ADD COLUMN b TEXT;\n",
			want: []split{
				{SQL: "CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT)", Line: 1},
				{SQL: "ALTER TABLE a ADD COLUMN b TEXT", Line: 3},
			},
		},
		{
			name: "quotes of every kind hold semicolons",
			sql:  "INSERT INTO \"t;1\" ([a;b], `c;d`) VALUES ('x;''y');\nSELECT 2;",
			want: []split{
				{SQL: "INSERT INTO \"t;1\" ([a;b], `c;d`) VALUES ('x;''y')", Line: 1},
				{SQL: "SELECT 2", Line: 2},
			},
		},
		{
			name: "backslash is not an escape",
			sql:  "SELECT 'a\\'; SELECT 2;",
			want: []split{{SQL: "SELECT 'a\\'", Line: 1}, {SQL: "SELECT 2", Line: 1}},
		},
		{
			name: "dollar is a parameter, not a quote",
			sql:  "SELECT $a; SELECT $$;",
			want: []split{{SQL: "SELECT $a", Line: 1}, {SQL: "SELECT $$", Line: 1}},
		},
		{
			name: "block comments do not nest",
			sql:  "/* a /* b; */ SELECT 1; */",
			want: []split{{SQL: "SELECT 1", Line: 1, Comments: []string{"/* a /* b; */"}}, {SQL: "*/", Line: 1}},
		},
		{
			name: "comments",
			sql:  "-- cutover:allow drop-table gone; really\nDROP TABLE a; -- trailing; comment\n/* unterminated ; ",
			want: []split{{SQL: "DROP TABLE a", Line: 2, Comments: []string{"-- cutover:allow drop-table gone; really"}}},
		},
		{
			name: "trigger body",
			sql: "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE b SET n = n + 1;\n  " +
				"UPDATE c SET k = CASE WHEN 1 THEN 2 END;\nEND;\nSELECT 1;",
			want: []split{
				{SQL: "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE b SET n = n + 1;\n  UPDATE c SET k = CASE WHEN 1 THEN 2 END;\nEND", Line: 1},
				{SQL: "SELECT 1", Line: 5},
			},
		},
		{
			name: "temporary trigger with comments in its body",
			sql:  "create temp trigger if not exists t before delete on a begin -- x;\n select 1; /* ; */ end;",
			want: []split{{SQL: "create temp trigger if not exists t before delete on a begin -- x;\n select 1; /* ; */ end", Line: 1}},
		},
		{
			name: "a table named trigger is not a trigger",
			sql:  "CREATE TABLE \"trigger\" (end_at TEXT); CREATE TEMP TABLE x (a); SELECT 1;",
			want: []split{
				{SQL: "CREATE TABLE \"trigger\" (end_at TEXT)", Line: 1},
				{SQL: "CREATE TEMP TABLE x (a)", Line: 1},
				{SQL: "SELECT 1", Line: 1},
			},
		},
		{
			name: "empty and comment-only statements are dropped",
			sql:  ";;\n-- only a comment\n;\nSELECT 1;;",
			want: []split{{SQL: "SELECT 1", Line: 4, Comments: []string{"-- only a comment"}}},
		},
		{name: "empty", sql: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SQLite(tt.sql)
			if err != nil {
				t.Fatalf("SQLite(%q): %v", tt.sql, err)
			}
			if diff := cmp.Diff(tt.want, summarize(got)); diff != "" {
				t.Errorf("SQLite(%q) mismatch (-want +got):\n%s", tt.sql, diff)
			}
			checkSplit(t, tt.sql, got)
		})
	}
}

func TestSQLiteTokens(t *testing.T) {
	got, err := SQLite("-- c\nALTER TABLE \"My \"\"T\"\"\" RENAME COLUMN [old] TO `new`;")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d statements, want 1", len(got))
	}
	var idents []string
	for _, tok := range got[0].Tokens {
		idents = append(idents, tok.Ident())
	}
	want := []string{"ALTER", "TABLE", `My "T"`, "RENAME", "COLUMN", "old", "TO", "new"}
	if diff := cmp.Diff(want, idents); diff != "" {
		t.Errorf("token identifiers mismatch (-want +got):\n%s", diff)
	}
	if tok := got[0].Tokens[0]; !tok.Is("alter") || tok.Offset != 5 {
		t.Errorf("first token: got %+v, want the word ALTER at offset 5", tok)
	}
}

func TestSQLiteErrors(t *testing.T) {
	tests := []struct {
		name     string
		sql      string
		wantLine int
		wantMsg  string
	}{
		{name: "unterminated string", sql: "SELECT 1;\n\nSELECT 'abc;", wantLine: 3, wantMsg: "unterminated"},
		{name: "unterminated identifier", sql: "SELECT \"abc;", wantLine: 1, wantMsg: "unterminated"},
		{name: "unterminated bracket", sql: "SELECT 1;\nSELECT [abc;", wantLine: 2, wantMsg: "unterminated"},
		{name: "trigger without END", sql: "SELECT 1;\nCREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; ", wantLine: 2, wantMsg: "no END"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SQLite(tt.sql)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("SQLite(%q): got error %v, want an *Error", tt.sql, err)
			}
			if se.Line != tt.wantLine {
				t.Errorf("line: got %d, want %d (%v)", se.Line, tt.wantLine, se)
			}
			if !strings.Contains(se.Msg, tt.wantMsg) {
				t.Errorf("message: got %q, want it to contain %q", se.Msg, tt.wantMsg)
			}
		})
	}
}

func FuzzSQLite(f *testing.F) {
	for _, s := range []string{
		"SELECT 1; SELECT 2",
		"-- c\nCREATE TABLE a (id int);\n/* x */ ALTER TABLE a ADD b text; -- t\n",
		"CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END; SELECT 2;",
		"EXPLAIN CREATE TEMP TRIGGER t BEGIN SELECT 1; END",
		"INSERT INTO \"a;\" VALUES ('b;''c', [d;], `e;`);",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		stmts, err := SQLite(sql)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Line < 1 {
				t.Errorf("got error %v, want an *Error with a line", err)
			}
			return
		}
		checkSplit(t, sql, stmts)
		for _, s := range stmts {
			if len(s.Tokens) == 0 {
				t.Errorf("statement %q has no tokens", s.SQL)
			}
		}
		again, err := SQLite(joinStatements(stmts))
		if err != nil {
			t.Fatalf("re-joined statements do not split: %v", err)
		}
		if diff := cmp.Diff(sqlOf(stmts), sqlOf(again)); diff != "" {
			t.Errorf("re-joined statements split differently (-first +again):\n%s", diff)
		}
	})
}
