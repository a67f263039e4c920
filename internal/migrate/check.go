package migrate

import "github.com/cutover/cutover/internal/migrate/lint"

// Lint runs the static safety rules over the up scripts of set, each in its
// own phase, for dialect (DialectPostgres or DialectSQLite). It never
// connects. The deploy engine calls it before the expand step and refuses
// the deploy when a finding Blocks().
func Lint(set *Set, dialect string) []lint.Finding {
	files := make([]lint.File, 0, len(set.Migrations))
	for _, m := range set.Migrations {
		files = append(files, lint.File{
			Path:          m.Up.Path,
			SQL:           m.Up.SQL,
			FirstLine:     m.Up.FirstLine,
			Phase:         string(m.Phase),
			Transactional: !m.Up.NoTransaction,
		})
	}
	return lint.Check(files, lint.Options{Dialect: dialect})
}
