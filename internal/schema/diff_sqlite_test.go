package schema

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sqliteUsers is the users table of sqliteBase; rebuildUsers replaces it.
const sqliteUsers = `CREATE TABLE users (
	id INTEGER PRIMARY KEY,
	org_id INTEGER REFERENCES orgs(id),
	email VARCHAR(100) NOT NULL UNIQUE,
	name TEXT,
	age INT,
	status TEXT NOT NULL DEFAULT 'active',
	nick TEXT CHECK (length(nick) > 1)
)`

const sqliteBase = `
CREATE TABLE orgs (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
` + sqliteUsers + `;
CREATE INDEX users_name_idx ON users (name);
CREATE TABLE sessions (id TEXT PRIMARY KEY, user_id INTEGER, data TEXT);
CREATE TABLE nums (a INT, b INT);
CREATE VIEW active_users AS SELECT id, email FROM users WHERE status = 'active';
INSERT INTO orgs VALUES (1, 'acme');
INSERT INTO users (id, email, name) VALUES (1, 'a@example.com', 'A');
`

// rebuildUsers is SQLite's way to change a column: a new table with the
// changed definition (old replaced by new in sqliteUsers), the rows copied,
// the old table dropped and the new one renamed.
func rebuildUsers(old, new string) string {
	def := strings.Replace(sqliteUsers, old, new, 1)
	if def == sqliteUsers {
		panic("rebuildUsers: " + old + " not in the users table")
	}
	return `DROP VIEW active_users;
` + strings.Replace(def, "CREATE TABLE users", "CREATE TABLE users_new", 1) + `;
INSERT INTO users_new SELECT * FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_name_idx ON users (name);
CREATE VIEW active_users AS SELECT id, email FROM users WHERE status = 'active';`
}

var sqliteCases = []diffCase{
	{"add table", `CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT)`, []string{"additive add-table"}},
	{"drop table", `DROP TABLE sessions`, []string{"breaking drop-table"}},
	{"rename table", `ALTER TABLE sessions RENAME TO user_sessions`, []string{"breaking rename-table"}},
	{"add nullable column", `ALTER TABLE users ADD COLUMN phone TEXT`, []string{"additive add-column"}},
	{"add not null column with default", `ALTER TABLE users ADD COLUMN plan TEXT NOT NULL DEFAULT 'free'`, []string{"additive add-column"}},
	{"add not null column without default", `CREATE TABLE s2 (id TEXT PRIMARY KEY, user_id INTEGER, data TEXT, expires TEXT NOT NULL);
		INSERT INTO s2 SELECT *, '' FROM sessions; DROP TABLE sessions; ALTER TABLE s2 RENAME TO sessions`,
		[]string{"breaking add-column-not-null"}},
	{"add column with foreign key", `ALTER TABLE sessions ADD COLUMN org_id INTEGER REFERENCES orgs(id)`, []string{"additive add-foreign-key", "additive add-column"}},
	{"drop column", `ALTER TABLE users DROP COLUMN age`, []string{"breaking drop-column"}},
	{"rename column", `ALTER TABLE users RENAME COLUMN age TO years`, []string{"breaking rename-column"}},
	{"narrow type", rebuildUsers("email VARCHAR(100)", "email VARCHAR(50)"), []string{"breaking change-column-type"}},
	{"widen type", rebuildUsers("email VARCHAR(100)", "email VARCHAR(200)"), []string{"additive widen-column-type"}},
	{"int to bigint", rebuildUsers("age INT", "age BIGINT"), []string{"additive widen-column-type"}},
	{"set not null", rebuildUsers("name TEXT,", "name TEXT NOT NULL,"), []string{"breaking set-not-null"}},
	{"drop not null", rebuildUsers("email VARCHAR(100) NOT NULL", "email VARCHAR(100)"), []string{"additive drop-not-null"}},
	{"drop default of not null column", rebuildUsers("NOT NULL DEFAULT 'active'", "NOT NULL"), []string{"breaking drop-default"}},
	{"change default", rebuildUsers("DEFAULT 'active'", "DEFAULT 'new'"), []string{"additive change-default"}},
	{"add check", rebuildUsers("age INT", "age INT CHECK (age > 0)"), []string{"breaking add-check-constraint"}},
	{"drop check", rebuildUsers(" CHECK (length(nick) > 1)", ""), []string{"additive drop-check-constraint"}},
	{"add foreign key", `CREATE TABLE s2 (id TEXT PRIMARY KEY, user_id INTEGER REFERENCES users(id), data TEXT);
		INSERT INTO s2 SELECT * FROM sessions; DROP TABLE sessions; ALTER TABLE s2 RENAME TO sessions`,
		[]string{"breaking add-foreign-key"}},
	{"column becomes generated", `CREATE TABLE nums2 (a INT, b INT GENERATED ALWAYS AS (a + 1));
		INSERT INTO nums2 (a) SELECT a FROM nums; DROP TABLE nums; ALTER TABLE nums2 RENAME TO nums`,
		[]string{"breaking change-generated"}},
	{"add index", `CREATE INDEX users_age_idx ON users (age)`, []string{"additive add-index"}},
	{"drop index", `DROP INDEX users_name_idx`, []string{"additive drop-index"}},
	{"add unique index", `CREATE UNIQUE INDEX users_name_key ON users (name)`, []string{"breaking add-unique-constraint"}},
	{"add view", `CREATE VIEW org_names AS SELECT name FROM orgs`, []string{"additive add-view"}},
	{"drop view", `DROP VIEW active_users`, []string{"breaking drop-view"}},
	{"view loses a column", `DROP VIEW active_users; CREATE VIEW active_users AS SELECT id FROM users`, []string{"breaking change-view"}},
	{"view filter changed", `DROP VIEW active_users; CREATE VIEW active_users AS SELECT id, email FROM users WHERE status <> 'banned'`, []string{"additive change-view"}},
	{"rows only", `INSERT INTO users (id, email) VALUES (2, 'b@example.com')`, nil},
}

func TestDiffSQLite(t *testing.T) {
	if n := len(sqliteCases); n < 15 {
		t.Fatalf("%d SQLite cases, want at least 15", n)
	}
	for _, tc := range sqliteCases {
		t.Run(tc.name, func(t *testing.T) {
			url := sqliteURL(t)
			sqliteExec(t, url, sqliteBase)
			before := snapshot(t, url)
			sqliteExec(t, url, tc.change)
			after := snapshot(t, url)
			got := Diff(before, after)
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, summary(got)); diff != "" {
				t.Errorf("Diff after %q (-want +got):\n%s\nchanges:\n%s", tc.change, diff, changeLines(got))
			}
		})
	}
}
