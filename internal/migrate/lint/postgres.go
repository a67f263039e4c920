package lint

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cutover/cutover/internal/migrate/sqlsplit"
)

// relation names a table, with its schema when the SQL gives one.
type relation struct{ schema, name string }

func (r relation) String() string {
	if r.schema != "" {
		return r.schema + "." + r.name
	}
	return r.name
}

// tables is a set of tables, where a name without a schema matches the same
// name in any schema: migrations rarely qualify names, and treating a.t and
// t as one table only errs towards exempting a table created in the file.
type tables []relation

func (ts tables) has(r relation) bool {
	for _, t := range ts {
		if t.name == r.name && (t.schema == "" || r.schema == "" || t.schema == r.schema) {
			return true
		}
	}
	return false
}

// postgresChecker checks the statements of one Postgres file in order. It
// remembers what earlier statements did: tables and indexes created in the
// same file are new, nobody else uses them, and most rules exempt them.
type postgresChecker struct {
	transactional bool
	created       tables
	createdIdx    map[string]bool
	dropped       tables
	// locked names the existing table on which an earlier statement of a
	// transactional file took an ACCESS EXCLUSIVE lock, held until commit.
	locked string
}

func newPostgresChecker(transactional bool) *postgresChecker {
	return &postgresChecker{transactional: transactional, createdIdx: make(map[string]bool)}
}

func rangeVar(rv *pg_query.RangeVar) relation {
	if rv == nil {
		return relation{}
	}
	return relation{schema: rv.Schemaname, name: rv.Relname}
}

// nameList converts a qualified name, a list of String nodes, to a relation.
func nameList(items []*pg_query.Node) relation {
	var parts []string
	for _, it := range items {
		parts = append(parts, it.GetString_().GetSval())
	}
	switch len(parts) {
	case 0:
		return relation{}
	case 1:
		return relation{name: parts[0]}
	}
	return relation{schema: parts[len(parts)-2], name: parts[len(parts)-1]}
}

func (c *postgresChecker) isNew(r relation) bool { return c.created.has(r) }

func (c *postgresChecker) check(st sqlsplit.Statement) []hit {
	var hits []hit
	add := func(rule, note string) { hits = append(hits, hit{rule: rule, note: note}) }
	locks := "" // the existing table this statement locks ACCESS EXCLUSIVE
	slow := false

	switch n := st.Tree.GetNode().(type) {
	case *pg_query.Node_CreateStmt:
		c.created = append(c.created, rangeVar(n.CreateStmt.Relation))
	case *pg_query.Node_CreateTableAsStmt:
		if into := n.CreateTableAsStmt.Into; into != nil {
			c.created = append(c.created, rangeVar(into.Rel))
		}
		slow = true

	case *pg_query.Node_DropStmt:
		d := n.DropStmt
		switch d.RemoveType {
		case pg_query.ObjectType_OBJECT_TABLE:
			for _, o := range d.Objects {
				r := nameList(o.GetList().GetItems())
				if !c.isNew(r) {
					add(ruleDropTable, fmt.Sprintf("table %s", r))
				}
				c.dropped = append(c.dropped, r)
			}
		case pg_query.ObjectType_OBJECT_INDEX:
			allNew := true
			for _, o := range d.Objects {
				if !c.createdIdx[nameList(o.GetList().GetItems()).name] {
					allNew = false
				}
			}
			if d.Concurrent {
				if c.transactional {
					add(ruleConcurrentlyInTx, "")
				}
			} else if !allNew {
				add(ruleDropIndex, "")
				locks = "the index's table"
			}
		case pg_query.ObjectType_OBJECT_SCHEMA:
			add(ruleDropSchema, "")
		}

	case *pg_query.Node_DropdbStmt:
		add(ruleDropDatabase, "")

	case *pg_query.Node_TruncateStmt:
		for _, rel := range n.TruncateStmt.Relations {
			if r := rangeVar(rel.GetRangeVar()); !c.isNew(r) {
				add(ruleTruncate, fmt.Sprintf("table %s", r))
				locks = r.String()
			}
		}

	case *pg_query.Node_RenameStmt:
		hits = append(hits, c.rename(n.RenameStmt, &locks)...)

	case *pg_query.Node_AlterTableStmt:
		hits = append(hits, c.alterTable(n.AlterTableStmt, &locks, &slow)...)

	case *pg_query.Node_IndexStmt:
		idx := n.IndexStmt
		if idx.Idxname != "" {
			c.createdIdx[idx.Idxname] = true
		}
		r := rangeVar(idx.Relation)
		switch {
		case idx.Concurrent:
			if c.transactional {
				add(ruleConcurrentlyInTx, "")
			}
		case !c.isNew(r):
			add(ruleCreateIndex, fmt.Sprintf("table %s", r))
			slow = true
		}

	case *pg_query.Node_ReindexStmt:
		if hasOption(n.ReindexStmt.Params, "concurrently") {
			if c.transactional {
				add(ruleConcurrentlyInTx, "")
			}
		} else {
			add(ruleReindex, "")
			slow = true
		}

	case *pg_query.Node_RefreshMatViewStmt:
		if !n.RefreshMatViewStmt.Concurrent {
			add(ruleRefreshView, "")
		}
		slow = true

	case *pg_query.Node_VacuumStmt:
		if n.VacuumStmt.IsVacuumcmd && hasOption(n.VacuumStmt.Options, "full") {
			add(ruleVacuumFull, "")
		}
	case *pg_query.Node_ClusterStmt:
		add(ruleCluster, "")

	case *pg_query.Node_LockStmt:
		// Lock modes as numbered by Postgres' lockdefs.h: SHARE (5) and
		// above conflict with writes; ACCESS EXCLUSIVE (8) with reads too.
		const shareLock, accessExclusiveLock = 5, 8
		l := n.LockStmt
		if l.Mode >= shareLock {
			for _, rel := range l.Relations {
				if r := rangeVar(rel.GetRangeVar()); !c.isNew(r) {
					add(ruleLockTable, fmt.Sprintf("table %s", r))
					if l.Mode == accessExclusiveLock {
						locks = r.String()
					}
				}
			}
		}

	case *pg_query.Node_VariableSetStmt:
		v := n.VariableSetStmt
		if strings.EqualFold(v.Name, "lock_timeout") {
			switch v.Kind {
			case pg_query.VariableSetKind_VAR_RESET, pg_query.VariableSetKind_VAR_SET_DEFAULT:
				add(ruleLockTimeoutDisabled, "lock_timeout back to the server default, usually no limit")
			case pg_query.VariableSetKind_VAR_SET_VALUE:
				if len(v.Args) == 1 && isZeroSetting(v.Args[0]) {
					add(ruleLockTimeoutDisabled, "lock_timeout = 0")
				}
			}
		} else if v.Kind == pg_query.VariableSetKind_VAR_RESET_ALL {
			add(ruleLockTimeoutDisabled, "RESET ALL resets lock_timeout")
		}

	case *pg_query.Node_AlterEnumStmt:
		e := n.AlterEnumStmt
		switch {
		case e.OldVal != "":
			add(ruleRenameEnumValue, fmt.Sprintf("value %q", e.OldVal))
		case e.NewVal != "" && c.transactional:
			add(ruleEnumValueInTx, "")
		}

	case *pg_query.Node_TransactionStmt:
		switch n.TransactionStmt.Kind {
		case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START,
			pg_query.TransactionStmtKind_TRANS_STMT_COMMIT, pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK,
			pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
			if c.transactional {
				add(ruleTransactionNesting, "")
			}
		}

	case *pg_query.Node_UpdateStmt, *pg_query.Node_DeleteStmt:
		slow = true
	case *pg_query.Node_InsertStmt:
		// INSERT … VALUES is quick; INSERT … SELECT FROM copies a table.
		sel := n.InsertStmt.SelectStmt.GetSelectStmt()
		slow = sel != nil && len(sel.FromClause) > 0
	}

	if slow && c.transactional && c.locked != "" {
		add(ruleSlowAfterLock, fmt.Sprintf("%s is locked by an earlier statement", c.locked))
	}
	if locks != "" && c.transactional && c.locked == "" {
		c.locked = locks
	}
	return hits
}

// rename checks ALTER … RENAME.
func (c *postgresChecker) rename(rn *pg_query.RenameStmt, locks *string) []hit {
	var hits []hit
	r := rangeVar(rn.Relation)
	switch rn.RenameType {
	case pg_query.ObjectType_OBJECT_TABLE:
		to := relation{schema: r.schema, name: rn.Newname}
		if c.isNew(r) {
			if c.dropped.has(to) {
				hits = append(hits, hit{rule: ruleTableRebuild, note: fmt.Sprintf("table %s replaces %s", r, to)})
			}
			c.created = append(c.created, to)
			return hits
		}
		hits = append(hits, hit{rule: ruleRenameTable, note: fmt.Sprintf("table %s to %s", r, rn.Newname)})
		*locks = r.String()
	case pg_query.ObjectType_OBJECT_COLUMN:
		if rn.RelationType == pg_query.ObjectType_OBJECT_TABLE && !c.isNew(r) {
			hits = append(hits, hit{rule: ruleRenameColumn, note: fmt.Sprintf("column %s.%s to %s", r, rn.Subname, rn.Newname)})
			*locks = r.String()
		}
	}
	return hits
}

// alterTable checks the subcommands of ALTER TABLE.
func (c *postgresChecker) alterTable(at *pg_query.AlterTableStmt, locks *string, slow *bool) []hit {
	if at.Objtype != pg_query.ObjectType_OBJECT_TABLE {
		return nil
	}
	r := rangeVar(at.Relation)
	if c.isNew(r) {
		return nil
	}
	var hits []hit
	add := func(rule, note string) { hits = append(hits, hit{rule: rule, note: note}) }
	onlyValidate := true
	for _, cn := range at.Cmds {
		cmd := cn.GetAlterTableCmd()
		if cmd == nil {
			continue
		}
		col := fmt.Sprintf("column %s.%s", r, cmd.Name)
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_DropColumn:
			add(ruleDropColumn, col)
		case pg_query.AlterTableType_AT_AlterColumnType:
			add(ruleChangeColumnType, col)
		case pg_query.AlterTableType_AT_SetNotNull:
			add(ruleSetNotNull, col)
		case pg_query.AlterTableType_AT_AddIdentity:
			add(ruleAddIdentity, col)
		case pg_query.AlterTableType_AT_AddColumn:
			hits = append(hits, addColumn(r, cmd.Def.GetColumnDef())...)
		case pg_query.AlterTableType_AT_AddConstraint:
			hits = append(hits, addConstraint(r, cmd.Def.GetConstraint())...)
		case pg_query.AlterTableType_AT_ValidateConstraint:
			*slow = true
		case pg_query.AlterTableType_AT_DetachPartition:
			if cmd.Def.GetPartitionCmd().GetConcurrent() && c.transactional {
				add(ruleConcurrentlyInTx, "")
			}
		}
		if cmd.Subtype != pg_query.AlterTableType_AT_ValidateConstraint {
			onlyValidate = false
		}
	}
	if !onlyValidate {
		*locks = r.String()
	}
	return hits
}

// serialTypes are the pseudo-types that give a column a sequence default.
var serialTypes = map[string]bool{
	"serial": true, "serial2": true, "serial4": true, "serial8": true,
	"smallserial": true, "bigserial": true,
}

// addColumn checks ALTER TABLE … ADD COLUMN on an existing table.
func addColumn(r relation, def *pg_query.ColumnDef) []hit {
	if def == nil {
		return nil
	}
	var hits []hit
	add := func(rule, note string) { hits = append(hits, hit{rule: rule, note: note}) }
	col := fmt.Sprintf("column %s.%s", r, def.Colname)

	notNull := def.IsNotNull
	hasDefault := def.RawDefault != nil && !isNullConst(def.RawDefault)
	var typeName string
	if names := def.GetTypeName().GetNames(); len(names) > 0 {
		typeName = strings.ToLower(names[len(names)-1].GetString_().GetSval())
	}
	if serialTypes[typeName] {
		add(ruleAddColumnSerial, col)
		hasDefault = true
	}
	for _, cn := range def.Constraints {
		con := cn.GetConstraint()
		if con == nil {
			continue
		}
		switch con.Contype {
		case pg_query.ConstrType_CONSTR_NOTNULL:
			notNull = true
		case pg_query.ConstrType_CONSTR_DEFAULT:
			if con.RawExpr != nil && !isNullConst(con.RawExpr) {
				hasDefault = true
				if fn, unknown := volatileCall(con.RawExpr); fn != "" {
					note := fmt.Sprintf("%s defaults to %s(), which is volatile", col, fn)
					if unknown {
						note = fmt.Sprintf("%s defaults to %s(), whose volatility cutover cannot know", col, fn)
					}
					add(ruleVolatileDefault, note)
				}
			}
		case pg_query.ConstrType_CONSTR_IDENTITY:
			add(ruleAddColumnSerial, col)
			hasDefault = true
		case pg_query.ConstrType_CONSTR_GENERATED:
			add(ruleAddColumnGenerated, col)
			hasDefault = true
		case pg_query.ConstrType_CONSTR_PRIMARY:
			notNull = true
			add(ruleAddUnique, col)
		case pg_query.ConstrType_CONSTR_UNIQUE:
			add(ruleAddUnique, col)
		case pg_query.ConstrType_CONSTR_FOREIGN:
			add(ruleAddForeignKey, col)
		case pg_query.ConstrType_CONSTR_CHECK:
			add(ruleAddCheck, col)
		}
	}
	if notNull && !hasDefault {
		add(ruleAddColumnNotNull, col)
	}
	return hits
}

// addConstraint checks ALTER TABLE … ADD CONSTRAINT on an existing table.
func addConstraint(r relation, con *pg_query.Constraint) []hit {
	if con == nil {
		return nil
	}
	note := fmt.Sprintf("table %s", r)
	if con.Conname != "" {
		note = fmt.Sprintf("constraint %s on table %s", con.Conname, r)
	}
	switch con.Contype {
	case pg_query.ConstrType_CONSTR_FOREIGN:
		if !con.SkipValidation {
			return []hit{{rule: ruleAddForeignKey, note: note}}
		}
	case pg_query.ConstrType_CONSTR_CHECK:
		if !con.SkipValidation {
			return []hit{{rule: ruleAddCheck, note: note}}
		}
	case pg_query.ConstrType_CONSTR_UNIQUE, pg_query.ConstrType_CONSTR_PRIMARY:
		if con.Indexname == "" {
			return []hit{{rule: ruleAddUnique, note: note}}
		}
	case pg_query.ConstrType_CONSTR_EXCLUSION:
		return []hit{{rule: ruleAddExclusion, note: note}}
	}
	return nil
}

// hasOption reports whether a list of DefElem options holds name, enabled.
func hasOption(opts []*pg_query.Node, name string) bool {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || !strings.EqualFold(d.Defname, name) {
			continue
		}
		if d.Arg == nil {
			return true
		}
		switch a := d.Arg.GetNode().(type) {
		case *pg_query.Node_Boolean:
			return a.Boolean.Boolval
		case *pg_query.Node_Integer:
			return a.Integer.Ival != 0
		case *pg_query.Node_String_:
			v := strings.ToLower(a.String_.Sval)
			return v == "true" || v == "on" || v == "1"
		}
		return true
	}
	return false
}

// isNullConst reports whether n is the literal NULL.
func isNullConst(n *pg_query.Node) bool {
	c := n.GetAConst()
	return c != nil && c.Isnull
}

// isZeroSetting reports whether a SET argument turns a timeout off: 0, or
// '0' with or without a unit.
func isZeroSetting(n *pg_query.Node) bool {
	c := n.GetAConst()
	if c == nil {
		return false
	}
	if i := c.GetIval(); i != nil {
		return i.Ival == 0
	}
	if s := c.GetSval(); s != nil {
		v := strings.TrimSpace(s.Sval)
		unit := strings.TrimSpace(strings.TrimLeft(v, "0123456789"))
		num := strings.TrimSpace(v[:len(v)-len(strings.TrimLeft(v, "0123456789"))])
		return num != "" && strings.Trim(num, "0") == "" && strings.Trim(unit, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
	}
	return false
}

// volatileFuncs are built-in functions marked VOLATILE: a column default
// calling one is computed per row, so adding the column rewrites the table.
var volatileFuncs = map[string]bool{
	"random": true, "random_normal": true, "setseed": true,
	"clock_timestamp": true, "timeofday": true,
	"gen_random_uuid": true, "uuidv4": true, "uuidv7": true,
	"uuid_generate_v1": true, "uuid_generate_v1mc": true, "uuid_generate_v4": true,
	"gen_random_bytes": true, "nextval": true, "currval": true, "lastval": true, "setval": true,
	"txid_current": true, "pg_current_xact_id": true,
}

// stableFuncs are common built-in functions that are STABLE or IMMUTABLE:
// a default calling only these is evaluated once when the column is added.
var stableFuncs = map[string]bool{
	"now": true, "transaction_timestamp": true, "statement_timestamp": true,
	"lower": true, "upper": true, "btrim": true, "ltrim": true, "rtrim": true,
	"concat": true, "concat_ws": true, "length": true, "md5": true, "replace": true,
	"abs": true, "round": true, "floor": true, "ceil": true, "trunc": true,
	"to_char": true, "to_date": true, "to_timestamp": true, "to_number": true,
	"date_trunc": true, "date_part": true, "extract": true, "timezone": true,
	"make_date": true, "make_time": true, "make_timestamp": true, "make_timestamptz": true, "make_interval": true,
	"json_build_object": true, "jsonb_build_object": true, "json_build_array": true, "jsonb_build_array": true,
	"to_json": true, "to_jsonb": true, "array_fill": true,
}

// volatileCall returns the first function in expression n that is volatile,
// or whose volatility is unknown (unknown is then true): a function created
// without a volatility is VOLATILE. It returns "" when every call is known
// to be stable or immutable.
func volatileCall(n *pg_query.Node) (name string, unknown bool) {
	walk(n.ProtoReflect(), func(m protoreflect.Message) bool {
		fc, ok := m.Interface().(*pg_query.FuncCall)
		if !ok || name != "" {
			return name == ""
		}
		names := fc.GetFuncname()
		if len(names) == 0 {
			return true
		}
		fn := strings.ToLower(names[len(names)-1].GetString_().GetSval())
		switch {
		case volatileFuncs[fn]:
			name = fn
		case !stableFuncs[fn]:
			name, unknown = fn, true
		}
		return name == ""
	})
	return name, unknown
}

// walk calls visit for m and every message below it, depth first, until
// visit returns false.
func walk(m protoreflect.Message, visit func(protoreflect.Message) bool) bool {
	if !visit(m) {
		return false
	}
	cont := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && cont; i++ {
				cont = walk(l.Get(i).Message(), visit)
			}
			return cont
		}
		cont = walk(v.Message(), visit)
		return cont
	})
	return cont
}
