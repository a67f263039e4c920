package lint

// Severities of a finding.
const (
	// SeverityError refuses the migration unless the finding is allowed.
	SeverityError = "error"
	// SeverityWarning is reported but does not refuse the migration.
	SeverityWarning = "warning"
)

// Rule is one check that lint applies to a migration's statements.
type Rule struct {
	// ID is the rule's stable name, used in findings and in
	// "-- cutover:allow ID reason" comments.
	ID string
	// Severity is the severity of a finding in the expand phase, or "" when
	// the rule does not apply there.
	Severity string
	// Contract is the severity of a finding in the contract phase, when the
	// old version no longer runs, or "" when the rule does not apply there.
	// Rules about breaking the running version apply only to expand; rules
	// about locks apply to both.
	Contract string
	// SQLite reports whether the rule is also checked for SQLite migrations.
	SQLite bool
	// Summary says in a few words what the rule looks for.
	Summary string
	// Why says what goes wrong.
	Why string
	// Fix says how to make the same change safely.
	Fix string
}

// severity returns the rule's severity in phase.
func (r Rule) severity(phase string) string {
	if phase == PhaseContract {
		return r.Contract
	}
	return r.Severity
}

// Rule IDs.
const (
	ruleParseError          = "parse-error"
	ruleAllowWithoutReason  = "allow-without-reason"
	ruleAllowUnknownRule    = "allow-unknown-rule"
	ruleDropTable           = "drop-table"
	ruleDropColumn          = "drop-column"
	ruleRenameTable         = "rename-table"
	ruleRenameColumn        = "rename-column"
	ruleTableRebuild        = "table-rebuild"
	ruleTruncate            = "truncate"
	ruleDropSchema          = "drop-schema"
	ruleDropDatabase        = "drop-database"
	ruleRenameEnumValue     = "rename-enum-value"
	ruleChangeColumnType    = "change-column-type"
	ruleSetNotNull          = "set-not-null"
	ruleAddColumnNotNull    = "add-column-not-null"
	ruleVolatileDefault     = "add-column-volatile-default"
	ruleAddColumnSerial     = "add-column-serial"
	ruleAddColumnGenerated  = "add-column-generated"
	ruleAddIdentity         = "add-identity"
	ruleCreateIndex         = "create-index-blocking"
	ruleDropIndex           = "drop-index-blocking"
	ruleReindex             = "reindex-blocking"
	ruleRefreshView         = "refresh-view-blocking"
	ruleAddForeignKey       = "add-foreign-key"
	ruleAddCheck            = "add-check-constraint"
	ruleAddUnique           = "add-unique-constraint"
	ruleAddExclusion        = "add-exclusion-constraint"
	ruleVacuumFull          = "vacuum-full"
	ruleCluster             = "cluster"
	ruleLockTable           = "lock-table"
	ruleLockTimeoutDisabled = "lock-timeout-disabled"
	ruleSlowAfterLock       = "slow-statement-after-lock"
	ruleConcurrentlyInTx    = "concurrently-in-transaction"
	ruleEnumValueInTx       = "add-enum-value-in-transaction"
	ruleTransactionNesting  = "transaction-nesting"
	ruleRenameObject        = "rename-object"
	ruleAddJSONColumn       = "add-json-column"
	ruleSetLogged           = "set-logged"
	ruleDetachPartition     = "detach-partition-blocking"
	ruleDomainConstraint    = "alter-domain-add-constraint"
	rulePrimaryKeyUsing     = "primary-key-using-index"
	ruleUpdateWithoutWhere  = "update-without-where"
	ruleIntPrimaryKey       = "int-primary-key"
)

// rules is the catalogue, in the order the documentation lists it.
var rules = []Rule{
	{
		ID: ruleDropTable, Severity: SeverityError, SQLite: true,
		Summary: "DROP TABLE",
		Why:     "the running version still reads and writes this table; its queries fail as soon as the table is gone.",
		Fix:     "stop using the table in one release, then drop it in a contract migration (-- cutover:phase contract) of that release.",
	},
	{
		ID: ruleDropColumn, Severity: SeverityError, SQLite: true,
		Summary: "ALTER TABLE … DROP COLUMN",
		Why:     "the running version still selects or inserts this column; its queries fail as soon as the column is gone.",
		Fix:     "stop using the column in one release (and give it a DEFAULT or make it nullable if the old code inserts without it), then drop it in a contract migration.",
	},
	{
		ID: ruleRenameTable, Severity: SeverityError, SQLite: true,
		Summary: "ALTER TABLE … RENAME TO",
		Why:     "the running version still uses the old name; its queries fail as soon as the table is renamed.",
		Fix:     "create the new table, write to both and backfill, switch reads in a release, then drop the old table in a contract migration; or put a view with the old name in front of the renamed table for the transition.",
	},
	{
		ID: ruleRenameColumn, Severity: SeverityError, SQLite: true,
		Summary: "ALTER TABLE … RENAME COLUMN",
		Why:     "the running version still uses the old column name; its queries fail as soon as the column is renamed.",
		Fix:     "rename in three releases: add the new column (expand) and write to both, backfill and read the new one, then drop the old column (contract).",
	},
	{
		ID: ruleTableRebuild, Severity: SeverityError, SQLite: true,
		Summary: "rebuild a table: copy into a new table, drop the old one, rename the new one",
		Why:     "writes that the running version makes between the copy and the swap are lost, and the swap breaks its prepared statements and any column it still uses.",
		Fix:     "make the change in place where the database allows it; otherwise rebuild in a contract migration, after the old version is gone.",
	},
	{
		ID: ruleTruncate, Severity: SeverityError,
		Summary: "TRUNCATE",
		Why:     "it deletes every row that the running version still serves, under an ACCESS EXCLUSIVE lock.",
		Fix:     "delete data in a contract migration once no running code needs it, in batches if the table is large.",
	},
	{
		ID: ruleDropSchema, Severity: SeverityError,
		Summary: "DROP SCHEMA",
		Why:     "the running version still uses the objects in this schema.",
		Fix:     "stop using the schema in one release, then drop it in a contract migration.",
	},
	{
		ID: ruleDropDatabase, Severity: SeverityError,
		Summary: "DROP DATABASE",
		Why:     "the running version still uses this database; dropping it is not a migration.",
		Fix:     "drop databases by hand, outside the deploy, after checking nothing uses them.",
	},
	{
		ID: ruleRenameEnumValue, Severity: SeverityError,
		Summary: "ALTER TYPE … RENAME VALUE",
		Why:     "the running version still writes and compares the old label; its writes fail as soon as the value is renamed.",
		Fix:     "add the new value (expand), move code and data to it, and stop using the old one before removing it.",
	},
	{
		ID: ruleRenameObject, Severity: SeverityError,
		Summary: "ALTER TYPE, DOMAIN, VIEW, MATERIALIZED VIEW, SEQUENCE, FUNCTION, PROCEDURE or SCHEMA … RENAME TO, or ALTER … SET SCHEMA",
		Why:     "the running version still names the object (a cast to the type, a query of the view, a call of the function, nextval of the sequence, an unqualified name found through search_path); its statements fail as soon as the name changes.",
		Fix:     "create the object under its new name beside the old one (expand), move the code to it, then drop the old one in a contract migration; for a view, a second view with the new name over the same query is enough.",
	},
	{
		ID: ruleAddJSONColumn, Severity: SeverityWarning,
		Summary: "ADD COLUMN of type json on an existing table",
		Why:     "the json type has no equality operator, so the running version's SELECT DISTINCT, UNION and GROUP BY over whole rows of this table fail (could not identify an equality operator for type json) as soon as the column exists.",
		Fix:     "use jsonb, which has equality and is what almost every application wants.",
	},
	{
		ID: ruleChangeColumnType, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "ALTER COLUMN … TYPE",
		Why:     "the running version expects the old type, and most type changes rewrite the table and its indexes under an ACCESS EXCLUSIVE lock that blocks reads and writes; only binary-compatible changes (varchar(n) to text or to a longer varchar, dropping a numeric's precision limit) skip the rewrite.",
		Fix:     "add a column of the new type (expand), write to both and backfill in batches, switch reads, then drop the old column (contract).",
	},
	{
		ID: ruleSetNotNull, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "ALTER COLUMN … SET NOT NULL",
		Why:     "the running version may still insert NULLs, and Postgres scans the whole table under an ACCESS EXCLUSIVE lock to check the column.",
		Fix:     "in contract: ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID, then VALIDATE CONSTRAINT c in a later migration, then SET NOT NULL (Postgres 12+ uses the valid check and skips the scan) and drop the check.",
	},
	{
		ID: ruleAddColumnNotNull, Severity: SeverityError, SQLite: true,
		Summary: "ADD COLUMN … NOT NULL without a DEFAULT",
		Why:     "it fails on a table that has rows, and the running version's INSERTs, which do not know the column, fail once it exists.",
		Fix:     "add the column with a constant DEFAULT (cheap since Postgres 11), or add it nullable and make it NOT NULL in a contract migration once every writer sets it.",
	},
	{
		ID: ruleVolatileDefault, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "ADD COLUMN with a volatile DEFAULT",
		Why:     "a volatile default (random(), clock_timestamp(), gen_random_uuid(), nextval(), or a function whose volatility is unknown) is computed for every existing row, so Postgres rewrites the table under an ACCESS EXCLUSIVE lock; a constant or stable default such as now() is stored once (Postgres 11+) and is instant.",
		Fix:     "add the column without a default (or with a constant one), then SET DEFAULT, then backfill existing rows in batches.",
	},
	{
		ID: ruleAddColumnSerial, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "ADD COLUMN of a serial type or GENERATED … AS IDENTITY",
		Why:     "every existing row needs a new sequence value, so Postgres rewrites the table under an ACCESS EXCLUSIVE lock.",
		Fix:     "add a nullable bigint column, create the sequence and SET DEFAULT nextval(…), backfill in batches, then add the constraints.",
	},
	{
		ID: ruleAddColumnGenerated, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "ADD COLUMN … GENERATED ALWAYS AS (…) STORED",
		Why:     "a stored generated column is computed for every existing row, so Postgres rewrites the table under an ACCESS EXCLUSIVE lock.",
		Fix:     "add a plain column, fill it with a trigger for new rows and a batched backfill for old ones, or compute the value in a view or in the application.",
	},
	{
		ID: ruleAddIdentity, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "ALTER COLUMN … ADD GENERATED AS IDENTITY",
		Why:     "GENERATED ALWAYS rejects the explicit values the running version may insert, and the identity's sequence starts at 1, so it collides with the existing values unless START WITH is set.",
		Fix:     "use GENERATED BY DEFAULT with START WITH above the column's maximum, in a contract migration if the old code inserts explicit values.",
	},
	{
		ID: ruleCreateIndex, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "CREATE INDEX without CONCURRENTLY on an existing table",
		Why:     "building the index holds a SHARE lock that blocks every INSERT, UPDATE and DELETE on the table until the build ends.",
		Fix:     "CREATE INDEX CONCURRENTLY in a migration marked -- cutover:no-transaction (one statement per migration is easiest to resume); on a partitioned table, create it ON ONLY the parent, concurrently on each partition, then ATTACH.",
	},
	{
		ID: ruleDropIndex, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "DROP INDEX without CONCURRENTLY",
		Why:     "it takes an ACCESS EXCLUSIVE lock on the index's table, which waits for running queries and blocks every query queued behind it.",
		Fix:     "DROP INDEX CONCURRENTLY in a migration marked -- cutover:no-transaction.",
	},
	{
		ID: ruleReindex, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "REINDEX without CONCURRENTLY",
		Why:     "it blocks writes to the table, and reads that would use the index, until the rebuild ends.",
		Fix:     "REINDEX … CONCURRENTLY (Postgres 12+) in a migration marked -- cutover:no-transaction.",
	},
	{
		ID: ruleRefreshView, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "REFRESH MATERIALIZED VIEW without CONCURRENTLY",
		Why:     "it holds an ACCESS EXCLUSIVE lock that blocks every read of the view until the refresh ends.",
		Fix:     "give the view a unique index and REFRESH MATERIALIZED VIEW CONCURRENTLY.",
	},
	{
		ID: ruleAddForeignKey, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "add a FOREIGN KEY without NOT VALID on an existing table",
		Why:     "Postgres checks every existing row while holding a SHARE ROW EXCLUSIVE lock on both tables, which blocks their writes for the whole scan.",
		Fix:     "ADD CONSTRAINT … FOREIGN KEY … NOT VALID, then ALTER TABLE … VALIDATE CONSTRAINT … in a later migration (validation only blocks schema changes).",
	},
	{
		ID: ruleAddCheck, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "add a CHECK constraint without NOT VALID on an existing table",
		Why:     "Postgres checks every existing row while holding an ACCESS EXCLUSIVE lock, which blocks reads and writes for the whole scan.",
		Fix:     "ADD CONSTRAINT … CHECK (…) NOT VALID, then VALIDATE CONSTRAINT in a later migration.",
	},
	{
		ID: ruleAddUnique, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "add a UNIQUE or PRIMARY KEY constraint on an existing table",
		Why:     "Postgres builds the constraint's index while holding an ACCESS EXCLUSIVE lock, which blocks reads and writes for the whole build.",
		Fix:     "CREATE UNIQUE INDEX CONCURRENTLY (in a -- cutover:no-transaction migration), then ADD CONSTRAINT … UNIQUE USING INDEX or PRIMARY KEY USING INDEX (make the columns NOT NULL safely first for a primary key).",
	},
	{
		ID: ruleAddExclusion, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "add an EXCLUDE constraint on an existing table",
		Why:     "Postgres builds its index and checks every row while holding an ACCESS EXCLUSIVE lock, and there is no concurrent way to add one.",
		Fix:     "add it while the table is new or small, or in a maintenance window; enforce the rule in the application meanwhile.",
	},
	{
		ID: rulePrimaryKeyUsing, Severity: SeverityWarning, Contract: SeverityWarning,
		Summary: "ADD PRIMARY KEY USING INDEX on an existing table",
		Why:     "a primary key makes its columns NOT NULL: for each column that is not NOT NULL yet, Postgres scans the whole table under the ACCESS EXCLUSIVE lock of the ALTER TABLE, blocking reads and writes for the whole scan.",
		Fix:     "make every column of the index NOT NULL first, the safe way (CHECK (col IS NOT NULL) NOT VALID, VALIDATE, SET NOT NULL), then ADD PRIMARY KEY USING INDEX is instant.",
	},
	{
		ID: ruleDomainConstraint, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "ALTER DOMAIN … ADD CONSTRAINT without NOT VALID",
		Why:     "Postgres checks every column of every table that uses the domain, holding a SHARE lock on each table that blocks its writes for the whole scan.",
		Fix:     "ALTER DOMAIN … ADD CONSTRAINT … NOT VALID, then ALTER DOMAIN … VALIDATE CONSTRAINT in a later migration.",
	},
	{
		ID: ruleSetLogged, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "ALTER TABLE … SET LOGGED or SET UNLOGGED",
		Why:     "it rewrites the whole table and its indexes under an ACCESS EXCLUSIVE lock that blocks reads and writes; SET LOGGED also writes the whole table to the WAL, which replicas must replay.",
		Fix:     "create the table with the persistence it needs; to change it later, build a new table, write to both and backfill, then switch, or do it in a maintenance window.",
	},
	{
		ID: ruleDetachPartition, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "ALTER TABLE … DETACH PARTITION without CONCURRENTLY",
		Why:     "it takes an ACCESS EXCLUSIVE lock on the partitioned table, which waits for every running query on any partition and blocks every query queued behind it.",
		Fix:     "DETACH PARTITION … CONCURRENTLY (Postgres 14+, not possible while the table has a default partition) in a migration marked -- cutover:no-transaction.",
	},
	{
		ID: ruleUpdateWithoutWhere, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "UPDATE or DELETE without WHERE on an existing table",
		Why:     "one statement locks every row of the table until the migration commits, so every write of the running version to the table waits for the whole backfill; on a large table it also leaves a burst of dead rows and WAL. A DELETE without WHERE removes data the running version still serves.",
		Fix:     "backfill in batches (UPDATE … WHERE id BETWEEN … AND …), each committed on its own: a -- cutover:no-transaction migration with one statement per batch, or a job outside the migration; delete data in a contract migration once no running code needs it.",
	},
	{
		ID: ruleIntPrimaryKey, Severity: SeverityWarning, Contract: SeverityWarning,
		Summary: "a primary key column of type integer, smallint, serial or smallserial",
		Why:     "the key runs out at 2³¹−1 (or 32767), and the only way to widen it is ALTER COLUMN … TYPE bigint, which rewrites the table, its indexes and every referencing foreign key column under ACCESS EXCLUSIVE locks.",
		Fix:     "use bigint (bigint GENERATED BY DEFAULT AS IDENTITY, or bigserial) for keys from the start.",
	},
	{
		ID: ruleVacuumFull, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "VACUUM FULL",
		Why:     "it rewrites the whole table under an ACCESS EXCLUSIVE lock that blocks reads and writes.",
		Fix:     "use plain VACUUM, or pg_repack / pg_squeeze to reclaim space online.",
	},
	{
		ID: ruleCluster, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "CLUSTER",
		Why:     "it rewrites the whole table under an ACCESS EXCLUSIVE lock that blocks reads and writes.",
		Fix:     "use pg_repack to reorder the table online.",
	},
	{
		ID: ruleLockTable, Severity: SeverityWarning, Contract: SeverityWarning,
		Summary: "LOCK TABLE in a mode that blocks writes",
		Why:     "the lock is held until the migration commits, blocking the running version's writes (and its reads in ACCESS EXCLUSIVE mode, the default) for that long.",
		Fix:     "keep the migration short, take the weakest lock that works, or drop the explicit lock; the runner already bounds the wait with lock_timeout.",
	},
	{
		ID: ruleLockTimeoutDisabled, Severity: SeverityWarning, Contract: SeverityWarning,
		Summary: "SET lock_timeout = 0, or RESET it",
		Why:     "the runner sets lock_timeout (5s by default) so that a statement waiting for a lock gives up instead of queueing every query behind it; turning it off removes that protection.",
		Fix:     "keep the runner's lock_timeout (configure [database] lock_timeout), or SET a larger finite value for the one statement that needs it.",
	},
	{
		ID: ruleSlowAfterLock, Severity: SeverityError, Contract: SeverityWarning,
		Summary: "a slow statement (UPDATE, DELETE, INSERT … SELECT, validation, index build) after a lock-taking statement in the same transaction",
		Why:     "the earlier statement's ACCESS EXCLUSIVE lock on an existing table is held until the transaction commits, so the table is unreadable for as long as this statement runs.",
		Fix:     "move the backfill or validation to its own migration, or run the file with -- cutover:no-transaction so each statement commits on its own.",
	},
	{
		ID: ruleConcurrentlyInTx, Severity: SeverityError, Contract: SeverityError,
		Summary: "CONCURRENTLY in a migration that runs in a transaction",
		Why:     "CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY and DETACH PARTITION CONCURRENTLY cannot run inside a transaction block; the migration fails.",
		Fix:     "add -- cutover:no-transaction to the migration's header, so its statements run one by one.",
	},
	{
		ID: ruleEnumValueInTx, Severity: SeverityWarning, Contract: SeverityWarning,
		Summary: "ALTER TYPE … ADD VALUE in a migration that runs in a transaction",
		Why:     "before Postgres 12 it cannot run inside a transaction block; since 12 it can, but the new value cannot be used until the transaction commits.",
		Fix:     "put ADD VALUE in its own migration (with -- cutover:no-transaction before Postgres 12) and use the value in a later one.",
	},
	{
		ID: ruleTransactionNesting, Severity: SeverityError, Contract: SeverityError, SQLite: true,
		Summary: "BEGIN, COMMIT or ROLLBACK in a migration that runs in a transaction",
		Why:     "the runner already wraps the migration in a transaction; a COMMIT inside ends it early, so a later failure leaves the migration half applied and unrecorded.",
		Fix:     "remove the transaction statements, or mark the migration -- cutover:no-transaction if it must manage its own transactions.",
	},
	{
		ID: ruleParseError, Severity: SeverityError, Contract: SeverityError, SQLite: true,
		Summary: "the migration does not parse",
		Why:     "cutover cannot check a statement it cannot parse, and the database would reject it too.",
		Fix:     "fix the syntax at this line; Postgres migrations are read by the PostgreSQL 17 parser.",
	},
	{
		ID: ruleAllowWithoutReason, Severity: SeverityError, Contract: SeverityError, SQLite: true,
		Summary: "a -- cutover:allow comment without a rule id and a reason",
		Why:     "an exception to a safety rule must say why it is safe here, so the next reader can check it; it suppresses nothing without one.",
		Fix:     "write -- cutover:allow RULE-ID reason text, e.g. -- cutover:allow drop-table the table has been unused since v41.",
	},
	{
		ID: ruleAllowUnknownRule, Severity: SeverityWarning, Contract: SeverityWarning, SQLite: true,
		Summary: "a -- cutover:allow comment naming a rule that does not exist",
		Why:     "a misspelt rule id suppresses nothing.",
		Fix:     "use one of the ids listed by cutover migrate lint --help.",
	},
}

// ruleByID indexes rules by ID.
var ruleByID = func() map[string]Rule {
	m := make(map[string]Rule, len(rules))
	for _, r := range rules {
		m[r.ID] = r
	}
	return m
}()

// Rules returns every rule lint checks, for documentation and help text.
func Rules() []Rule {
	return append([]Rule(nil), rules...)
}
