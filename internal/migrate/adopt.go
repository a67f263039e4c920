package migrate

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// The tools Adopt reads the version table of.
const (
	FromGolangMigrate = "golang-migrate" // schema_migrations(version bigint, dirty bool): one row
	FromGoose         = "goose"          // goose_db_version(version_id, is_applied): a log
	FromMigratus      = "migratus"       // schema_migrations(id bigint, applied, description)
	FromFlyway        = "flyway"         // flyway_schema_history(version, success, …)
)

// AdoptTools lists the values Adopt accepts for from.
var AdoptTools = []string{FromGolangMigrate, FromGoose, FromMigratus, FromFlyway}

// DefaultAdoptTable returns the version table another tool uses by
// default.
func DefaultAdoptTable(from string) string {
	switch from {
	case FromGoose:
		return "goose_db_version"
	case FromFlyway:
		return "flyway_schema_history"
	}
	return "schema_migrations"
}

// Adopt records as applied, without running them, the migrations of set
// that another tool's version table (table, or the tool's default when
// empty) says are applied, so a team switches to cutover without running
// anything twice. It refuses a table in a failed state (golang-migrate's
// dirty flag, a failed Flyway row) and a version that has no file in set.
// Migrations already in cutover's table are left alone. It returns the
// migrations it recorded.
func (r *Runner) Adopt(ctx context.Context, set *Set, from, table string) ([]*Migration, error) {
	if !slices.Contains(AdoptTools, from) {
		return nil, fmt.Errorf("adopt: unknown tool %q (want one of %s)", from, strings.Join(AdoptTools, ", "))
	}
	if table == "" {
		table = DefaultAdoptTable(from)
	}
	if !tableName().MatchString(table) {
		return nil, fmt.Errorf("adopt: table name %q: want lower-case letters, digits and '_'", table)
	}
	unlock, err := r.lock(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := r.prepareTable(ctx, set); err != nil {
		return nil, err
	}
	ids, err := r.foreignApplied(ctx, set, from, table)
	if err != nil {
		return nil, fmt.Errorf("adopt from %s table %s: %w", from, table, err)
	}
	rows, err := r.rowsByID(ctx)
	if err != nil {
		return nil, err
	}
	var todo []*Migration
	for _, id := range ids {
		m := set.Find(id)
		if m == nil {
			return nil, fmt.Errorf("adopt from %s: version %s is applied in %s but has no file in %s; add the file (or check --dir) and adopt again", from, id, table, set.Dir)
		}
		if _, ok := rows[id]; ok {
			continue
		}
		todo = append(todo, m)
	}
	release := "adopted from " + from
	err = r.inTx(ctx, func() error {
		for _, m := range todo {
			a := Applied{ID: m.ID, Name: m.Name, Phase: m.Phase, Checksum: m.Checksum, AppliedAt: r.now(),
				Release: release, Status: StatusApplied}
			if err := r.writeRow(ctx, r.conn, a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("adopt from %s: %w", from, err)
	}
	return todo, nil
}

// foreignApplied returns the ids another tool recorded as applied.
func (r *Runner) foreignApplied(ctx context.Context, set *Set, from, table string) ([]Version, error) {
	var ids []Version
	switch from {
	case FromGolangMigrate:
		var version int64
		var dirty bool
		err := r.conn.QueryRowContext(ctx, "SELECT version, dirty FROM "+table).Scan(&version, &dirty)
		if err != nil {
			return nil, err
		}
		if dirty {
			return nil, fmt.Errorf("version %d is marked dirty: golang-migrate failed in the middle of it. Check the schema, finish or undo that migration by hand, clear the flag with `migrate force %d` (or the previous version), then adopt again", version, version)
		}
		for _, m := range set.Migrations {
			if version >= 0 && !m.Repeatable() && m.ID.Compare(VersionOf(uint64(version))) <= 0 {
				ids = append(ids, m.ID)
			}
		}
		return ids, nil
	case FromGoose:
		rows, err := r.conn.QueryContext(ctx, "SELECT version_id, is_applied FROM "+table+" ORDER BY id")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		state := map[Version]bool{}
		for rows.Next() {
			var v int64
			var applied bool
			if err := rows.Scan(&v, &applied); err != nil {
				return nil, err
			}
			if v > 0 { // version 0 is goose's own initial row
				state[VersionOf(uint64(v))] = applied
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for v, ok := range state {
			if ok {
				ids = append(ids, v)
			}
		}
	case FromMigratus:
		rows, err := r.conn.QueryContext(ctx, "SELECT id FROM "+table)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var v int64
			if err := rows.Scan(&v); err != nil {
				return nil, err
			}
			ids = append(ids, VersionOf(uint64(v)))
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	case FromFlyway:
		rows, err := r.conn.QueryContext(ctx, "SELECT version, success FROM "+table+" WHERE version IS NOT NULL ORDER BY installed_rank")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var v string
			var ok bool
			if err := rows.Scan(&v, &ok); err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("version %s failed under Flyway: fix it and run `flyway repair`, then adopt again", v)
			}
			id, err := ParseVersion(v)
			if err != nil {
				return nil, fmt.Errorf("flyway version %q: %w", v, err)
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(ids, Version.Compare)
	return ids, nil
}
