package lint

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ruleCase is one migration checked in both phases. The expected findings
// are "rule:severity", with ":allowed" when an allow comment accepts them.
type ruleCase struct {
	rule     string // the rule this case is an example of
	name     string
	sqlite   bool
	tx       bool // the file runs in a transaction
	sql      string
	expand   []string
	contract []string
}

var ruleCases = []ruleCase{
	// Destructive changes: expand only.
	{rule: "drop-table", name: "existing table", sql: "DROP TABLE users;", expand: []string{"drop-table:error"}},
	{rule: "drop-table", name: "several tables, one new", sql: "CREATE TABLE tmp (id int);\nDROP TABLE IF EXISTS tmp, public.users;", expand: []string{"drop-table:error"}},
	{rule: "drop-table", name: "table created in the same file", sql: "CREATE TABLE tmp (id int);\nDROP TABLE tmp;"},
	{rule: "drop-table", name: "sqlite existing table", sqlite: true, sql: "DROP TABLE IF EXISTS main.users;", expand: []string{"drop-table:error"}},
	{rule: "drop-table", name: "sqlite new table, names compare case-insensitively", sqlite: true, sql: "CREATE TEMP TABLE IF NOT EXISTS Scratch (id);\nDROP TABLE \"scratch\";"},

	{rule: "drop-column", name: "existing table", sql: "ALTER TABLE users DROP COLUMN email;", expand: []string{"drop-column:error"}},
	{rule: "drop-column", name: "table created in the same file", sql: "CREATE TABLE t (a int, b int);\nALTER TABLE t DROP COLUMN b;"},
	{rule: "drop-column", name: "drop a constraint is fine", sql: "ALTER TABLE users DROP CONSTRAINT users_age_check;"},
	{rule: "drop-column", name: "sqlite", sqlite: true, sql: "ALTER TABLE users DROP email;", expand: []string{"drop-column:error"}},
	{rule: "drop-column", name: "sqlite new table", sqlite: true, sql: "CREATE TABLE t (a, b);\nALTER TABLE t DROP COLUMN b;"},

	{rule: "rename-table", name: "existing table", sql: "ALTER TABLE users RENAME TO people;", expand: []string{"rename-table:error"}},
	{rule: "rename-table", name: "renaming a constraint is fine", sql: "ALTER TABLE users RENAME CONSTRAINT a TO b;"},
	{rule: "rename-table", name: "sqlite", sqlite: true, sql: "ALTER TABLE [users] RENAME TO people;", expand: []string{"rename-table:error"}},
	{rule: "rename-table", name: "sqlite new table", sqlite: true, sql: "CREATE TABLE t (a);\nALTER TABLE t RENAME TO u;"},

	{rule: "rename-column", name: "existing table", sql: "ALTER TABLE users RENAME COLUMN email TO mail;", expand: []string{"rename-column:error"}},
	{rule: "rename-column", name: "table created in the same file", sql: "CREATE TABLE t (a int);\nALTER TABLE t RENAME COLUMN a TO b;"},
	{rule: "rename-column", name: "sqlite without COLUMN", sqlite: true, sql: "ALTER TABLE users RENAME email TO mail;", expand: []string{"rename-column:error"}},
	{rule: "rename-column", name: "sqlite new table", sqlite: true, sql: "CREATE TABLE t (a);\nALTER TABLE t RENAME COLUMN a TO b;"},

	{
		rule: "table-rebuild", name: "copy, drop, rename",
		sql:    "CREATE TABLE users_new (id bigint);\nINSERT INTO users_new SELECT id FROM users;\nDROP TABLE users;\nALTER TABLE users_new RENAME TO users;",
		expand: []string{"drop-table:error", "table-rebuild:error"},
	},
	{rule: "table-rebuild", name: "new table renamed to a free name", sql: "CREATE TABLE a_new (id int);\nALTER TABLE a_new RENAME TO a;"},
	{
		rule: "table-rebuild", name: "sqlite copy, drop, rename", sqlite: true,
		sql:    "CREATE TABLE users_new (id INTEGER PRIMARY KEY);\nINSERT INTO users_new SELECT id FROM users;\nDROP TABLE users;\nALTER TABLE users_new RENAME TO users;",
		expand: []string{"drop-table:error", "table-rebuild:error"},
	},
	{rule: "table-rebuild", name: "sqlite new table renamed to a free name", sqlite: true, sql: "CREATE TABLE a_new (id);\nALTER TABLE a_new RENAME TO a;"},

	{rule: "truncate", name: "existing table", sql: "TRUNCATE users;", expand: []string{"truncate:error"}},
	{rule: "truncate", name: "table created in the same file", sql: "CREATE TABLE t (a int);\nTRUNCATE t;"},

	{rule: "drop-schema", name: "drop", sql: "DROP SCHEMA old CASCADE;", expand: []string{"drop-schema:error"}},
	{rule: "drop-schema", name: "create", sql: "CREATE SCHEMA reports;"},
	{rule: "drop-database", name: "drop", sql: "DROP DATABASE old;", expand: []string{"drop-database:error"}},
	{rule: "drop-database", name: "drop a view", sql: "DROP VIEW IF EXISTS report;"},

	{rule: "rename-enum-value", name: "rename", sql: "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';", expand: []string{"rename-enum-value:error"}},
	{rule: "rename-enum-value", name: "add outside a transaction", sql: "ALTER TYPE mood ADD VALUE 'meh';"},

	// Changes that break the old code and lock: error in expand, warning in contract.
	{rule: "change-column-type", name: "existing table", sql: "ALTER TABLE users ALTER COLUMN name TYPE text;", expand: []string{"change-column-type:error"}, contract: []string{"change-column-type:warning"}},
	{rule: "change-column-type", name: "table created in the same file", sql: "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a TYPE bigint;"},

	{rule: "set-not-null", name: "existing table", sql: "ALTER TABLE users ALTER COLUMN name SET NOT NULL;", expand: []string{"set-not-null:error"}, contract: []string{"set-not-null:warning"}},
	{rule: "set-not-null", name: "drop not null", sql: "ALTER TABLE users ALTER COLUMN name DROP NOT NULL;"},

	{rule: "add-column-not-null", name: "no default", sql: "ALTER TABLE users ADD COLUMN age int NOT NULL;", expand: []string{"add-column-not-null:error"}},
	{rule: "add-column-not-null", name: "default NULL is no default", sql: "ALTER TABLE users ADD age int DEFAULT NULL NOT NULL;", expand: []string{"add-column-not-null:error"}},
	{rule: "add-column-not-null", name: "constant default", sql: "ALTER TABLE users ADD COLUMN age int NOT NULL DEFAULT 0;"},
	{rule: "add-column-not-null", name: "nullable", sql: "ALTER TABLE users ADD COLUMN IF NOT EXISTS age int;"},
	{rule: "add-column-not-null", name: "sqlite no default", sqlite: true, sql: "ALTER TABLE users ADD age INTEGER NOT NULL;", expand: []string{"add-column-not-null:error"}},
	{rule: "add-column-not-null", name: "sqlite default", sqlite: true, sql: "ALTER TABLE users ADD COLUMN age INTEGER NOT NULL DEFAULT 0;"},
	{rule: "add-column-not-null", name: "sqlite NOT NULL inside CHECK", sqlite: true, sql: "ALTER TABLE users ADD COLUMN a TEXT CHECK (a IS NOT NULL OR 1);"},

	{rule: "add-column-volatile-default", name: "gen_random_uuid", sql: "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();", expand: []string{"add-column-volatile-default:error"}, contract: []string{"add-column-volatile-default:warning"}},
	{rule: "add-column-volatile-default", name: "nested random", sql: "ALTER TABLE users ADD COLUMN n int NOT NULL DEFAULT (random() * 10)::int;", expand: []string{"add-column-volatile-default:error"}, contract: []string{"add-column-volatile-default:warning"}},
	{rule: "add-column-volatile-default", name: "unknown function", sql: "ALTER TABLE users ADD COLUMN code text DEFAULT app.new_code();", expand: []string{"add-column-volatile-default:error"}, contract: []string{"add-column-volatile-default:warning"}},
	{rule: "add-column-volatile-default", name: "now() is stable", sql: "ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();"},
	{rule: "add-column-volatile-default", name: "CURRENT_TIMESTAMP and casts", sql: "ALTER TABLE users ADD COLUMN seen timestamptz DEFAULT CURRENT_TIMESTAMP, ADD COLUMN prefs jsonb NOT NULL DEFAULT '{}'::jsonb;"},

	{rule: "add-column-serial", name: "bigserial", sql: "ALTER TABLE users ADD COLUMN seq bigserial;", expand: []string{"add-column-serial:error"}, contract: []string{"add-column-serial:warning"}},
	{rule: "add-column-serial", name: "identity", sql: "ALTER TABLE users ADD COLUMN n bigint NOT NULL GENERATED ALWAYS AS IDENTITY;", expand: []string{"add-column-serial:error"}, contract: []string{"add-column-serial:warning"}},
	{rule: "add-column-serial", name: "bigint", sql: "ALTER TABLE users ADD COLUMN n bigint;"},

	{rule: "add-column-generated", name: "stored", sql: "ALTER TABLE users ADD COLUMN full_name text GENERATED ALWAYS AS (first || ' ' || last) STORED;", expand: []string{"add-column-generated:error"}, contract: []string{"add-column-generated:warning"}},
	{rule: "add-column-generated", name: "new table", sql: "CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) STORED);"},

	{rule: "add-identity", name: "existing column", sql: "ALTER TABLE users ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY;", expand: []string{"add-identity:error"}, contract: []string{"add-identity:warning"}},
	{rule: "add-identity", name: "set default nextval", sql: "ALTER TABLE users ALTER COLUMN id SET DEFAULT nextval('users_id_seq');"},

	// Locks: error in expand, warning in contract.
	{rule: "create-index-blocking", name: "existing table", sql: "CREATE INDEX users_email ON users (email);", expand: []string{"create-index-blocking:error"}, contract: []string{"create-index-blocking:warning"}},
	{rule: "create-index-blocking", name: "unique on existing table", sql: "CREATE UNIQUE INDEX IF NOT EXISTS users_email ON public.users (lower(email));", expand: []string{"create-index-blocking:error"}, contract: []string{"create-index-blocking:warning"}},
	{rule: "create-index-blocking", name: "concurrently", sql: "CREATE INDEX CONCURRENTLY users_email ON users (email);"},
	{rule: "create-index-blocking", name: "table created in the same file", sql: "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);"},

	{rule: "drop-index-blocking", name: "drop", sql: "DROP INDEX users_email;", expand: []string{"drop-index-blocking:error"}, contract: []string{"drop-index-blocking:warning"}},
	{rule: "drop-index-blocking", name: "concurrently", sql: "DROP INDEX CONCURRENTLY IF EXISTS users_email;"},
	{rule: "drop-index-blocking", name: "index created in the same file", sql: "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);\nDROP INDEX t_a;"},

	{rule: "reindex-blocking", name: "reindex", sql: "REINDEX INDEX users_email;", expand: []string{"reindex-blocking:error"}, contract: []string{"reindex-blocking:warning"}},
	{rule: "reindex-blocking", name: "concurrently", sql: "REINDEX INDEX CONCURRENTLY users_email;"},
	{rule: "reindex-blocking", name: "option list", sql: "REINDEX (CONCURRENTLY) TABLE users;"},

	{rule: "refresh-view-blocking", name: "refresh", sql: "REFRESH MATERIALIZED VIEW stats;", expand: []string{"refresh-view-blocking:error"}, contract: []string{"refresh-view-blocking:warning"}},
	{rule: "refresh-view-blocking", name: "concurrently", sql: "REFRESH MATERIALIZED VIEW CONCURRENTLY stats;"},

	{rule: "add-foreign-key", name: "validated", sql: "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);", expand: []string{"add-foreign-key:error"}, contract: []string{"add-foreign-key:warning"}},
	{rule: "add-foreign-key", name: "in ADD COLUMN", sql: "ALTER TABLE orders ADD COLUMN user_id bigint REFERENCES users (id);", expand: []string{"add-foreign-key:error"}, contract: []string{"add-foreign-key:warning"}},
	{rule: "add-foreign-key", name: "NOT VALID then VALIDATE", sql: "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;"},
	{rule: "add-foreign-key", name: "new table references an existing one", sql: "CREATE TABLE orders (id bigint, user_id bigint REFERENCES users (id));"},

	{rule: "add-check-constraint", name: "validated", sql: "ALTER TABLE users ADD CONSTRAINT age_positive CHECK (age > 0);", expand: []string{"add-check-constraint:error"}, contract: []string{"add-check-constraint:warning"}},
	{rule: "add-check-constraint", name: "NOT VALID", sql: "ALTER TABLE users ADD CONSTRAINT age_positive CHECK (age > 0) NOT VALID;"},

	{rule: "add-unique-constraint", name: "unique", sql: "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);", expand: []string{"add-unique-constraint:error"}, contract: []string{"add-unique-constraint:warning"}},
	{rule: "add-unique-constraint", name: "primary key", sql: "ALTER TABLE users ADD PRIMARY KEY (id);", expand: []string{"add-unique-constraint:error"}, contract: []string{"add-unique-constraint:warning"}},
	{rule: "add-unique-constraint", name: "unique column", sql: "ALTER TABLE users ADD COLUMN handle text UNIQUE;", expand: []string{"add-unique-constraint:error"}, contract: []string{"add-unique-constraint:warning"}},
	{rule: "add-unique-constraint", name: "using a concurrent index", sql: "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;"},

	{rule: "add-exclusion-constraint", name: "existing table", sql: "ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);", expand: []string{"add-exclusion-constraint:error"}, contract: []string{"add-exclusion-constraint:warning"}},
	{rule: "add-exclusion-constraint", name: "new table", sql: "CREATE TABLE b (room int, during tstzrange);\nALTER TABLE b ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);"},

	{rule: "vacuum-full", name: "full", sql: "VACUUM FULL users;", expand: []string{"vacuum-full:error"}, contract: []string{"vacuum-full:warning"}},
	{rule: "vacuum-full", name: "option list", sql: "VACUUM (FULL, ANALYZE) users;", expand: []string{"vacuum-full:error"}, contract: []string{"vacuum-full:warning"}},
	{rule: "vacuum-full", name: "plain", sql: "VACUUM ANALYZE users;"},
	{rule: "vacuum-full", name: "full off", sql: "VACUUM (FULL false) users;"},

	{rule: "cluster", name: "cluster", sql: "CLUSTER users USING users_pkey;", expand: []string{"cluster:error"}, contract: []string{"cluster:warning"}},
	{rule: "cluster", name: "analyze", sql: "ANALYZE users;"},

	{rule: "lock-table", name: "access exclusive by default", sql: "LOCK TABLE users;", expand: []string{"lock-table:warning"}, contract: []string{"lock-table:warning"}},
	{rule: "lock-table", name: "share", sql: "LOCK TABLE users IN SHARE MODE;", expand: []string{"lock-table:warning"}, contract: []string{"lock-table:warning"}},
	{rule: "lock-table", name: "row exclusive", sql: "LOCK TABLE users IN ROW EXCLUSIVE MODE;"},

	{rule: "lock-timeout-disabled", name: "zero", sql: "SET lock_timeout = 0;", expand: []string{"lock-timeout-disabled:warning"}, contract: []string{"lock-timeout-disabled:warning"}},
	{rule: "lock-timeout-disabled", name: "zero with unit", sql: "SET LOCAL lock_timeout TO '0s';", expand: []string{"lock-timeout-disabled:warning"}, contract: []string{"lock-timeout-disabled:warning"}},
	{rule: "lock-timeout-disabled", name: "reset", sql: "RESET lock_timeout;", expand: []string{"lock-timeout-disabled:warning"}, contract: []string{"lock-timeout-disabled:warning"}},
	{rule: "lock-timeout-disabled", name: "finite", sql: "SET lock_timeout = '10s';\nSET statement_timeout = 0;"},
	{rule: "lock-timeout-disabled", name: "reset all", sql: "RESET ALL;", expand: []string{"lock-timeout-disabled:warning"}, contract: []string{"lock-timeout-disabled:warning"}},
	{rule: "lock-timeout-disabled", name: "zero point five seconds is not zero", sql: "SET lock_timeout = '0.5s';"},

	{
		rule: "slow-statement-after-lock", name: "backfill after ALTER in one transaction", tx: true,
		sql:    "ALTER TABLE users ADD COLUMN flag boolean;\nUPDATE users SET flag = false WHERE flag IS NULL;",
		expand: []string{"slow-statement-after-lock:error"}, contract: []string{"slow-statement-after-lock:warning"},
	},
	{
		rule: "slow-statement-after-lock", name: "validate after rename", tx: true,
		sql:    "ALTER TABLE users RENAME COLUMN a TO b;\nALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;",
		expand: []string{"rename-column:error", "slow-statement-after-lock:error"}, contract: []string{"slow-statement-after-lock:warning"},
	},
	{rule: "slow-statement-after-lock", name: "statements run one by one", sql: "ALTER TABLE users ADD COLUMN flag boolean;\nUPDATE users SET flag = false WHERE flag IS NULL;"},
	{rule: "slow-statement-after-lock", name: "backfill first", tx: true, sql: "UPDATE users SET a = 1 WHERE id < 1000;\nALTER TABLE users ADD COLUMN flag boolean;"},
	{rule: "slow-statement-after-lock", name: "lock on a new table", tx: true, sql: "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int;\nINSERT INTO t SELECT id, 0 FROM users;"},

	// Rules that compare with squawk, strong_migrations, Atlas and eugene.
	{rule: "rename-object", name: "type", sql: "ALTER TYPE mood RENAME TO feeling;", expand: []string{"rename-object:error"}},
	{rule: "rename-object", name: "view", sql: "ALTER VIEW active_users RENAME TO live_users;", expand: []string{"rename-object:error"}},
	{rule: "rename-object", name: "function", sql: "ALTER FUNCTION score(int) RENAME TO rank;", expand: []string{"rename-object:error"}},
	{rule: "rename-object", name: "sequence, schema and domain", sql: "ALTER SEQUENCE order_no RENAME TO order_number;\nALTER SCHEMA app RENAME TO core;\nALTER DOMAIN email RENAME TO mail;", expand: []string{"rename-object:error", "rename-object:error", "rename-object:error"}},
	{rule: "rename-object", name: "set schema", sql: "ALTER TABLE users SET SCHEMA archive;\nALTER TYPE mood SET SCHEMA archive;", expand: []string{"rename-object:error", "rename-object:error"}},
	{rule: "rename-object", name: "new table moved", sql: "CREATE TABLE t (a int);\nALTER TABLE t SET SCHEMA archive;"},
	{rule: "rename-object", name: "index and constraint names are not used by queries", sql: "ALTER INDEX users_email RENAME TO users_email_idx;\nALTER TABLE users RENAME CONSTRAINT a TO b;"},

	{rule: "add-json-column", name: "json", sql: "ALTER TABLE users ADD COLUMN prefs json;", expand: []string{"add-json-column:warning"}},
	{rule: "add-json-column", name: "jsonb", sql: "ALTER TABLE users ADD COLUMN prefs jsonb;"},
	{rule: "add-json-column", name: "new table", sql: "CREATE TABLE t (a json);\nALTER TABLE t ADD COLUMN b json;"},

	{rule: "primary-key-using-index", name: "existing table", sql: "ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY USING INDEX users_id_idx;", expand: []string{"primary-key-using-index:warning"}, contract: []string{"primary-key-using-index:warning"}},
	{rule: "primary-key-using-index", name: "unique using index", sql: "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;"},

	{rule: "alter-domain-add-constraint", name: "validated", sql: "ALTER DOMAIN email ADD CONSTRAINT email_at CHECK (VALUE LIKE '%@%');", expand: []string{"alter-domain-add-constraint:error"}, contract: []string{"alter-domain-add-constraint:warning"}},
	{rule: "alter-domain-add-constraint", name: "NOT VALID then VALIDATE", sql: "ALTER DOMAIN email ADD CONSTRAINT email_at CHECK (VALUE LIKE '%@%') NOT VALID;\nALTER DOMAIN email VALIDATE CONSTRAINT email_at;"},

	{rule: "set-logged", name: "unlogged", sql: "ALTER TABLE events SET UNLOGGED;", expand: []string{"set-logged:error"}, contract: []string{"set-logged:warning"}},
	{rule: "set-logged", name: "logged", sql: "ALTER TABLE events SET LOGGED;", expand: []string{"set-logged:error"}, contract: []string{"set-logged:warning"}},
	{rule: "set-logged", name: "new table", sql: "CREATE UNLOGGED TABLE t (a int);\nALTER TABLE t SET LOGGED;"},

	{rule: "detach-partition-blocking", name: "detach", sql: "ALTER TABLE events DETACH PARTITION events_2020;", expand: []string{"detach-partition-blocking:error"}, contract: []string{"detach-partition-blocking:warning"}},
	{rule: "detach-partition-blocking", name: "concurrently", sql: "ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;"},

	{rule: "update-without-where", name: "update every row", sql: "UPDATE users SET locale = 'en';", expand: []string{"update-without-where:error"}, contract: []string{"update-without-where:warning"}},
	{rule: "update-without-where", name: "delete every row", sql: "DELETE FROM sessions;", expand: []string{"update-without-where:error"}, contract: []string{"update-without-where:warning"}},
	{rule: "update-without-where", name: "batch", sql: "UPDATE users SET locale = 'en' WHERE id BETWEEN 1 AND 10000 AND locale IS NULL;\nDELETE FROM sessions WHERE expires_at < now();"},
	{rule: "update-without-where", name: "new table", sql: "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\nUPDATE t SET a = 2;"},

	{rule: "int-primary-key", name: "serial column", sql: "CREATE TABLE t (id serial PRIMARY KEY, n int);", expand: []string{"int-primary-key:warning"}, contract: []string{"int-primary-key:warning"}},
	{rule: "int-primary-key", name: "table constraint", sql: "CREATE TABLE t (id integer NOT NULL, tenant smallint, PRIMARY KEY (tenant, id));", expand: []string{"int-primary-key:warning", "int-primary-key:warning"}, contract: []string{"int-primary-key:warning", "int-primary-key:warning"}},
	{rule: "int-primary-key", name: "bigint and identity", sql: "CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n int);\nCREATE TABLE u (id bigserial PRIMARY KEY);\nCREATE TABLE v (code text PRIMARY KEY);"},

	// Changes the field's tools flag that are safe here, or covered by an
	// existing rule.
	{rule: "change-column-type", name: "collation", sql: `ALTER TABLE users ALTER COLUMN name TYPE text COLLATE "C";`, expand: []string{"change-column-type:error"}, contract: []string{"change-column-type:warning"}},
	{rule: "set-not-null", name: "DROP NOT NULL is the safe expand step", sql: "ALTER TABLE users ALTER COLUMN legacy DROP NOT NULL;"},
	{rule: "add-column-volatile-default", name: "SET DEFAULT stores the expression only", sql: "ALTER TABLE users ALTER COLUMN token SET DEFAULT gen_random_uuid();"},

	// Transactions: both phases.
	{rule: "concurrently-in-transaction", name: "create index", tx: true, sql: "CREATE INDEX CONCURRENTLY users_email ON users (email);", expand: []string{"concurrently-in-transaction:error"}, contract: []string{"concurrently-in-transaction:error"}},
	{rule: "concurrently-in-transaction", name: "drop index", tx: true, sql: "DROP INDEX CONCURRENTLY users_email;", expand: []string{"concurrently-in-transaction:error"}, contract: []string{"concurrently-in-transaction:error"}},
	{rule: "concurrently-in-transaction", name: "detach partition", tx: true, sql: "ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;", expand: []string{"concurrently-in-transaction:error"}, contract: []string{"concurrently-in-transaction:error"}},
	{rule: "concurrently-in-transaction", name: "no transaction", sql: "CREATE INDEX CONCURRENTLY users_email ON users (email);\nDROP INDEX CONCURRENTLY old_idx;"},

	{rule: "add-enum-value-in-transaction", name: "in a transaction", tx: true, sql: "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh';", expand: []string{"add-enum-value-in-transaction:warning"}, contract: []string{"add-enum-value-in-transaction:warning"}},
	{rule: "add-enum-value-in-transaction", name: "no transaction", sql: "ALTER TYPE mood ADD VALUE 'meh' BEFORE 'sad';"},

	{rule: "transaction-nesting", name: "begin and commit", tx: true, sql: "BEGIN;\nCREATE TABLE t (a int);\nCOMMIT;", expand: []string{"transaction-nesting:error", "transaction-nesting:error"}, contract: []string{"transaction-nesting:error", "transaction-nesting:error"}},
	{rule: "transaction-nesting", name: "savepoints are fine", tx: true, sql: "SAVEPOINT a;\nROLLBACK TO SAVEPOINT a;\nRELEASE SAVEPOINT a;"},
	{rule: "transaction-nesting", name: "no transaction", sql: "BEGIN;\nCOMMIT;"},
	{rule: "transaction-nesting", name: "sqlite", sqlite: true, tx: true, sql: "BEGIN IMMEDIATE;\nCREATE TABLE t (a);\nEND TRANSACTION;", expand: []string{"transaction-nesting:error", "transaction-nesting:error"}, contract: []string{"transaction-nesting:error", "transaction-nesting:error"}},
	{rule: "transaction-nesting", name: "sqlite savepoint", sqlite: true, tx: true, sql: "SAVEPOINT a;\nROLLBACK TRANSACTION TO a;"},

	// The file itself and the allow comments.
	{rule: "parse-error", name: "typo", sql: "ALTER TABLE users DROPP COLUMN a;", expand: []string{"parse-error:error"}, contract: []string{"parse-error:error"}},
	{rule: "parse-error", name: "valid", sql: "SELECT 1;"},
	{rule: "parse-error", name: "sqlite unterminated string", sqlite: true, sql: "INSERT INTO t VALUES ('a);", expand: []string{"parse-error:error"}, contract: []string{"parse-error:error"}},
	{rule: "parse-error", name: "sqlite syntax Postgres rejects", sqlite: true, sql: "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT) WITHOUT ROWID;\nINSERT OR REPLACE INTO t VALUES (1);"},

	{
		rule: "allow-without-reason", name: "no reason", sql: "-- cutover:allow drop-column\nALTER TABLE users DROP COLUMN email;",
		expand: []string{"allow-without-reason:error", "drop-column:error"}, contract: []string{"allow-without-reason:error"},
	},
	{
		rule: "allow-without-reason", name: "no rule", sql: "/* cutover:allow */\nALTER TABLE users DROP COLUMN email;",
		expand: []string{"allow-without-reason:error", "drop-column:error"}, contract: []string{"allow-without-reason:error"},
	},
	{
		rule: "allow-without-reason", name: "rule and reason", sql: "-- cutover:allow drop-column nothing reads email since v41\nALTER TABLE users DROP COLUMN email;",
		expand: []string{"drop-column:error:allowed"},
	},
	{
		rule: "allow-without-reason", name: "sqlite", sqlite: true, sql: "-- cutover:allow drop-table\nDROP TABLE users;",
		expand: []string{"allow-without-reason:error", "drop-table:error"}, contract: []string{"allow-without-reason:error"},
	},
	{
		rule: "allow-without-reason", name: "sqlite with reason", sqlite: true, sql: "-- cutover:allow drop-table unused since v3\nDROP TABLE users;",
		expand: []string{"drop-table:error:allowed"},
	},

	{
		rule: "allow-unknown-rule", name: "misspelt", sql: "-- cutover:allow drop-colum unused\nALTER TABLE users DROP COLUMN email;",
		expand: []string{"allow-unknown-rule:warning", "drop-column:error"}, contract: []string{"allow-unknown-rule:warning"},
	},
	{
		rule: "allow-unknown-rule", name: "one allow per rule", sql: "-- cutover:allow set-not-null every writer sets it since v12\n-- cutover:allow change-column-type varchar(20) to text is binary compatible\nALTER TABLE users ALTER COLUMN name TYPE text, ALTER COLUMN name SET NOT NULL;",
		expand:   []string{"change-column-type:error:allowed", "set-not-null:error:allowed"},
		contract: []string{"change-column-type:warning:allowed", "set-not-null:warning:allowed"},
	},
	{
		rule: "allow-unknown-rule", name: "sqlite misspelt", sqlite: true, sql: "-- cutover:allow drop-tables unused\nDROP TABLE users;",
		expand: []string{"allow-unknown-rule:warning", "drop-table:error"}, contract: []string{"allow-unknown-rule:warning"},
	},
	{
		rule: "allow-unknown-rule", name: "sqlite known", sqlite: true, sql: "-- cutover:allow rename-column only the admin tool reads it, and it is stopped\nALTER TABLE users RENAME COLUMN a TO b;",
		expand: []string{"rename-column:error:allowed"},
	},
}

// summarize reduces findings to "rule:severity[:allowed]".
func summarize(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		s := f.Rule + ":" + f.Severity
		if f.Allowed {
			s += ":allowed"
		}
		out = append(out, s)
	}
	return out
}

func TestRuleCases(t *testing.T) {
	for _, tc := range ruleCases {
		dialect := DialectPostgres
		if tc.sqlite {
			dialect = DialectSQLite
		}
		for _, phase := range []string{PhaseExpand, PhaseContract} {
			want := tc.expand
			if phase == PhaseContract {
				want = tc.contract
			}
			t.Run(dialect+"/"+tc.rule+"/"+tc.name+"/"+phase, func(t *testing.T) {
				got := Check([]File{{Path: "m.sql", SQL: tc.sql, Phase: phase, Transactional: tc.tx}}, Options{Dialect: dialect})
				if diff := cmp.Diff(want, summarize(got)); diff != "" {
					t.Errorf("Check(%q) mismatch (-want +got):\n%s\nfindings:\n%v", tc.sql, diff, got)
				}
			})
		}
	}
}

// TestEveryRuleHasExamples checks that each rule has a case it fails and a
// case it passes, for each dialect it applies to.
func TestEveryRuleHasExamples(t *testing.T) {
	for _, r := range Rules() {
		dialects := []bool{false}
		if r.SQLite {
			dialects = append(dialects, true)
		}
		for _, sqlite := range dialects {
			var fails, passes bool
			for _, tc := range ruleCases {
				if tc.rule != r.ID || tc.sqlite != sqlite {
					continue
				}
				found := false
				for _, w := range append(append([]string(nil), tc.expand...), tc.contract...) {
					if w == r.ID+":"+SeverityError || w == r.ID+":"+SeverityWarning {
						found = true
					}
				}
				fails = fails || found
				passes = passes || !found
			}
			if !fails || !passes {
				t.Errorf("rule %s (sqlite %v): got failing example %v, passing example %v, want both", r.ID, sqlite, fails, passes)
			}
		}
	}
}

func TestRulesCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules() {
		if seen[r.ID] {
			t.Errorf("rule %s listed twice", r.ID)
		}
		seen[r.ID] = true
		if r.ID == "" || r.Summary == "" || r.Why == "" || r.Fix == "" {
			t.Errorf("rule %q: got empty ID, Summary, Why or Fix, want all set: %+v", r.ID, r)
		}
		if r.Severity == "" && r.Contract == "" {
			t.Errorf("rule %s applies to no phase", r.ID)
		}
		for _, s := range []string{r.Severity, r.Contract} {
			if s != "" && s != SeverityError && s != SeverityWarning {
				t.Errorf("rule %s: got severity %q, want %q or %q", r.ID, s, SeverityError, SeverityWarning)
			}
		}
		if strings.ToLower(r.ID) != r.ID || strings.ContainsAny(r.ID, " _") {
			t.Errorf("rule id %q: want lower-case words joined by '-'", r.ID)
		}
	}
	// Rules returns a copy: changing it does not change lint.
	rs := Rules()
	rs[0].Severity = ""
	if Rules()[0].Severity == "" {
		t.Errorf("Rules() returned the catalogue itself, want a copy")
	}
}

// TestRulesDocumented checks that docs/migrations.md lists every rule in its
// table, with the tools that have it, and explains it below the table.
func TestRulesDocumented(t *testing.T) {
	b, err := os.ReadFile("../../../docs/migrations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, r := range Rules() {
		row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(r.ID) + "` \\|(.*)\\|$").FindStringSubmatch(doc)
		if row == nil {
			t.Errorf("docs/migrations.md: no row for rule %s in the rules table", r.ID)
			continue
		}
		if cells := strings.Split(row[1], "|"); len(cells) != 5 || strings.TrimSpace(cells[4]) == "" {
			t.Errorf("docs/migrations.md: the row of rule %s has %d cells after the id, want 5 ending with the tools that have it: %q", r.ID, len(cells), row[0])
		}
		if !strings.Contains(doc, "- **`"+r.ID+"`** — ") {
			t.Errorf("docs/migrations.md: no explanation of rule %s below the table", r.ID)
		}
	}
}
