package schema

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// userSchemas is the catalog filter for "not a system schema".
const userSchemas = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
	AND n.nspname NOT LIKE 'pg_temp_%' AND n.nspname NOT LIKE 'pg_toast_temp_%'`

// notExtension leaves out objects that belong to an extension: they are the
// extension's, not the application's, and come back with it.
const notExtension = `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
	AND d.objid = c.oid AND d.deptype = 'e')`

func snapshotPostgres(ctx context.Context, url string) (*Schema, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	cfg.RuntimeParams["application_name"] = "cutover schema"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx) // A close error after reading changes nothing.
	// One repeatable-read, read-only transaction: every query sees the same
	// catalog state even while migrations run.
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) // Read-only; nothing to keep.

	s := newSchema(DialectPostgres)
	steps := []struct {
		what string
		fn   func(context.Context, pgx.Tx, *Schema) error
	}{
		{"tables and columns", pgColumns},
		{"constraints", pgConstraints},
		{"indexes", pgIndexes},
		{"enums", pgEnums},
		{"views", pgViews},
	}
	for _, st := range steps {
		if err := st.fn(ctx, tx, s); err != nil {
			return nil, fmt.Errorf("read %s: %w", st.what, err)
		}
	}
	return s, nil
}

func pgColumns(ctx context.Context, tx pgx.Tx, s *Schema) error {
	rows, err := tx.Query(ctx, `
SELECT n.nspname, c.relname, a.attname, lower(format_type(a.atttypid, a.atttypmod)),
	a.attnotnull, coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''), a.attidentity::text, a.attgenerated::text
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND `+userSchemas+` AND `+notExtension+`
ORDER BY n.nspname, c.relname, a.attnum`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var nsp, rel string
		var name, typ, def, identity, generated *string
		var notNull *bool
		if err := rows.Scan(&nsp, &rel, &name, &typ, &notNull, &def, &identity, &generated); err != nil {
			return err
		}
		key := nsp + "." + rel
		t := s.Tables[key]
		if t == nil {
			t = &Table{}
			s.Tables[key] = t
		}
		if name == nil { // A table without columns.
			continue
		}
		col := &Column{Name: *name, Type: *typ, NotNull: *notNull}
		if *generated == "s" {
			col.Generated = *def
		} else {
			col.Default = *def
		}
		switch *identity {
		case "a":
			col.Identity = "always"
		case "d":
			col.Identity = "by-default"
		}
		t.Columns = append(t.Columns, col)
	}
	return rows.Err()
}

func pgConstraints(ctx context.Context, tx pgx.Tx, s *Schema) error {
	rows, err := tx.Query(ctx, `
SELECT n.nspname, c.relname, co.conname, co.contype::text, pg_get_constraintdef(co.oid),
	coalesce((SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(co.conkey) WITH ORDINALITY k(attnum, i)
		JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.attnum), '{}')
FROM pg_constraint co
JOIN pg_class c ON c.oid = co.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE co.contype IN ('c', 'u', 'f', 'p', 'x') AND c.relkind IN ('r', 'p') AND NOT c.relispartition
	AND co.conparentid = 0 AND `+userSchemas+` AND `+notExtension)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var nsp, rel, name, typ, def string
		var cols []string
		if err := rows.Scan(&nsp, &rel, &name, &typ, &def, &cols); err != nil {
			return err
		}
		t := s.Tables[nsp+"."+rel]
		if t == nil {
			continue
		}
		kind := map[string]string{"c": ConstraintCheck, "u": ConstraintUnique, "f": ConstraintForeignKey, "x": ConstraintExclusion}[typ]
		if typ == "p" {
			t.PrimaryKey = cols
			continue
		}
		t.Constraints = append(t.Constraints, &Constraint{Name: name, Kind: kind, Def: def, Columns: cols})
	}
	return rows.Err()
}

// indexName matches the name part of pg_get_indexdef's output.
var indexName = regexp.MustCompile(`^(CREATE (?:UNIQUE )?INDEX )\S+ (ON )`)

func pgIndexes(ctx context.Context, tx pgx.Tx, s *Schema) error {
	rows, err := tx.Query(ctx, `
SELECT n.nspname, c.relname, ic.relname, pg_get_indexdef(i.indexrelid), i.indisunique,
	coalesce((SELECT array_agg(coalesce(a.attname, '(expression)') ORDER BY k.i)
		FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, i)
		LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum), '{}')
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND `+userSchemas+` AND `+notExtension+`
	AND NOT EXISTS (SELECT 1 FROM pg_constraint co WHERE co.conindid = i.indexrelid AND co.contype IN ('p', 'u', 'x'))`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var nsp, rel, name, def string
		var unique bool
		var cols []string
		if err := rows.Scan(&nsp, &rel, &name, &def, &unique, &cols); err != nil {
			return err
		}
		t := s.Tables[nsp+"."+rel]
		if t == nil {
			continue
		}
		def = indexName.ReplaceAllString(def, "${1}${2}")
		t.Indexes = append(t.Indexes, &Index{Name: nsp + "." + name, Def: def, Unique: unique, Columns: cols})
	}
	return rows.Err()
}

func pgEnums(ctx context.Context, tx pgx.Tx, s *Schema) error {
	rows, err := tx.Query(ctx, `
SELECT n.nspname, t.typname, e.enumlabel
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN pg_enum e ON e.enumtypid = t.oid
WHERE `+userSchemas+`
ORDER BY n.nspname, t.typname, e.enumsortorder`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var nsp, typ, label string
		if err := rows.Scan(&nsp, &typ, &label); err != nil {
			return err
		}
		key := nsp + "." + typ
		s.Enums[key] = append(s.Enums[key], label)
	}
	return rows.Err()
}

func pgViews(ctx context.Context, tx pgx.Tx, s *Schema) error {
	rows, err := tx.Query(ctx, `
SELECT n.nspname, c.relname, c.relkind::text, pg_get_viewdef(c.oid, true),
	coalesce((SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
		WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND `+userSchemas+` AND `+notExtension)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var nsp, rel, kind, def string
		var cols []string
		if err := rows.Scan(&nsp, &rel, &kind, &def, &cols); err != nil {
			return err
		}
		key := nsp + "." + rel
		def = collapseSpace(def)
		if kind == "m" {
			def = "MATERIALIZED " + def
		}
		s.Views[key] = def
		s.ViewColumns[key] = cols
	}
	return rows.Err()
}

// collapseSpace replaces each run of white space with one blank and trims
// the ends, so that formatting does not count as a change.
func collapseSpace(s string) string { return strings.Join(strings.Fields(s), " ") }
