package schema

import (
	"slices"
	"strings"
	"testing"
)

func TestSQLiteChecks(t *testing.T) {
	for _, tt := range []struct {
		sql  string
		want []string
	}{
		{`CREATE TABLE t (a INT CHECK (a > 0), b TEXT)`, []string{"CHECK (a > 0)"}},
		{`CREATE TABLE t (a INT, CONSTRAINT c CHECK(length(b) > (1 + 2)), b TEXT check (b <> ')'))`, []string{"CHECK (length(b) > (1 + 2))", "CHECK (b <> ')')"}},
		{`CREATE TABLE t (a TEXT DEFAULT 'check (x)', "check" INT, recheck INT)`, nil},
		{`CREATE TABLE t (a INT CHECK (a > 0`, nil},
	} {
		if got := sqliteChecks(tt.sql); !slices.Equal(got, tt.want) {
			t.Errorf("sqliteChecks(%q) = %q, want %q", tt.sql, got, tt.want)
		}
	}
}

func FuzzSQLiteChecks(f *testing.F) {
	f.Add(`CREATE TABLE t (a INT CHECK (a > 0), b TEXT check (b <> ')'))`)
	f.Add(`CREATE TABLE t (a TEXT DEFAULT 'check (x)', "check" INT)`)
	f.Add(`check(`)
	f.Fuzz(func(t *testing.T, sql string) {
		for _, c := range sqliteChecks(sql) {
			if !strings.HasPrefix(strings.ToUpper(c), "CHECK") || !strings.HasSuffix(c, ")") {
				t.Errorf("sqliteChecks(%q) returned %q", sql, c)
			}
		}
	})
}
