package lint

import (
	"fmt"
	"strings"

	"github.com/cutover/cutover/internal/migrate/pgtree"
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

func rangeVar(rv *pgtree.RangeVar) relation {
	if rv == nil {
		return relation{}
	}
	return relation{schema: rv.Schemaname, name: rv.Relname}
}

// nameList converts a qualified name, a list of String nodes, to a relation.
func nameList(items []*pgtree.Node) relation {
	var parts []string
	for _, it := range items {
		parts = append(parts, it.GetString().GetSval())
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
	case *pgtree.CreateStmt:
		r := rangeVar(n.Relation)
		c.created = append(c.created, r)
		hits = append(hits, intPrimaryKeys(r, n.TableElts)...)
	case *pgtree.CreateTableAsStmt:
		if into := n.Into; into != nil {
			c.created = append(c.created, rangeVar(into.Rel))
		}
		slow = true

	case *pgtree.DropStmt:
		switch n.RemoveType {
		case pgtree.ObjectTable:
			for _, o := range n.Objects {
				r := nameList(o.GetList().GetItems())
				if !c.isNew(r) {
					add(ruleDropTable, fmt.Sprintf("table %s", r))
				}
				c.dropped = append(c.dropped, r)
			}
		case pgtree.ObjectIndex:
			allNew := true
			for _, o := range n.Objects {
				if !c.createdIdx[nameList(o.GetList().GetItems()).name] {
					allNew = false
				}
			}
			if n.Concurrent {
				if c.transactional {
					add(ruleConcurrentlyInTx, "")
				}
			} else if !allNew {
				add(ruleDropIndex, "")
				locks = "the index's table"
			}
		case pgtree.ObjectSchema:
			add(ruleDropSchema, "")
		}

	case *pgtree.DropdbStmt:
		add(ruleDropDatabase, "")

	case *pgtree.TruncateStmt:
		for _, rel := range n.Relations {
			if r := rangeVar(rel.GetRangeVar()); !c.isNew(r) {
				add(ruleTruncate, fmt.Sprintf("table %s", r))
				locks = r.String()
			}
		}

	case *pgtree.RenameStmt:
		hits = append(hits, c.rename(n, &locks)...)

	case *pgtree.AlterObjectSchemaStmt:
		if n.Relation != nil {
			if r := rangeVar(n.Relation); !c.isNew(r) {
				add(ruleRenameObject, fmt.Sprintf("%s %s moves to schema %s", objectKind(n.ObjectType), r, n.Newschema))
			}
		} else {
			add(ruleRenameObject, fmt.Sprintf("%s %s moves to schema %s", objectKind(n.ObjectType), objectName(n.Object), n.Newschema))
		}

	case *pgtree.AlterDomainStmt:
		if con := n.Def.GetConstraint(); n.Subtype == "C" && con != nil && con.Contype == pgtree.ConstrCheck && !con.SkipValidation {
			add(ruleDomainConstraint, fmt.Sprintf("domain %s", nameList(n.TypeName)))
			slow = true
		}

	case *pgtree.AlterTableStmt:
		hits = append(hits, c.alterTable(n, &locks, &slow)...)

	case *pgtree.IndexStmt:
		if n.Idxname != "" {
			c.createdIdx[n.Idxname] = true
		}
		r := rangeVar(n.Relation)
		switch {
		case n.Concurrent:
			if c.transactional {
				add(ruleConcurrentlyInTx, "")
			}
		case !c.isNew(r):
			add(ruleCreateIndex, fmt.Sprintf("table %s", r))
			slow = true
		}

	case *pgtree.ReindexStmt:
		if hasOption(n.Params, "concurrently") {
			if c.transactional {
				add(ruleConcurrentlyInTx, "")
			}
		} else {
			add(ruleReindex, "")
			slow = true
		}

	case *pgtree.RefreshMatViewStmt:
		if !n.Concurrent {
			add(ruleRefreshView, "")
		}
		slow = true

	case *pgtree.VacuumStmt:
		if n.IsVacuumcmd && hasOption(n.Options, "full") {
			add(ruleVacuumFull, "")
		}
	case *pgtree.ClusterStmt:
		add(ruleCluster, "")

	case *pgtree.LockStmt:
		// Lock modes as numbered by Postgres' lockdefs.h: SHARE (5) and
		// above conflict with writes; ACCESS EXCLUSIVE (8) with reads too.
		const shareLock, accessExclusiveLock = 5, 8
		if n.Mode >= shareLock {
			for _, rel := range n.Relations {
				if r := rangeVar(rel.GetRangeVar()); !c.isNew(r) {
					add(ruleLockTable, fmt.Sprintf("table %s", r))
					if n.Mode == accessExclusiveLock {
						locks = r.String()
					}
				}
			}
		}

	case *pgtree.VariableSetStmt:
		if strings.EqualFold(n.Name, "lock_timeout") {
			switch n.Kind {
			case pgtree.VarReset, pgtree.VarSetDefault:
				add(ruleLockTimeoutDisabled, "lock_timeout back to the server default, usually no limit")
			case pgtree.VarSetValue:
				if len(n.Args) == 1 && isZeroSetting(n.Args[0]) {
					add(ruleLockTimeoutDisabled, "lock_timeout = 0")
				}
			}
		} else if n.Kind == pgtree.VarResetAll {
			add(ruleLockTimeoutDisabled, "RESET ALL resets lock_timeout")
		}

	case *pgtree.AlterEnumStmt:
		switch {
		case n.OldVal != "":
			add(ruleRenameEnumValue, fmt.Sprintf("value %q", n.OldVal))
		case n.NewVal != "" && c.transactional:
			add(ruleEnumValueInTx, "")
		}

	case *pgtree.TransactionStmt:
		switch n.Kind {
		case pgtree.TransStmtBegin, pgtree.TransStmtStart, pgtree.TransStmtCommit,
			pgtree.TransStmtRollback, pgtree.TransStmtPrepare:
			if c.transactional {
				add(ruleTransactionNesting, "")
			}
		}

	case *pgtree.UpdateStmt:
		if r := rangeVar(n.Relation); n.WhereClause == nil && !c.isNew(r) {
			add(ruleUpdateWithoutWhere, fmt.Sprintf("every row of table %s", r))
		}
		slow = true
	case *pgtree.DeleteStmt:
		if r := rangeVar(n.Relation); n.WhereClause == nil && !c.isNew(r) {
			add(ruleUpdateWithoutWhere, fmt.Sprintf("every row of table %s", r))
		}
		slow = true
	case *pgtree.InsertStmt:
		// INSERT … VALUES is quick; INSERT … SELECT FROM copies a table.
		sel := n.SelectStmt.GetSelectStmt()
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
func (c *postgresChecker) rename(rn *pgtree.RenameStmt, locks *string) []hit {
	var hits []hit
	r := rangeVar(rn.Relation)
	switch rn.RenameType {
	case pgtree.ObjectTable:
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
	case pgtree.ObjectColumn:
		if rn.RelationType == pgtree.ObjectTable && !c.isNew(r) {
			hits = append(hits, hit{rule: ruleRenameColumn, note: fmt.Sprintf("column %s.%s to %s", r, rn.Subname, rn.Newname)})
			*locks = r.String()
		}
	case pgtree.ObjectView, pgtree.ObjectMatView, pgtree.ObjectSequence:
		if !c.isNew(r) {
			hits = append(hits, hit{rule: ruleRenameObject, note: fmt.Sprintf("%s %s to %s", objectKind(rn.RenameType), r, rn.Newname)})
		}
	case pgtree.ObjectDataType, pgtree.ObjectDomain, pgtree.ObjectFunction, pgtree.ObjectProcedure, pgtree.ObjectRoutine:
		hits = append(hits, hit{rule: ruleRenameObject, note: fmt.Sprintf("%s %s to %s", objectKind(rn.RenameType), objectName(rn.Object), rn.Newname)})
	case pgtree.ObjectSchema:
		hits = append(hits, hit{rule: ruleRenameObject, note: fmt.Sprintf("schema %s to %s", rn.Subname, rn.Newname)})
	}
	return hits
}

// objectKind names a kind of object in findings.
func objectKind(t pgtree.ObjectType) string {
	switch t {
	case pgtree.ObjectMatView:
		return "materialized view"
	case pgtree.ObjectDataType:
		return "type"
	}
	return strings.ToLower(strings.TrimPrefix(string(t), "OBJECT_"))
}

// objectName returns the qualified name of a type, domain or function as
// RenameStmt and AlterObjectSchemaStmt give it.
func objectName(n *pgtree.Node) string {
	if f := n.GetObjectWithArgs(); f != nil {
		return nameList(f.Objname).String()
	}
	if l := n.GetList(); l != nil {
		return nameList(l.Items).String()
	}
	if s := n.GetString(); s != nil {
		return s.Sval
	}
	return "?"
}

// alterTable checks the subcommands of ALTER TABLE.
func (c *postgresChecker) alterTable(at *pgtree.AlterTableStmt, locks *string, slow *bool) []hit {
	if at.Objtype != pgtree.ObjectTable {
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
		case pgtree.ATDropColumn:
			add(ruleDropColumn, col)
		case pgtree.ATAlterColumnType:
			add(ruleChangeColumnType, col)
		case pgtree.ATSetNotNull:
			add(ruleSetNotNull, col)
		case pgtree.ATAddIdentity:
			add(ruleAddIdentity, col)
		case pgtree.ATAddColumn:
			hits = append(hits, addColumn(r, cmd.Def.GetColumnDef())...)
		case pgtree.ATAddConstraint:
			hits = append(hits, addConstraint(r, cmd.Def.GetConstraint())...)
		case pgtree.ATValidateConstraint:
			*slow = true
		case pgtree.ATDetachPartition:
			p := cmd.Def.GetPartitionCmd()
			switch {
			case p != nil && p.Concurrent:
				if c.transactional {
					add(ruleConcurrentlyInTx, "")
				}
			default:
				add(ruleDetachPartition, fmt.Sprintf("partition %s of table %s", rangeVar(p.GetName()), r))
			}
		case pgtree.ATSetLogged, pgtree.ATSetUnLogged:
			add(ruleSetLogged, fmt.Sprintf("table %s", r))
			*slow = true
		}
		if cmd.Subtype != pgtree.ATValidateConstraint {
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
func addColumn(r relation, def *pgtree.ColumnDef) []hit {
	if def == nil {
		return nil
	}
	var hits []hit
	add := func(rule, note string) { hits = append(hits, hit{rule: rule, note: note}) }
	col := fmt.Sprintf("column %s.%s", r, def.Colname)

	notNull := def.IsNotNull
	hasDefault := def.RawDefault != nil && !isNullConst(def.RawDefault)
	typeName := columnType(def)
	if serialTypes[typeName] {
		add(ruleAddColumnSerial, col)
		hasDefault = true
	}
	if typeName == "json" {
		add(ruleAddJSONColumn, col)
	}
	for _, cn := range def.Constraints {
		con := cn.GetConstraint()
		if con == nil {
			continue
		}
		switch con.Contype {
		case pgtree.ConstrNotNull:
			notNull = true
		case pgtree.ConstrDefault:
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
		case pgtree.ConstrIdentity:
			add(ruleAddColumnSerial, col)
			hasDefault = true
		case pgtree.ConstrGenerated:
			add(ruleAddColumnGenerated, col)
			hasDefault = true
		case pgtree.ConstrPrimary:
			notNull = true
			add(ruleAddUnique, col)
			if intKeyTypes[typeName] {
				add(ruleIntPrimaryKey, fmt.Sprintf("%s is %s", col, typeName))
			}
		case pgtree.ConstrUnique:
			add(ruleAddUnique, col)
		case pgtree.ConstrForeign:
			add(ruleAddForeignKey, col)
		case pgtree.ConstrCheck:
			add(ruleAddCheck, col)
		}
	}
	if notNull && !hasDefault {
		add(ruleAddColumnNotNull, col)
	}
	return hits
}

// intKeyTypes are the 16- and 32-bit integer types, as the parser names
// them.
var intKeyTypes = map[string]bool{
	"int2": true, "int4": true, "serial": true, "serial2": true, "serial4": true, "smallserial": true,
}

// columnType returns the last part of a column's type name, lower-case.
func columnType(def *pgtree.ColumnDef) string {
	if def == nil || def.TypeName == nil || len(def.TypeName.Names) == 0 {
		return ""
	}
	names := def.TypeName.Names
	return strings.ToLower(names[len(names)-1].GetString().GetSval())
}

// intPrimaryKeys checks the primary key of CREATE TABLE, given on a column
// or as a table constraint, for 16- and 32-bit integer columns.
func intPrimaryKeys(r relation, elts []*pgtree.Node) []hit {
	types := map[string]string{}
	var keys []string
	for _, e := range elts {
		if def := e.GetColumnDef(); def != nil {
			types[def.Colname] = columnType(def)
			for _, cn := range def.Constraints {
				if cn.GetConstraint().GetContype() == pgtree.ConstrPrimary {
					keys = append(keys, def.Colname)
				}
			}
		}
		if con := e.GetConstraint(); con != nil && con.Contype == pgtree.ConstrPrimary {
			for _, k := range con.Keys {
				keys = append(keys, k.GetString().GetSval())
			}
		}
	}
	var hits []hit
	for _, k := range keys {
		if t := types[k]; intKeyTypes[t] {
			hits = append(hits, hit{rule: ruleIntPrimaryKey, note: fmt.Sprintf("column %s.%s is %s", r, k, t)})
		}
	}
	return hits
}

// addConstraint checks ALTER TABLE … ADD CONSTRAINT on an existing table.
func addConstraint(r relation, con *pgtree.Constraint) []hit {
	if con == nil {
		return nil
	}
	note := fmt.Sprintf("table %s", r)
	if con.Conname != "" {
		note = fmt.Sprintf("constraint %s on table %s", con.Conname, r)
	}
	switch con.Contype {
	case pgtree.ConstrForeign:
		if !con.SkipValidation {
			return []hit{{rule: ruleAddForeignKey, note: note}}
		}
	case pgtree.ConstrCheck:
		if !con.SkipValidation {
			return []hit{{rule: ruleAddCheck, note: note}}
		}
	case pgtree.ConstrUnique, pgtree.ConstrPrimary:
		if con.Indexname == "" {
			return []hit{{rule: ruleAddUnique, note: note}}
		}
		if con.Contype == pgtree.ConstrPrimary {
			return []hit{{rule: rulePrimaryKeyUsing, note: fmt.Sprintf("%s using index %s", note, con.Indexname)}}
		}
	case pgtree.ConstrExclusion:
		return []hit{{rule: ruleAddExclusion, note: note}}
	}
	return nil
}

// hasOption reports whether a list of DefElem options holds name, enabled.
func hasOption(opts []*pgtree.Node, name string) bool {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || !strings.EqualFold(d.Defname, name) {
			continue
		}
		if d.Arg == nil {
			return true
		}
		switch a := d.Arg.GetNode().(type) {
		case *pgtree.Boolean:
			return a.Boolval
		case *pgtree.Integer:
			return a.Ival != 0
		case *pgtree.String:
			v := strings.ToLower(a.Sval)
			return v == "true" || v == "on" || v == "1"
		}
		return true
	}
	return false
}

// isNullConst reports whether n is the literal NULL.
func isNullConst(n *pgtree.Node) bool {
	c := n.GetAConst()
	return c != nil && c.Isnull
}

// isZeroSetting reports whether a SET argument turns a timeout off: 0, or
// '0' with or without a unit.
func isZeroSetting(n *pgtree.Node) bool {
	c := n.GetAConst()
	if c == nil {
		return false
	}
	if i := c.Ival; i != nil {
		return i.Ival == 0
	}
	if s := c.Sval; s != nil {
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
func volatileCall(n *pgtree.Node) (name string, unknown bool) {
	for _, call := range n.Find("FuncCall") {
		names := call.GetFuncCall().Funcname
		if len(names) == 0 {
			continue
		}
		fn := strings.ToLower(names[len(names)-1].GetString().GetSval())
		switch {
		case volatileFuncs[fn]:
			return fn, false
		case !stableFuncs[fn]:
			return fn, true
		}
	}
	return "", false
}
