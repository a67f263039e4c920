package schema

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/cutover/cutover/internal/migrate"
)

// VersionTables are the tables whose rows a Scratch always copies when
// they exist, so that an application's migration tool sees which of its
// migrations are already applied and runs only the pending ones. The names
// are the tools' defaults, with their exact case.
var VersionTables = []string{
	"schema_migrations",           // Rails, golang-migrate, Migratus, dbmate, Ecto
	"ar_internal_metadata",        // Rails
	"django_migrations",           // Django
	"flyway_schema_history",       // Flyway 5+
	"schema_version",              // Miniflux; Flyway before 5
	"goose_db_version",            // goose
	"alembic_version",             // Alembic
	"knex_migrations",             // Knex
	"knex_migrations_lock",        // Knex
	"_prisma_migrations",          // Prisma
	"__EFMigrationsHistory",       // Entity Framework Core
	"SequelizeMeta",               // Sequelize
	"doctrine_migration_versions", // Doctrine Migrations 3
	"migrations",                  // Laravel, TypeORM
	migrate.DefaultTable,          // cutover's own
}

// ScratchOptions configure NewScratch. The zero value works.
type ScratchOptions struct {
	// DataTables are more tables whose rows are copied (PostgreSQL; a
	// SQLite copy holds every row): "name" (any schema) or
	// "schema.name". A table that does not exist is skipped.
	DataTables []string
	// TempDir is where a SQLite copy goes; "" means os.TempDir().
	TempDir string
	// Log, when set, receives progress lines.
	Log func(string)
}

func (o ScratchOptions) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(fmt.Sprintf(format, args...))
	}
}

// Scratch is a throwaway copy of a live database's schema plus the rows of
// its version tables, for running migrations on before they touch the live
// database. Close removes it.
type Scratch struct {
	url   string
	close func(context.Context) error
}

// NewScratch copies the schema of the database at url into a new scratch
// database. On PostgreSQL it creates a database "<live>_cutover_preview_<unix
// time>_<random>" on the same server (the role needs CREATEDB) and copies
// the schema with pg_dump --schema-only piped into psql, then the rows of
// VersionTables and o.DataTables; scratch databases of this live database
// older than an hour, left by a process that died, are dropped first. On
// SQLite it writes a consistent copy with VACUUM INTO into o.TempDir,
// removing copies there older than an hour.
func NewScratch(ctx context.Context, url string, o ScratchOptions) (*Scratch, error) {
	dialect, err := migrate.Dialect(url)
	if err != nil {
		return nil, err
	}
	var s *Scratch
	switch dialect {
	case DialectPostgres:
		s, err = newPostgresScratch(ctx, url, o)
	case DialectSQLite:
		s, err = newSQLiteScratch(ctx, url, o)
	default:
		err = fmt.Errorf("dialect %q not supported", dialect)
	}
	if err != nil {
		return nil, fmt.Errorf("scratch copy of %s: %w", migrate.Redact(url), err)
	}
	return s, nil
}

// URL returns the scratch database's URL, in the same form as the live
// URL.
func (s *Scratch) URL() string { return s.url }

// Close drops the scratch database or removes the file. It is safe to call
// more than once.
func (s *Scratch) Close(ctx context.Context) error {
	if s.close == nil {
		return nil
	}
	c := s.close
	s.close = nil
	return c(ctx)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // Never fails (crypto/rand).
	return hex.EncodeToString(b)
}
