package schema

import (
	"context"
	"fmt"
	"slices"

	"github.com/cutover/cutover/internal/migrate"
)

// The dialects of a Schema, the same words as migrate's.
const (
	DialectPostgres = migrate.DialectPostgres
	DialectSQLite   = migrate.DialectSQLite
)

// Schema is the structure of one database at one moment: what an
// application's queries can depend on. It is JSON-serialisable with a
// stable encoding (maps are encoded in key order, slices are sorted), so a
// release can store the schema it went live on and a later rollback can
// diff against it.
type Schema struct {
	// Dialect is DialectPostgres or DialectSQLite.
	Dialect string `json:"dialect"`
	// Tables by name: "schema.table" on PostgreSQL ("public.users"), the
	// bare name on SQLite ("users").
	Tables map[string]*Table `json:"tables"`
	// Enums maps an enum type ("public.mood") to its values in their sort
	// order. PostgreSQL only.
	Enums map[string][]string `json:"enums,omitempty"`
	// Views maps a view (or materialized view), named like a table, to its
	// definition with whitespace collapsed.
	Views map[string]string `json:"views,omitempty"`
	// ViewColumns maps a view to its output columns, in order: what a query
	// on the view can select.
	ViewColumns map[string][]string `json:"view_columns,omitempty"`
}

// Table is one table of a Schema.
type Table struct {
	// Columns in their position order.
	Columns []*Column `json:"columns"`
	// PrimaryKey lists the primary key's columns in key order; empty when
	// the table has none.
	PrimaryKey []string `json:"primary_key,omitempty"`
	// Indexes sorted by name. Indexes that back a constraint (primary key,
	// unique, exclusion) are listed under Constraints, not here.
	Indexes []*Index `json:"indexes,omitempty"`
	// Constraints (check, unique, foreign key, exclusion) sorted by
	// definition. The primary key is PrimaryKey; NOT NULL is
	// Column.NotNull.
	Constraints []*Constraint `json:"constraints,omitempty"`
}

// Column is one column of a Table.
type Column struct {
	Name string `json:"name"`
	// Type as the database spells it, normalised to lower case:
	// "character varying(100)", "integer", "numeric(10,2)"; on SQLite the
	// declared type ("varchar(100)"), "" when none was declared.
	Type    string `json:"type"`
	NotNull bool   `json:"not_null,omitempty"`
	// Default is the default expression, "" when there is none.
	Default string `json:"default,omitempty"`
	// Identity is "always" or "by-default" for an identity column, else "".
	Identity string `json:"identity,omitempty"`
	// Generated is the expression of a generated column, else "".
	Generated string `json:"generated,omitempty"`
}

// Index is one index that does not back a constraint.
type Index struct {
	Name string `json:"name"`
	// Def is the index's definition with its name left out, so that an
	// index renamed but otherwise equal compares equal:
	// "CREATE INDEX ON public.users USING btree (email)".
	Def     string   `json:"def"`
	Unique  bool     `json:"unique,omitempty"`
	Columns []string `json:"columns,omitempty"`
}

// Constraint kinds.
const (
	ConstraintCheck      = "check"
	ConstraintUnique     = "unique"
	ConstraintForeignKey = "foreign-key"
	ConstraintExclusion  = "exclusion"
)

// Constraint is a check, unique, foreign key or exclusion constraint.
type Constraint struct {
	Name string `json:"name,omitempty"`
	// Kind is one of the Constraint* constants.
	Kind string `json:"kind"`
	// Def is the definition as the database prints it:
	// "CHECK ((length(email) > 3))", "FOREIGN KEY (org_id) REFERENCES public.orgs(id)".
	Def string `json:"def"`
	// Columns the constraint covers; empty when unknown (a SQLite check).
	Columns []string `json:"columns,omitempty"`
}

// Column returns the column named name, or nil.
func (t *Table) Column(name string) *Column {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (t *Table) sort() {
	slices.SortFunc(t.Indexes, func(a, b *Index) int { return compareStrings(a.Name, b.Name) })
	slices.SortFunc(t.Constraints, func(a, b *Constraint) int {
		if c := compareStrings(a.Kind, b.Kind); c != 0 {
			return c
		}
		if c := compareStrings(a.Def, b.Def); c != 0 {
			return c
		}
		return compareStrings(a.Name, b.Name)
	})
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func newSchema(dialect string) *Schema {
	return &Schema{
		Dialect:     dialect,
		Tables:      map[string]*Table{},
		Enums:       map[string][]string{},
		Views:       map[string]string{},
		ViewColumns: map[string][]string{},
	}
}

// Snapshot reads the schema of the database at url: "postgres://…",
// "postgresql://…" or "sqlite:///abs/path", the URL forms of package
// migrate. On PostgreSQL it reads the catalogs of every user schema (not
// pg_catalog, information_schema, pg_toast or temporary schemas); on SQLite
// sqlite_master and the table pragmas.
func Snapshot(ctx context.Context, url string) (*Schema, error) {
	dialect, err := migrate.Dialect(url)
	if err != nil {
		return nil, err
	}
	var s *Schema
	switch dialect {
	case DialectPostgres:
		s, err = snapshotPostgres(ctx, url)
	case DialectSQLite:
		s, err = snapshotSQLite(ctx, url)
	default:
		err = fmt.Errorf("dialect %q not supported", dialect)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot schema of %s: %w", migrate.Redact(url), err)
	}
	for _, t := range s.Tables {
		t.sort()
	}
	// Empty is nil, as after a JSON round trip (omitempty).
	if len(s.Enums) == 0 {
		s.Enums = nil
	}
	if len(s.Views) == 0 {
		s.Views, s.ViewColumns = nil, nil
	}
	return s, nil
}
