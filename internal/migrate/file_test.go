package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		base, format string
		want         Name
		err          string
	}{
		{"20200823093500-add-users.up.sql", FormatAuto, Name{ID: "20200823093500", Name: "add-users", Format: FormatNative, Direction: "up"}, ""},
		{"1-x.down.sql", FormatAuto, Name{ID: "1", Name: "x", Format: FormatNative, Direction: "down"}, ""},
		{"0001_init.up.sql", FormatAuto, Name{ID: "1", Name: "init", Format: FormatGolangMigrate, Direction: "up"}, ""},
		{"20170506082420_create_table.sql", FormatAuto, Name{ID: "20170506082420", Name: "create_table", Format: FormatGoose}, ""},
		{"V12__add_index.sql", FormatAuto, Name{ID: "12", Name: "add_index", Format: FormatFlyway}, ""},
		{"V1.1__dotted.sql", FormatFlyway, Name{ID: "1.1", Name: "dotted", Format: FormatFlyway}, ""},
		{"V2_0_03__underscores.sql", FormatAuto, Name{ID: "2.0.3", Name: "underscores", Format: FormatFlyway}, ""},
		{"R__views.sql", FormatAuto, Name{ID: "R__views", Name: "views", Format: FormatFlyway}, ""},
		{"V1..1__x.sql", FormatFlyway, Name{}, ErrNotMigration.Error()},
		{"99999999999999999999-big.up.sql", FormatNative, Name{}, "below 2⁶³"},
		{"9223372036854775808-big.up.sql", FormatNative, Name{}, "below 2⁶³"},
		{"readme.sql", FormatAuto, Name{}, ErrNotMigration.Error()},
		{"1_init.up.sql", FormatGoose, Name{}, ErrNotMigration.Error()},
		{"1_init.up.sql", "liquibase", Name{}, "unknown migration format"},
	}
	for _, tt := range tests {
		got, err := ParseName(tt.base, tt.format)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseName(%q, %q): got error %v, want one containing %q", tt.base, tt.format, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseName(%q, %q): %v", tt.base, tt.format, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseName(%q, %q): got %+v, want %+v", tt.base, tt.format, got, tt.want)
		}
	}
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		sql  string
		want Header
		err  string
	}{
		{"CREATE TABLE t (x int);", Header{Phase: Expand}, ""},
		{"-- cutover:phase contract\nALTER TABLE t DROP COLUMN x;", Header{Phase: Contract}, ""},
		{"\n-- a comment\n--cutover:no-transaction\n-- cutover:phase expand\nCREATE INDEX CONCURRENTLY i ON t (x);", Header{Phase: Expand, NoTransaction: true}, ""},
		{"-- +goose NO TRANSACTION\n-- +goose Up\nSELECT 1;", Header{Phase: Expand, NoTransaction: true}, ""},
		{"-- cutover:allow drop-column the column is unused since v12\nALTER TABLE t DROP COLUMN x;", Header{Phase: Expand}, ""},
		// Directives after the first statement are not headers.
		{"SELECT 1;\n-- cutover:phase contract\n", Header{Phase: Expand}, ""},
		{"-- cutover:phase later\n", Header{}, "line 1"},
		{"-- cutover:phase expand\n-- cutover:phase contract\n", Header{}, "line 2: phase given twice"},
		{"\n-- cutover:no-transation\n", Header{}, `line 2: unknown directive "cutover:no-transation"`},
		{"-- cutover:no-transaction please\n", Header{}, "takes no argument"},
		{"-- cutover:\n", Header{}, "empty cutover directive"},
	}
	for _, tt := range tests {
		got, err := ParseHeader(tt.sql)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseHeader(%q): got error %v, want one containing %q", tt.sql, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseHeader(%q): %v", tt.sql, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseHeader(%q): got %+v, want %+v", tt.sql, got, tt.want)
		}
	}
}

// writeFiles creates dir/name for each entry and returns dir.
func writeFiles(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDirFormats(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		format string
		ids    []Version
		down   []bool
	}{
		{"native", map[string]string{
			"20200823093500-b.up.sql": "SELECT 2;", "20200823093500-b.down.sql": "SELECT -2;",
			"3-a.up.sql": "SELECT 1;", "3-a.down.sql": "SELECT -1;",
			"README.md": "ignored", ".hidden.sql": "ignored",
		}, FormatNative, []Version{"3", "20200823093500"}, []bool{true, true}},
		{"golang-migrate", map[string]string{
			"2_b.up.sql": "SELECT 2;", "2_b.down.sql": "SELECT -2;",
			"10_c.up.sql": "SELECT 3;", "10_c.down.sql": "SELECT -3;",
		}, FormatGolangMigrate, []Version{"2", "10"}, []bool{true, true}},
		{"goose", map[string]string{
			"00001_a.sql": "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT -1;\n",
			"00002_b.sql": "-- +goose Up\nSELECT 2;\n",
		}, FormatGoose, []Version{"1", "2"}, []bool{true, false}},
		{"flyway", map[string]string{"V1__a.sql": "SELECT 1;", "V2__b.sql": "SELECT 2;"}, FormatFlyway, []Version{"1", "2"}, []bool{false, false}},
		// Up-only projects: a missing down file means "no down".
		{"golang-migrate up-only", map[string]string{
			"1_a.up.sql": "SELECT 1;", "2_b.up.sql": "SELECT 2;", "2_b.down.sql": "SELECT -2;",
		}, FormatGolangMigrate, []Version{"1", "2"}, []bool{false, true}},
		{"native up-only", map[string]string{"1-a.up.sql": "SELECT 1;", "2-b.up.sql": "SELECT 2;"},
			FormatNative, []Version{"1", "2"}, []bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, t.TempDir(), tt.files)
			set, err := LoadDir(dir, FormatAuto)
			if err != nil {
				t.Fatalf("LoadDir: %v", err)
			}
			if set.Format != tt.format {
				t.Errorf("format: got %q, want %q", set.Format, tt.format)
			}
			if len(set.Migrations) != len(tt.ids) {
				t.Fatalf("got %d migrations, want %d", len(set.Migrations), len(tt.ids))
			}
			for i, m := range set.Migrations {
				if m.ID != tt.ids[i] {
					t.Errorf("migration %d: got id %d, want %d", i, m.ID, tt.ids[i])
				}
				if hasDown := m.Down != nil; hasDown != tt.down[i] {
					t.Errorf("migration %d: got down %v, want %v", m.ID, hasDown, tt.down[i])
				}
				if m.Checksum != Checksum(m.Up.SQL) {
					t.Errorf("migration %d: checksum %q is not that of its up SQL", m.ID, m.Checksum)
				}
			}
		})
	}
}

func TestLoadDirGooseSections(t *testing.T) {
	body := `-- +goose NO TRANSACTION
-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION f();
`
	dir := writeFiles(t, t.TempDir(), map[string]string{"00005_f.sql": body})
	set, err := LoadDir(dir, FormatGoose)
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	m := set.Migrations[0]
	if !m.Up.NoTransaction || m.Down == nil || !m.Down.NoTransaction {
		t.Fatalf("NO TRANSACTION not applied to both sections: up %v, down %+v", m.Up.NoTransaction, m.Down)
	}
	if strings.Contains(m.Up.SQL, "DROP FUNCTION") {
		t.Errorf("up section contains the down SQL: %q", m.Up.SQL)
	}
	if got, want := m.Down.FirstLine, 7; got != want {
		t.Errorf("down FirstLine: got %d, want %d", got, want)
	}
	if !strings.Contains(m.Down.SQL, "DROP FUNCTION f();") {
		t.Errorf("down section: got %q, want the DROP", m.Down.SQL)
	}
}

func TestLoadDirErrors(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		format string
		want   []string
	}{
		{"missing up", map[string]string{"1_a.down.sql": "SELECT 1;"}, FormatAuto,
			[]string{"1_a.down.sql has no up file 1_a.up.sql"}},
		{"duplicate id", map[string]string{
			"1-a.up.sql": "SELECT 1;", "1-a.down.sql": "SELECT 1;",
			"01-b.up.sql": "SELECT 1;", "01-b.down.sql": "SELECT 1;",
		}, FormatAuto, []string{"duplicate id 1", "1-a", "01-b"}},
		{"mixed formats", map[string]string{"1-a.up.sql": "", "1-a.down.sql": "", "V2__b.sql": ""}, FormatAuto,
			[]string{"mixes formats", "V2__b.sql is flyway"}},
		{"stray sql file", map[string]string{"1-a.up.sql": "", "1-a.down.sql": "", "seed.sql": ""}, FormatAuto,
			[]string{"seed.sql: not a migration file name"}},
		{"wrong forced format", map[string]string{"1-a.up.sql": "", "1-a.down.sql": ""}, FormatFlyway,
			[]string{"1-a.down.sql: does not match the flyway format"}},
		{"bad header", map[string]string{"1-a.up.sql": "-- cutover:phase never\nSELECT 1;", "1-a.down.sql": ""}, FormatAuto,
			[]string{"1-a.up.sql: line 1"}},
		{"goose without up", map[string]string{"1_a.sql": "SELECT 1;"}, FormatAuto,
			[]string{"1_a.sql: no -- +goose Up"}},
		{"unknown format", nil, "liquibase", []string{`unknown format "liquibase"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, t.TempDir(), tt.files)
			_, err := LoadDir(dir, tt.format)
			if err == nil {
				t.Fatalf("LoadDir: got no error, want one containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadDir: got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadDirUnreadable(t *testing.T) {
	_, err := LoadDir(filepath.Join(t.TempDir(), "nope"), FormatAuto)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("got %v, want a not-exist error naming the directory", err)
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{"1-a.up.sql", "1_a.down.sql", "1_a.sql", "V1__a.sql", "V1.2__x.sql",
		"99999999999999999999_x.sql", "", "-.up.sql", "V__.sql", "R__x.sql", "V1_1__a.sql", "V1.0__a.sql", "R__.sql"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, base string) {
		n, err := ParseName(base, FormatAuto)
		if err != nil {
			return
		}
		if v, err := ParseVersion(string(n.ID)); err != nil || v != n.ID {
			t.Errorf("ParseName(%q): id %q does not parse back as itself: %q, %v", base, n.ID, v, err)
		}
		again, err := ParseName(base, n.Format)
		if err != nil || again != n {
			t.Errorf("ParseName(%q, %q) = %+v, %v; auto gave %+v", base, n.Format, again, err, n)
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{"-- cutover:phase contract\nSELECT 1;", "--cutover:no-transaction", "-- +goose NO TRANSACTION",
		"-- cutover:", "-- cutover:allow x y", "\n\n--\n", "-- cutover:phase expand\n-- cutover:phase contract"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		h, err := ParseHeader(sql)
		if err == nil && h.Phase != Expand && h.Phase != Contract {
			t.Errorf("ParseHeader(%q): phase %q", sql, h.Phase)
		}
	})
}
