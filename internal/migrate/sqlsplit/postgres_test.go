package sqlsplit

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// split is what a test expects of one statement.
type split struct {
	SQL      string
	Line     int
	Comments []string
}

func summarize(stmts []Statement) []split {
	var out []split
	for _, s := range stmts {
		out = append(out, split{SQL: s.SQL, Line: s.Line, Comments: s.Comments})
	}
	return out
}

func TestPostgres(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []split
	}{
		{
			name: "two statements on their lines",
			sql:  "CREATE TABLE a (id int);\n\nALTER TABLE a ADD COLUMN b text;\n",
			want: []split{
				{SQL: "CREATE TABLE a (id int)", Line: 1},
				{SQL: "ALTER TABLE a ADD COLUMN b text", Line: 3},
			},
		},
		{
			name: "leading comments are kept apart",
			sql:  "-- cutover:phase contract\n/* block */\n-- cutover:allow drop-column old\n  ALTER TABLE a DROP COLUMN b;",
			want: []split{{
				SQL:      "ALTER TABLE a DROP COLUMN b",
				Line:     4,
				Comments: []string{"-- cutover:phase contract", "/* block */", "-- cutover:allow drop-column old"},
			}},
		},
		{
			name: "a comment after a statement on its line is not the next one's",
			sql:  "SELECT 1; -- about select 1\n-- about select 2\nSELECT 2; /* trailing */",
			want: []split{
				{SQL: "SELECT 1", Line: 1},
				{SQL: "SELECT 2", Line: 3, Comments: []string{"-- about select 2"}},
			},
		},
		{
			name: "comments inside a statement stay in it",
			sql:  "SELECT 1 -- one\n  + 2 /* two */ -- end\n;",
			want: []split{{SQL: "SELECT 1 -- one\n  + 2", Line: 1}},
		},
		{
			name: "dollar quotes hold semicolons",
			sql:  "CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $$ not the end $$; $fn$ LANGUAGE sql;\nSELECT 2;",
			want: []split{
				{SQL: "CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $$ not the end $$; $fn$ LANGUAGE sql", Line: 1},
				{SQL: "SELECT 2", Line: 2},
			},
		},
		{
			name: "E strings with escaped quotes",
			sql:  "INSERT INTO t VALUES (E'it\\'s; fine');\nSELECT 'a''b;c';",
			want: []split{
				{SQL: "INSERT INTO t VALUES (E'it\\'s; fine')", Line: 1},
				{SQL: "SELECT 'a''b;c'", Line: 2},
			},
		},
		{
			name: "nested block comments",
			sql:  "/* outer /* inner; */ still; */ SELECT 1;",
			want: []split{{SQL: "SELECT 1", Line: 1, Comments: []string{"/* outer /* inner; */ still; */"}}},
		},
		{
			name: "BEGIN ATOMIC body",
			sql:  "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND;\nSELECT 3;",
			want: []split{
				{SQL: "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND", Line: 1},
				{SQL: "SELECT 3", Line: 6},
			},
		},
		{
			name: "DO block",
			sql:  "DO $$\nBEGIN\n  PERFORM 1;\nEND\n$$;\nCREATE INDEX CONCURRENTLY i ON t (a);",
			want: []split{
				{SQL: "DO $$\nBEGIN\n  PERFORM 1;\nEND\n$$", Line: 1},
				{SQL: "CREATE INDEX CONCURRENTLY i ON t (a)", Line: 6},
			},
		},
		{
			name: "empty and comment-only statements are dropped",
			sql:  ";;\n-- only a comment\n;\n\n-- kept\nSELECT 1;;\n-- at the end\n",
			want: []split{{SQL: "SELECT 1", Line: 6, Comments: []string{"-- only a comment", "-- kept"}}},
		},
		{
			name: "no terminating semicolon",
			sql:  "SELECT 1;\nSELECT 2 -- no semicolon",
			want: []split{{SQL: "SELECT 1", Line: 1}, {SQL: "SELECT 2", Line: 2}},
		},
		{
			name: "multibyte text before a statement",
			sql:  "SELECT 'héllo wörld';\n-- ünïcode\nSELECT 'ß';",
			want: []split{
				{SQL: "SELECT 'héllo wörld'", Line: 1},
				{SQL: "SELECT 'ß'", Line: 3, Comments: []string{"-- ünïcode"}},
			},
		},
		{name: "empty", sql: "", want: nil},
		{name: "only comments", sql: "-- nothing\n/* here */", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Postgres(tt.sql)
			if err != nil {
				t.Fatalf("Postgres(%q): %v", tt.sql, err)
			}
			if diff := cmp.Diff(tt.want, summarize(got)); diff != "" {
				t.Errorf("Postgres(%q) mismatch (-want +got):\n%s", tt.sql, diff)
			}
			for _, s := range got {
				if s.Tree == nil {
					t.Errorf("statement %q: Tree is nil", s.SQL)
				}
				if s.Tokens != nil {
					t.Errorf("statement %q: Tokens = %v, want nil for Postgres", s.SQL, s.Tokens)
				}
				if g := tt.sql[s.Offset : s.Offset+len(s.SQL)]; g != s.SQL {
					t.Errorf("text at Offset %d: got %q, want %q", s.Offset, g, s.SQL)
				}
			}
		})
	}
}

func TestPostgresTree(t *testing.T) {
	got, err := Postgres("ALTER TABLE a DROP COLUMN b;\nCREATE INDEX CONCURRENTLY i ON a (c);")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d statements, want 2", len(got))
	}
	if got[0].Tree.GetAlterTableStmt() == nil {
		t.Errorf("statement 1: got %T, want an AlterTableStmt", got[0].Tree.GetNode())
	}
	if idx := got[1].Tree.GetIndexStmt(); idx == nil || !idx.Concurrent {
		t.Errorf("statement 2: got %v, want a concurrent IndexStmt", got[1].Tree)
	}
}

func TestPostgresErrors(t *testing.T) {
	tests := []struct {
		name     string
		sql      string
		wantLine int
		wantMsg  string
	}{
		{name: "syntax error", sql: "SELECT 1;\n\nALTER TABLE a DROPP COLUMN b;", wantLine: 3, wantMsg: "syntax error"},
		{name: "after multibyte text", sql: "SELECT 'ééééé';\nSELEC 2;", wantLine: 2, wantMsg: "syntax error"},
		{name: "unterminated dollar quote", sql: "SELECT 1;\nDO $$ BEGIN", wantLine: 2, wantMsg: "unterminated dollar-quoted string"},
		{name: "unterminated string", sql: "\n\nSELECT 'abc", wantLine: 3, wantMsg: "unterminated quoted string"},
		{name: "NUL byte", sql: "SELECT 1;\nSELECT 2\x00;", wantLine: 2, wantMsg: "NUL byte"},
		// The parse tree does not say where a name is: the line is found in
		// the script, past comments, which may hold any bytes.
		{name: "invalid UTF-8 in a name", sql: "SELECT 1;\n-- \xfe\nDROP TABLE\n  \"a\xffb\";", wantLine: 4, wantMsg: "not valid UTF-8"},
		{name: "invalid UTF-8 in a string", sql: "/* \xff */\n\nSELECT 'x\xc3';", wantLine: 3, wantMsg: "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Postgres(tt.sql)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Postgres(%q): got error %v, want an *Error", tt.sql, err)
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

func FuzzPostgres(f *testing.F) {
	for _, s := range []string{
		"SELECT 1; SELECT 2",
		"-- c\nCREATE TABLE a (id int);\n/* x */ ALTER TABLE a ADD b text; -- t\n",
		"CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $fn$ LANGUAGE sql;",
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;",
		"DO $$ BEGIN PERFORM 1; END $$;;",
		"SELECT E'a\\';b';",
		"/* a /* b */ c */ SELECT 'ü';",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		stmts, err := Postgres(sql)
		if err != nil {
			var se *Error
			if errors.As(err, &se) && se.Line < 1 {
				t.Errorf("error line: got %d, want ≥ 1", se.Line)
			}
			return
		}
		checkSplit(t, sql, stmts)
		again, err := Postgres(joinStatements(stmts))
		if err != nil {
			t.Fatalf("re-joined statements do not parse: %v", err)
		}
		if diff := cmp.Diff(sqlOf(stmts), sqlOf(again)); diff != "" {
			t.Errorf("re-joined statements split differently (-first +again):\n%s", diff)
		}
	})
}

// checkSplit checks the invariants of any split of sql.
func checkSplit(t *testing.T, sql string, stmts []Statement) {
	t.Helper()
	prevLine, prevEnd := 0, 0
	for _, s := range stmts {
		if s.SQL == "" {
			t.Errorf("empty statement at line %d", s.Line)
		}
		if s.Offset < prevEnd || s.Offset+len(s.SQL) > len(sql) || sql[s.Offset:s.Offset+len(s.SQL)] != s.SQL {
			t.Fatalf("statement %q is not at offset %d of the input", s.SQL, s.Offset)
		}
		if want := strings.Count(sql[:s.Offset], "\n") + 1; s.Line != want {
			t.Errorf("statement %q: got line %d, want %d", s.SQL, s.Line, want)
		}
		if s.Line < prevLine {
			t.Errorf("statement %q: line %d before previous line %d", s.SQL, s.Line, prevLine)
		}
		prevLine, prevEnd = s.Line, s.Offset+len(s.SQL)
	}
}

func joinStatements(stmts []Statement) string {
	return strings.Join(sqlOf(stmts), ";\n")
}

func sqlOf(stmts []Statement) []string {
	var out []string
	for _, s := range stmts {
		out = append(out, s.SQL)
	}
	return out
}
