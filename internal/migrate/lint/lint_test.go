package lint

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// at is a finding's place and rule.
type at struct {
	Path string
	Line int
	Rule string
}

func places(fs []Finding) []at {
	var out []at
	for _, f := range fs {
		out = append(out, at{Path: f.Path, Line: f.Line, Rule: f.Rule})
	}
	return out
}

func TestLines(t *testing.T) {
	files := []File{
		{
			Path: "migrations/001-users.up.sql",
			SQL: "-- cutover:phase expand\nCREATE TABLE tmp (a int);\n\n" +
				"ALTER TABLE users\n  DROP COLUMN email;\n" +
				"/* one\n   two */ ALTER TABLE users RENAME TO people; DROP TABLE orders;\n",
		},
		{
			// A goose file whose Up section starts on line 10.
			Path: "migrations/002_goose.sql", FirstLine: 10,
			SQL: "\n\nCREATE INDEX users_email ON users (email);",
		},
		{Path: "migrations/003.sql", FirstLine: 5, SQL: "SELECT 1;\nALTER TABLE users ALTER COLUMN id TYPE bigint"},
		{Path: "migrations/004.sql", FirstLine: 3, SQL: "SELECT 1;\n\nSELEC 2;"},
		{Path: "migrations/005.sql", FirstLine: 3, SQL: "SELECT 1;\n\nSELECT 'ü'; ALTER TABLE users ADD COLUMN x int NOT NULL;"},
	}
	got := places(Check(files, Options{}))
	want := []at{
		{"migrations/001-users.up.sql", 4, "drop-column"},
		{"migrations/001-users.up.sql", 7, "rename-table"},
		{"migrations/001-users.up.sql", 7, "drop-table"},
		{"migrations/002_goose.sql", 12, "create-index-blocking"},
		{"migrations/003.sql", 6, "change-column-type"},
		{"migrations/004.sql", 5, "parse-error"},
		{"migrations/005.sql", 5, "add-column-not-null"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("finding places mismatch (-want +got):\n%s", diff)
	}
	// The finding's line is the file's; the parser's own count (line 3 of
	// the SQL, which starts on line 3) must not appear beside it.
	for _, f := range Check(files, Options{}) {
		if f.Rule == "parse-error" && (strings.Contains(f.Why, "line ") || !strings.Contains(f.Why, "syntax error")) {
			t.Errorf("parse-error finding: Why = %q, want the parser's message without a line of its own", f.Why)
		}
	}
}

func TestLinesSQLite(t *testing.T) {
	files := []File{
		{Path: "a.sql", FirstLine: 2, SQL: "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\nEND;\n\nALTER TABLE users DROP COLUMN email;"},
		{Path: "b.sql", SQL: "SELECT 1;\n\nSELECT 'unterminated;"},
	}
	got := places(Check(files, Options{Dialect: DialectSQLite}))
	want := []at{{"a.sql", 6, "drop-column"}, {"b.sql", 3, "parse-error"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("finding places mismatch (-want +got):\n%s", diff)
	}
}

func TestFinding(t *testing.T) {
	got := Check([]File{{
		Path: "migrations/7-drop.up.sql",
		SQL:  "SELECT 1;\n-- a comment\nALTER TABLE users\n    DROP COLUMN email;\n",
	}}, Options{Dialect: DialectPostgres})
	if len(got) != 1 {
		t.Fatalf("got %d findings, want 1: %v", len(got), got)
	}
	f := got[0]
	r := ruleByID["drop-column"]
	want := Finding{
		Path: "migrations/7-drop.up.sql", Line: 3, Rule: "drop-column",
		Statement: "ALTER TABLE users\n    DROP COLUMN email",
		Why:       "column users.email: " + r.Why,
		Fix:       r.Fix,
		Severity:  SeverityError,
	}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("finding mismatch (-want +got):\n%s", diff)
	}
	wantString := "migrations/7-drop.up.sql:3: drop-column: column users.email: " + r.Why + "\n" +
		"  ALTER TABLE users\n" +
		"      DROP COLUMN email\n" +
		"  safe way: " + r.Fix
	if got := f.String(); got != wantString {
		t.Errorf("String():\ngot  %q\nwant %q", got, wantString)
	}
	if !f.Blocks() {
		t.Errorf("Blocks() of an error: got false, want true")
	}

	f.Allowed, f.AllowReason = true, "unused since v41"
	if f.Blocks() {
		t.Errorf("Blocks() of an allowed error: got true, want false")
	}
	if got := f.String(); !strings.HasSuffix(got, "\n  allowed: unused since v41") {
		t.Errorf("String() of an allowed finding: got %q, want it to end with the reason", got)
	}
	f.Allowed, f.Severity = false, SeverityWarning
	if f.Blocks() {
		t.Errorf("Blocks() of a warning: got true, want false")
	}
}

func TestAllowComments(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string
	}{
		{
			name: "allow applies to the next statement only",
			sql:  "-- cutover:allow drop-table retired in v40\nDROP TABLE a;\nDROP TABLE b;",
			want: []string{"drop-table:error:allowed", "drop-table:error"},
		},
		{
			name: "a trailing comment does not allow the next statement",
			sql:  "SELECT 1; -- cutover:allow drop-table retired in v40\nDROP TABLE b;",
			want: []string{"drop-table:error"},
		},
		{
			name: "allow for another rule accepts nothing",
			sql:  "-- cutover:allow drop-column retired in v40\nDROP TABLE b;",
			want: []string{"drop-table:error"},
		},
		{
			name: "block comment with tab",
			sql:  "/* cutover:allow\tdrop-table\tretired in v40 */\nDROP TABLE b;",
			want: []string{"drop-table:error:allowed"},
		},
		{
			name: "other cutover comments are ignored",
			sql:  "-- cutover:phase expand\n-- cutover:allowance is not an allow\nDROP TABLE b;",
			want: []string{"drop-table:error"},
		},
		{
			name: "an allow comment cannot accept a broken allow",
			sql:  "-- cutover:allow allow-without-reason because\n-- cutover:allow drop-table\nDROP TABLE b;",
			want: []string{"allow-without-reason:error", "drop-table:error"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check([]File{{Path: "m.sql", SQL: tt.sql}}, Options{})
			if diff := cmp.Diff(tt.want, summarize(got)); diff != "" {
				t.Errorf("Check(%q) mismatch (-want +got):\n%s", tt.sql, diff)
			}
		})
	}
	got := Check([]File{{Path: "m.sql", SQL: "-- cutover:allow drop-table retired in v40\nDROP TABLE b;"}}, Options{})
	if len(got) != 1 || got[0].AllowReason != "retired in v40" {
		t.Errorf("got %v, want one finding with reason %q", got, "retired in v40")
	}
}

func TestPhaseAndDialectDefaults(t *testing.T) {
	sql := "ALTER TABLE users DROP COLUMN email;"
	for _, phase := range []string{"", "EXPAND", "later"} {
		got := summarize(Check([]File{{Path: "m.sql", SQL: sql, Phase: phase}}, Options{}))
		if diff := cmp.Diff([]string{"drop-column:error"}, got); diff != "" {
			t.Errorf("phase %q is checked as expand (-want +got):\n%s", phase, diff)
		}
	}
	got := Check([]File{{Path: "m.sql", SQL: sql}}, Options{Dialect: "mysql"})
	if len(got) != 1 || got[0].Rule != "parse-error" || !strings.Contains(got[0].Why, `"mysql"`) {
		t.Errorf("unknown dialect: got %v, want one parse-error naming the dialect", got)
	}
	if got := Check(nil, Options{}); got != nil {
		t.Errorf("no files: got %v, want nil", got)
	}
}

func FuzzCheck(f *testing.F) {
	for _, tc := range ruleCases {
		f.Add(tc.sql, tc.sqlite, tc.tx, tc.contract != nil)
	}
	f.Fuzz(func(t *testing.T, sql string, sqlite, tx, contract bool) {
		file := File{Path: "m.sql", SQL: sql, FirstLine: 3, Transactional: tx}
		if contract {
			file.Phase = PhaseContract
		}
		opts := Options{Dialect: DialectPostgres}
		if sqlite {
			opts.Dialect = DialectSQLite
		}
		lines := strings.Count(sql, "\n") + 1
		for _, f := range Check([]File{file}, opts) {
			r, ok := ruleByID[f.Rule]
			if !ok {
				t.Errorf("finding with unknown rule %q", f.Rule)
			}
			if f.Severity != r.Severity && f.Severity != r.Contract {
				t.Errorf("finding %s: got severity %q, want the rule's", f.Rule, f.Severity)
			}
			if f.Line < 3 || f.Line > 3+lines-1 {
				t.Errorf("finding %s: got line %d, want within 3..%d", f.Rule, f.Line, 3+lines-1)
			}
		}
	})
}

func TestVolatileDefaultNote(t *testing.T) {
	// The note names the first call that is not known to be stable, in the
	// order the SQL writes the calls, outer calls before their arguments.
	tests := []struct{ sql, want string }{
		{"ALTER TABLE users ADD COLUMN a float DEFAULT random() + app.f();", "column users.a defaults to random(), which is volatile"},
		{"ALTER TABLE users ADD COLUMN a float DEFAULT app.f() + random();", "column users.a defaults to f(), whose volatility cutover cannot know"},
		{"ALTER TABLE users ADD COLUMN a text DEFAULT lower(g(random()));", "column users.a defaults to g(), whose volatility cutover cannot know"},
		{"ALTER TABLE users ADD COLUMN a int DEFAULT COALESCE(now(), CASE WHEN true THEN nextval('s') END);", "column users.a defaults to nextval(), which is volatile"},
	}
	for _, tt := range tests {
		got := Check([]File{{Path: "m.sql", SQL: tt.sql}}, Options{})
		if len(got) != 1 || got[0].Rule != ruleVolatileDefault || !strings.HasPrefix(got[0].Why, tt.want+": ") {
			t.Errorf("Check(%q): got %v, want one %s finding starting %q", tt.sql, got, ruleVolatileDefault, tt.want)
		}
	}
}
