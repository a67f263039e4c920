package pgtree

// nodeTypes are the node types that Node decodes, by the name libpg_query
// gives them, each with a function that allocates its struct.
var nodeTypes = map[string]func() any{
	"String":                newFields[String],
	"Integer":               newFields[Integer],
	"Boolean":               newFields[Boolean],
	"List":                  newFields[List],
	"RangeVar":              newFields[RangeVar],
	"A_Const":               newFields[AConst],
	"DefElem":               newFields[DefElem],
	"FuncCall":              newFields[FuncCall],
	"ColumnDef":             newFields[ColumnDef],
	"Constraint":            newFields[Constraint],
	"PartitionCmd":          newFields[PartitionCmd],
	"AlterTableCmd":         newFields[AlterTableCmd],
	"AlterTableStmt":        newFields[AlterTableStmt],
	"AlterEnumStmt":         newFields[AlterEnumStmt],
	"AlterDomainStmt":       newFields[AlterDomainStmt],
	"AlterObjectSchemaStmt": newFields[AlterObjectSchemaStmt],
	"ObjectWithArgs":        newFields[ObjectWithArgs],
	"ClusterStmt":           newFields[ClusterStmt],
	"CreateStmt":            newFields[CreateStmt],
	"CreateTableAsStmt":     newFields[CreateTableAsStmt],
	"DeleteStmt":            newFields[DeleteStmt],
	"DropStmt":              newFields[DropStmt],
	"DropdbStmt":            newFields[DropdbStmt],
	"IndexStmt":             newFields[IndexStmt],
	"InsertStmt":            newFields[InsertStmt],
	"LockStmt":              newFields[LockStmt],
	"RefreshMatViewStmt":    newFields[RefreshMatViewStmt],
	"ReindexStmt":           newFields[ReindexStmt],
	"RenameStmt":            newFields[RenameStmt],
	"SelectStmt":            newFields[SelectStmt],
	"TransactionStmt":       newFields[TransactionStmt],
	"TruncateStmt":          newFields[TruncateStmt],
	"UpdateStmt":            newFields[UpdateStmt],
	"VacuumStmt":            newFields[VacuumStmt],
	"VariableSetStmt":       newFields[VariableSetStmt],
}

func newFields[T any]() any { return new(T) }

// get returns n's struct if n is a node of type T, else nil.
func get[T any](n *Node) *T {
	fields, _ := n.GetNode().(*T)
	return fields
}

// Getters for the node types that appear inside other nodes. Each returns
// nil when n is nil or of another type.

func (n *Node) GetString() *String                 { return get[String](n) }
func (n *Node) GetList() *List                     { return get[List](n) }
func (n *Node) GetRangeVar() *RangeVar             { return get[RangeVar](n) }
func (n *Node) GetAConst() *AConst                 { return get[AConst](n) }
func (n *Node) GetDefElem() *DefElem               { return get[DefElem](n) }
func (n *Node) GetFuncCall() *FuncCall             { return get[FuncCall](n) }
func (n *Node) GetColumnDef() *ColumnDef           { return get[ColumnDef](n) }
func (n *Node) GetConstraint() *Constraint         { return get[Constraint](n) }
func (n *Node) GetPartitionCmd() *PartitionCmd     { return get[PartitionCmd](n) }
func (n *Node) GetAlterTableCmd() *AlterTableCmd   { return get[AlterTableCmd](n) }
func (n *Node) GetSelectStmt() *SelectStmt         { return get[SelectStmt](n) }
func (n *Node) GetObjectWithArgs() *ObjectWithArgs { return get[ObjectWithArgs](n) }

// Getters for two statements, for tests; lint switches on [Node.GetNode].

func (n *Node) GetAlterTableStmt() *AlterTableStmt { return get[AlterTableStmt](n) }
func (n *Node) GetIndexStmt() *IndexStmt           { return get[IndexStmt](n) }

// Value nodes and names.

// String is a string value, such as one part of a qualified name.
type String struct {
	Sval string `json:"sval"`
}

// GetSval returns the string, or "" for a nil String.
func (s *String) GetSval() string {
	if s == nil {
		return ""
	}
	return s.Sval
}

// Integer is an integer value.
type Integer struct {
	Ival int `json:"ival"`
}

// Boolean is a boolean value.
type Boolean struct {
	Boolval bool `json:"boolval"`
}

// List is a list of nodes, such as the qualified name of one object in a
// DROP statement.
type List struct {
	Items []*Node `json:"items"`
}

// GetItems returns the list's nodes, or nil for a nil List.
func (l *List) GetItems() []*Node {
	if l == nil {
		return nil
	}
	return l.Items
}

// RangeVar names a table, a view or an index: [schema.]name.
type RangeVar struct {
	Schemaname string `json:"schemaname"`
	Relname    string `json:"relname"`
}

// AConst is a constant (A_Const). At most one of its values is set: Ival
// for an integer, Sval for a string, none for other constants and NULL.
type AConst struct {
	Isnull bool     `json:"isnull"`
	Ival   *Integer `json:"ival"`
	Sval   *String  `json:"sval"`
}

// DefElem is one option of an option list, such as FULL in VACUUM (FULL).
type DefElem struct {
	Defname string `json:"defname"`
	// Arg is the option's value, nil when the SQL gives none.
	Arg *Node `json:"arg"`
}

// FuncCall is a call of a function.
type FuncCall struct {
	// Funcname is the function's qualified name, as String nodes.
	Funcname []*Node `json:"funcname"`
}

// TypeName names a type.
type TypeName struct {
	// Names is the type's qualified name, as String nodes.
	Names []*Node `json:"names"`
}

// ObjectWithArgs names a function or procedure with its argument types.
type ObjectWithArgs struct {
	// Objname is the qualified name, as String nodes.
	Objname []*Node `json:"objname"`
}

// Tables, columns and constraints.

// ColumnDef defines a column, in CREATE TABLE or ALTER TABLE … ADD COLUMN.
type ColumnDef struct {
	Colname   string    `json:"colname"`
	TypeName  *TypeName `json:"typeName"`
	IsNotNull bool      `json:"is_not_null"`
	// RawDefault is the column's default expression, when the parser puts
	// it here rather than in a DEFAULT constraint.
	RawDefault  *Node   `json:"raw_default"`
	Constraints []*Node `json:"constraints"`
}

// Constraint is a table or column constraint, including a column's NOT
// NULL, DEFAULT, identity and generation expression.
type Constraint struct {
	Contype ConstrType `json:"contype"`
	Conname string     `json:"conname"`
	// SkipValidation is set by NOT VALID.
	SkipValidation bool `json:"skip_validation"`
	// RawExpr is the expression of a CHECK, DEFAULT or GENERATED constraint.
	RawExpr *Node `json:"raw_expr"`
	// Indexname is the existing index of UNIQUE or PRIMARY KEY … USING INDEX.
	Indexname string `json:"indexname"`
	// Keys are the columns of a table-level UNIQUE or PRIMARY KEY, as
	// String nodes.
	Keys []*Node `json:"keys"`
}

// GetContype returns the constraint's kind, or "" for a nil Constraint.
func (c *Constraint) GetContype() ConstrType {
	if c == nil {
		return ""
	}
	return c.Contype
}

// PartitionCmd is the partition of ALTER TABLE … ATTACH or DETACH PARTITION.
type PartitionCmd struct {
	// Name is the partition attached or detached.
	Name       *RangeVar `json:"name"`
	Concurrent bool      `json:"concurrent"`
}

// GetName returns the partition, or nil for a nil PartitionCmd.
func (p *PartitionCmd) GetName() *RangeVar {
	if p == nil {
		return nil
	}
	return p.Name
}

// AlterTableCmd is one subcommand of ALTER TABLE.
type AlterTableCmd struct {
	Subtype AlterTableType `json:"subtype"`
	// Name is the column or constraint the subcommand is about.
	Name string `json:"name"`
	// Def is what the subcommand adds or sets: a ColumnDef, a Constraint,
	// a PartitionCmd or an expression.
	Def *Node `json:"def"`
}

// Statements.

// AlterTableStmt is ALTER TABLE, and ALTER INDEX, VIEW, SEQUENCE or TYPE
// where they share its grammar (Objtype says which).
type AlterTableStmt struct {
	Relation *RangeVar  `json:"relation"`
	Cmds     []*Node    `json:"cmds"`
	Objtype  ObjectType `json:"objtype"`
}

// AlterEnumStmt is ALTER TYPE … ADD VALUE or RENAME VALUE.
type AlterEnumStmt struct {
	// OldVal is the value that RENAME VALUE renames, "" for ADD VALUE.
	OldVal string `json:"oldVal"`
	NewVal string `json:"newVal"`
}

// ClusterStmt is CLUSTER.
type ClusterStmt struct{}

// AlterDomainStmt is ALTER DOMAIN.
type AlterDomainStmt struct {
	// Subtype says what it does, as one letter: "C" is ADD CONSTRAINT.
	Subtype string `json:"subtype"`
	// TypeName is the domain's qualified name, as String nodes.
	TypeName []*Node `json:"typeName"`
	// Def is the Constraint that ADD CONSTRAINT adds.
	Def *Node `json:"def"`
}

// AlterObjectSchemaStmt is ALTER … SET SCHEMA.
type AlterObjectSchemaStmt struct {
	ObjectType ObjectType `json:"objectType"`
	// Relation names a table, view or sequence; Object any other object
	// (a List of String nodes, or an ObjectWithArgs for a function).
	Relation  *RangeVar `json:"relation"`
	Object    *Node     `json:"object"`
	Newschema string    `json:"newschema"`
}

// CreateStmt is CREATE TABLE.
type CreateStmt struct {
	Relation *RangeVar `json:"relation"`
	// TableElts are the ColumnDef and table Constraint nodes.
	TableElts []*Node `json:"tableElts"`
}

// CreateTableAsStmt is CREATE TABLE … AS, SELECT … INTO and CREATE
// MATERIALIZED VIEW.
type CreateTableAsStmt struct {
	Into *IntoClause `json:"into"`
}

// IntoClause is the table that CREATE TABLE … AS creates.
type IntoClause struct {
	Rel *RangeVar `json:"rel"`
}

// DeleteStmt is DELETE.
type DeleteStmt struct {
	Relation *RangeVar `json:"relation"`
	// WhereClause is nil when every row is deleted.
	WhereClause *Node `json:"whereClause"`
}

// DropStmt is DROP of most kinds of object (RemoveType says which).
type DropStmt struct {
	// Objects are the names dropped: for tables and indexes each is a List
	// of String nodes, the qualified name.
	Objects    []*Node    `json:"objects"`
	RemoveType ObjectType `json:"removeType"`
	Concurrent bool       `json:"concurrent"`
}

// DropdbStmt is DROP DATABASE.
type DropdbStmt struct{}

// IndexStmt is CREATE INDEX.
type IndexStmt struct {
	// Idxname is the index's name, "" when the SQL leaves it to Postgres.
	Idxname    string    `json:"idxname"`
	Relation   *RangeVar `json:"relation"`
	Concurrent bool      `json:"concurrent"`
}

// InsertStmt is INSERT.
type InsertStmt struct {
	// SelectStmt is the rows inserted: a SelectStmt for both VALUES and
	// SELECT, nil for DEFAULT VALUES.
	SelectStmt *Node `json:"selectStmt"`
}

// LockStmt is LOCK TABLE.
type LockStmt struct {
	// Relations are RangeVar nodes.
	Relations []*Node `json:"relations"`
	// Mode is the lock mode as numbered by Postgres' storage/lockdefs.h.
	Mode int `json:"mode"`
}

// RefreshMatViewStmt is REFRESH MATERIALIZED VIEW.
type RefreshMatViewStmt struct {
	Concurrent bool `json:"concurrent"`
}

// ReindexStmt is REINDEX.
type ReindexStmt struct {
	// Params are the options in parentheses and CONCURRENTLY, as DefElem
	// nodes.
	Params []*Node `json:"params"`
}

// RenameStmt is ALTER … RENAME of most kinds of object.
type RenameStmt struct {
	// RenameType is the kind of object renamed.
	RenameType ObjectType `json:"renameType"`
	// RelationType is the kind of the relation whose column is renamed.
	RelationType ObjectType `json:"relationType"`
	Relation     *RangeVar  `json:"relation"`
	// Object names the object renamed when it is not a relation: a List
	// of String nodes (a type, a domain), or an ObjectWithArgs (a
	// function, a procedure).
	Object *Node `json:"object"`
	// Subname is the column, constraint or schema renamed.
	Subname string `json:"subname"`
	Newname string `json:"newname"`
}

// SelectStmt is SELECT, and VALUES.
type SelectStmt struct {
	FromClause []*Node `json:"fromClause"`
}

// TransactionStmt is BEGIN, COMMIT, ROLLBACK, SAVEPOINT and the like.
type TransactionStmt struct {
	Kind TransactionStmtKind `json:"kind"`
}

// TruncateStmt is TRUNCATE.
type TruncateStmt struct {
	// Relations are RangeVar nodes.
	Relations []*Node `json:"relations"`
}

// UpdateStmt is UPDATE.
type UpdateStmt struct {
	Relation *RangeVar `json:"relation"`
	// WhereClause is nil when every row is updated.
	WhereClause *Node `json:"whereClause"`
}

// VacuumStmt is VACUUM and ANALYZE.
type VacuumStmt struct {
	// Options are DefElem nodes.
	Options []*Node `json:"options"`
	// IsVacuumcmd is false for ANALYZE.
	IsVacuumcmd bool `json:"is_vacuumcmd"`
}

// VariableSetStmt is SET and RESET.
type VariableSetStmt struct {
	Kind VariableSetKind `json:"kind"`
	// Name is the setting, "" for RESET ALL.
	Name string `json:"name"`
	// Args are the values set, usually A_Const nodes.
	Args []*Node `json:"args"`
}

// Enums, by the names of their C values, which is how libpg_query writes
// them. Only the values lint compares with are listed.

// ObjectType is a kind of database object.
type ObjectType string

// Kinds of object.
const (
	ObjectColumn    ObjectType = "OBJECT_COLUMN"
	ObjectDomain    ObjectType = "OBJECT_DOMAIN"
	ObjectFunction  ObjectType = "OBJECT_FUNCTION"
	ObjectIndex     ObjectType = "OBJECT_INDEX"
	ObjectMatView   ObjectType = "OBJECT_MATVIEW"
	ObjectProcedure ObjectType = "OBJECT_PROCEDURE"
	ObjectRoutine   ObjectType = "OBJECT_ROUTINE"
	ObjectSchema    ObjectType = "OBJECT_SCHEMA"
	ObjectSequence  ObjectType = "OBJECT_SEQUENCE"
	ObjectTable     ObjectType = "OBJECT_TABLE"
	ObjectDataType  ObjectType = "OBJECT_TYPE" // a type: ALTER TYPE, DROP TYPE
	ObjectView      ObjectType = "OBJECT_VIEW"
)

// AlterTableType is the kind of an ALTER TABLE subcommand.
type AlterTableType string

// Kinds of ALTER TABLE subcommand.
const (
	ATAddColumn          AlterTableType = "AT_AddColumn"
	ATDropColumn         AlterTableType = "AT_DropColumn"
	ATAlterColumnType    AlterTableType = "AT_AlterColumnType"
	ATSetNotNull         AlterTableType = "AT_SetNotNull"
	ATAddIdentity        AlterTableType = "AT_AddIdentity"
	ATAddConstraint      AlterTableType = "AT_AddConstraint"
	ATValidateConstraint AlterTableType = "AT_ValidateConstraint"
	ATDetachPartition    AlterTableType = "AT_DetachPartition"
	ATSetLogged          AlterTableType = "AT_SetLogged"
	ATSetUnLogged        AlterTableType = "AT_SetUnLogged"
)

// ConstrType is the kind of a constraint.
type ConstrType string

// Kinds of constraint.
const (
	ConstrNotNull   ConstrType = "CONSTR_NOTNULL"
	ConstrDefault   ConstrType = "CONSTR_DEFAULT"
	ConstrIdentity  ConstrType = "CONSTR_IDENTITY"
	ConstrGenerated ConstrType = "CONSTR_GENERATED"
	ConstrCheck     ConstrType = "CONSTR_CHECK"
	ConstrPrimary   ConstrType = "CONSTR_PRIMARY"
	ConstrUnique    ConstrType = "CONSTR_UNIQUE"
	ConstrExclusion ConstrType = "CONSTR_EXCLUSION"
	ConstrForeign   ConstrType = "CONSTR_FOREIGN"
)

// VariableSetKind is what a SET or RESET statement does.
type VariableSetKind string

// Kinds of SET and RESET.
const (
	VarSetValue   VariableSetKind = "VAR_SET_VALUE"   // SET name = value
	VarSetDefault VariableSetKind = "VAR_SET_DEFAULT" // SET name TO DEFAULT
	VarReset      VariableSetKind = "VAR_RESET"       // RESET name
	VarResetAll   VariableSetKind = "VAR_RESET_ALL"   // RESET ALL
)

// TransactionStmtKind is the kind of a transaction statement.
type TransactionStmtKind string

// Kinds of transaction statement.
const (
	TransStmtBegin    TransactionStmtKind = "TRANS_STMT_BEGIN"    // BEGIN
	TransStmtStart    TransactionStmtKind = "TRANS_STMT_START"    // START TRANSACTION
	TransStmtCommit   TransactionStmtKind = "TRANS_STMT_COMMIT"   // COMMIT, END
	TransStmtRollback TransactionStmtKind = "TRANS_STMT_ROLLBACK" // ROLLBACK, ABORT
	TransStmtPrepare  TransactionStmtKind = "TRANS_STMT_PREPARE"  // PREPARE TRANSACTION
)
