package migrate

import "testing"

func TestLintUsesEachPhase(t *testing.T) {
	for _, tt := range []struct {
		header string
		blocks bool
	}{
		{"", true},
		{"-- cutover:phase contract\n", false},
	} {
		dir := writeFiles(t, t.TempDir(), map[string]string{
			"1-drop.up.sql":   tt.header + "ALTER TABLE users DROP COLUMN name;\n",
			"1-drop.down.sql": "ALTER TABLE users ADD COLUMN name text;\n",
		})
		blocks := false
		for _, f := range Lint(load(t, dir), DialectPostgres) {
			if f.Blocks() && f.Rule == "drop-column" {
				blocks = true
			}
		}
		if blocks != tt.blocks {
			t.Errorf("DROP COLUMN with header %q: got blocking %v, want %v", tt.header, blocks, tt.blocks)
		}
	}
}
