package schema

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Kind says whether a change keeps the live release working.
type Kind int

const (
	// KindAdditive: the release serving now keeps working on the new
	// schema.
	KindAdditive Kind = iota
	// KindBreaking: some query of the release serving now fails (or its
	// writes are refused) on the new schema.
	KindBreaking
)

func (k Kind) String() string {
	switch k {
	case KindAdditive:
		return "additive"
	case KindBreaking:
		return "breaking"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// MarshalText encodes a Kind as its String.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes "additive" or "breaking".
func (k *Kind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "additive":
		*k = KindAdditive
	case "breaking":
		*k = KindBreaking
	default:
		return fmt.Errorf("schema change kind %q: want additive or breaking", b)
	}
	return nil
}

// Rule ids of a Change. The ones lint also reports carry lint's id.
const (
	RuleAddTable         = "add-table"
	RuleDropTable        = "drop-table"
	RuleRenameTable      = "rename-table"
	RuleAddColumn        = "add-column"
	RuleAddColumnNotNull = "add-column-not-null"
	RuleDropColumn       = "drop-column"
	RuleRenameColumn     = "rename-column"
	RuleChangeColumnType = "change-column-type"
	RuleWidenColumnType  = "widen-column-type"
	RuleSetNotNull       = "set-not-null"
	RuleDropNotNull      = "drop-not-null"
	RuleAddDefault       = "add-default"
	RuleChangeDefault    = "change-default"
	RuleDropDefault      = "drop-default"
	RuleAddIdentity      = "add-identity"
	RuleDropIdentity     = "drop-identity"
	RuleChangeGenerated  = "change-generated"
	RuleChangePrimaryKey = "change-primary-key"
	RuleAddCheck         = "add-check-constraint"
	RuleAddUnique        = "add-unique-constraint"
	RuleAddForeignKey    = "add-foreign-key"
	RuleAddExclusion     = "add-exclusion-constraint"
	RuleDropCheck        = "drop-check-constraint"
	RuleDropUnique       = "drop-unique-constraint"
	RuleDropForeignKey   = "drop-foreign-key"
	RuleDropExclusion    = "drop-exclusion-constraint"
	RuleAddIndex         = "add-index"
	RuleDropIndex        = "drop-index"
	RuleAddEnum          = "add-enum"
	RuleDropEnum         = "drop-enum"
	RuleAddEnumValue     = "add-enum-value"
	RuleDropEnumValue    = "drop-enum-value"
	RuleRenameEnumValue  = "rename-enum-value"
	RuleAddView          = "add-view"
	RuleDropView         = "drop-view"
	RuleChangeView       = "change-view"
	RuleChangeDialect    = "change-dialect"
)

// Change is one difference between two schemas.
type Change struct {
	Kind Kind `json:"kind"`
	// Rule is the change's id (one of the Rule* constants), the same word
	// lint uses where lint has one.
	Rule string `json:"rule"`
	// Object names what changed: "table public.sessions",
	// "column public.users.email", "index public.users_email_idx".
	Object string `json:"object"`
	// Detail is one line for a user: what changed and why it matters.
	Detail string `json:"detail"`
}

// String formats c for a terminal:
// "breaking  drop-column  column public.users.email: …".
func (c Change) String() string {
	return fmt.Sprintf("%s  %s  %s: %s", c.Kind, c.Rule, c.Object, c.Detail)
}

// Breaking returns the breaking changes of cs, in their order.
func Breaking(cs []Change) []Change {
	var out []Change
	for _, c := range cs {
		if c.Kind == KindBreaking {
			out = append(out, c)
		}
	}
	return out
}

// Diff returns what changed from old to new, classified for the release
// that runs on old: breaking changes first, then by the object's name (so
// one table's changes sit together), kind of object, rule and detail. A
// nil schema is an empty one.
func Diff(old, new *Schema) []Change {
	if old == nil {
		old = &Schema{}
	}
	if new == nil {
		new = &Schema{}
	}
	d := &differ{}
	if old.Dialect != "" && new.Dialect != "" && old.Dialect != new.Dialect {
		d.add(KindBreaking, RuleChangeDialect, "database", "%s → %s: another database", old.Dialect, new.Dialect)
	}
	d.tables(old.Tables, new.Tables)
	d.enums(old.Enums, new.Enums)
	d.views(old, new)
	slices.SortFunc(d.out, func(a, b Change) int {
		if a.Kind != b.Kind {
			return int(b.Kind) - int(a.Kind)
		}
		for _, c := range []int{strings.Compare(objectName(a.Object), objectName(b.Object)),
			strings.Compare(a.Object, b.Object), strings.Compare(a.Rule, b.Rule)} {
			if c != 0 {
				return c
			}
		}
		return strings.Compare(a.Detail, b.Detail)
	})
	return d.out
}

// objectName is an object without its kind: "public.users.email" of
// "column public.users.email", so that a table's changes sort together.
func objectName(object string) string {
	_, name, _ := strings.Cut(object, " ")
	return name
}

type differ struct{ out []Change }

func (d *differ) add(k Kind, rule, object, format string, args ...any) {
	d.out = append(d.out, Change{Kind: k, Rule: rule, Object: object, Detail: fmt.Sprintf(format, args...)})
}

func (d *differ) tables(old, new map[string]*Table) {
	var dropped, added []string
	for _, name := range slices.Sorted(maps.Keys(old)) {
		if new[name] == nil {
			dropped = append(dropped, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(new)) {
		if old[name] == nil {
			added = append(added, name)
		}
	}
	// A table dropped and another with the same columns added is most
	// likely a rename; the live release uses the old name either way.
	renamedTo := map[string]bool{}
	for _, o := range dropped {
		var to string
		for _, a := range added {
			if !renamedTo[a] && sameColumns(old[o], new[a]) {
				to = a
				break
			}
		}
		if to != "" {
			renamedTo[to] = true
			d.add(KindBreaking, RuleRenameTable, "table "+o, "%s → %s? (a table with the same columns appeared); the live release still uses %s", o, to, o)
			continue
		}
		d.add(KindBreaking, RuleDropTable, "table "+o, "dropped; the live release's queries on it fail")
	}
	for _, a := range added {
		if !renamedTo[a] {
			d.add(KindAdditive, RuleAddTable, "table "+a, "new table with %s", plural(len(new[a].Columns), "column"))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(old)) {
		if n := new[name]; n != nil {
			d.table(name, old[name], n)
		}
	}
}

func sameColumns(a, b *Table) bool {
	if len(a.Columns) == 0 || len(a.Columns) != len(b.Columns) {
		return false
	}
	for i, c := range a.Columns {
		o := b.Columns[i]
		if c.Name != o.Name || compareTypes(c.Type, o.Type) != typeSame {
			return false
		}
	}
	return true
}

func (d *differ) table(name string, o, n *Table) {
	var dropped, added []*Column
	for _, c := range o.Columns {
		if n.Column(c.Name) == nil {
			dropped = append(dropped, c)
		}
	}
	newCol := map[string]bool{}
	for _, c := range n.Columns {
		if o.Column(c.Name) == nil {
			added = append(added, c)
			newCol[c.Name] = true
		}
	}
	renamed := map[string]bool{}
	for _, c := range dropped {
		obj := "column " + name + "." + c.Name
		var to *Column
		for _, a := range added {
			if !renamed[a.Name] && compareTypes(c.Type, a.Type) == typeSame && c.NotNull == a.NotNull {
				to = a
				break
			}
		}
		if to != nil {
			renamed[to.Name] = true
			d.add(KindBreaking, RuleRenameColumn, obj, "%s → %s? (a column of the same type %s appeared); the live release still uses %s", c.Name, to.Name, c.Type, c.Name)
			continue
		}
		d.add(KindBreaking, RuleDropColumn, obj, "dropped; the live release's queries that name it fail")
	}
	for _, c := range added {
		if renamed[c.Name] {
			continue
		}
		obj := "column " + name + "." + c.Name
		switch {
		case c.NotNull && c.Default == "" && c.Identity == "" && c.Generated == "":
			d.add(KindBreaking, RuleAddColumnNotNull, obj, "new %s NOT NULL without a default; the live release's INSERTs that omit it fail", c.Type)
		case c.NotNull:
			d.add(KindAdditive, RuleAddColumn, obj, "new %s NOT NULL%s", c.Type, describeFill(c))
		default:
			d.add(KindAdditive, RuleAddColumn, obj, "new nullable %s%s", c.Type, describeFill(c))
		}
	}
	for _, oc := range o.Columns {
		if nc := n.Column(oc.Name); nc != nil {
			d.column("column "+name+"."+oc.Name, oc, nc)
		}
	}
	if !slices.Equal(o.PrimaryKey, n.PrimaryKey) {
		var why string
		switch {
		case len(o.PrimaryKey) == 0:
			why = "added; the live release's INSERTs of duplicate or NULL keys fail"
		case len(n.PrimaryKey) == 0:
			why = "dropped; the live release's ON CONFLICT on it fails and duplicates become possible"
		default:
			why = "the live release's ON CONFLICT and key lookups expect the old key"
		}
		d.add(KindBreaking, RuleChangePrimaryKey, "table "+name, "primary key (%s) → (%s): %s",
			strings.Join(o.PrimaryKey, ", "), strings.Join(n.PrimaryKey, ", "), why)
	}
	d.constraints(name, o, n, newCol)
	d.indexes(name, o, n, newCol)
}

func describeFill(c *Column) string {
	switch {
	case c.Identity != "":
		return " (identity)"
	case c.Generated != "":
		return " (generated)"
	case c.Default != "":
		return " DEFAULT " + c.Default
	}
	return ""
}

func (d *differ) column(obj string, o, n *Column) {
	switch tc := compareTypes(o.Type, n.Type); tc {
	case typeWidened:
		d.add(KindAdditive, RuleWidenColumnType, obj, "type %s → %s (widened)", o.Type, n.Type)
	case typeNarrowed, typeChanged:
		d.add(KindBreaking, RuleChangeColumnType, obj, "type %s → %s (%s); the live release's reads or writes may fail", o.Type, n.Type, tc)
	}
	switch {
	case !o.NotNull && n.NotNull:
		d.add(KindBreaking, RuleSetNotNull, obj, "NOT NULL added; the live release's writes of NULL fail")
	case o.NotNull && !n.NotNull:
		d.add(KindAdditive, RuleDropNotNull, obj, "NOT NULL dropped; the live release may read NULLs it never wrote")
	}
	switch {
	case o.Default == n.Default:
	case o.Default == "":
		d.add(KindAdditive, RuleAddDefault, obj, "default %s added", n.Default)
	case n.Default == "" && n.NotNull && n.Identity == "" && n.Generated == "":
		d.add(KindBreaking, RuleDropDefault, obj, "default %s dropped from a NOT NULL column; the live release's INSERTs that omit it fail", o.Default)
	case n.Default == "":
		d.add(KindAdditive, RuleDropDefault, obj, "default %s dropped; the live release's INSERTs that omit it store NULL", o.Default)
	default:
		d.add(KindAdditive, RuleChangeDefault, obj, "default %s → %s", o.Default, n.Default)
	}
	switch {
	case o.Identity == n.Identity:
	case n.Identity == "always":
		d.add(KindBreaking, RuleAddIdentity, obj, "GENERATED ALWAYS AS IDENTITY; the live release's INSERTs that set it fail")
	case n.Identity == "by-default":
		d.add(KindAdditive, RuleAddIdentity, obj, "GENERATED BY DEFAULT AS IDENTITY")
	case n.NotNull && n.Default == "":
		d.add(KindBreaking, RuleDropIdentity, obj, "identity dropped from a NOT NULL column without a default; the live release's INSERTs that omit it fail")
	default:
		d.add(KindAdditive, RuleDropIdentity, obj, "identity dropped")
	}
	if o.Generated != n.Generated {
		k := KindAdditive
		why := "generated expression changed"
		if o.Generated == "" {
			k, why = KindBreaking, "now generated; the live release's writes to it fail"
		}
		d.add(k, RuleChangeGenerated, obj, "%s", why)
	}
}

var addRule = map[string]string{
	ConstraintCheck: RuleAddCheck, ConstraintUnique: RuleAddUnique,
	ConstraintForeignKey: RuleAddForeignKey, ConstraintExclusion: RuleAddExclusion,
}

var dropRule = map[string]string{
	ConstraintCheck: RuleDropCheck, ConstraintUnique: RuleDropUnique,
	ConstraintForeignKey: RuleDropForeignKey, ConstraintExclusion: RuleDropExclusion,
}

func constraintObject(table string, c *Constraint) string {
	if c.Name == "" {
		return "table " + table
	}
	return "constraint " + table + "." + c.Name
}

// onNewColumnsOnly reports whether every column of cols is new: a
// constraint on them does not touch what the live release writes.
func onNewColumnsOnly(cols []string, newCol map[string]bool) bool {
	if len(cols) == 0 {
		return false
	}
	for _, c := range cols {
		if !newCol[c] {
			return false
		}
	}
	return true
}

func (d *differ) constraints(table string, o, n *Table, newCol map[string]bool) {
	key := func(c *Constraint) string { return c.Kind + "\x00" + c.Def }
	had := map[string]bool{}
	for _, c := range o.Constraints {
		had[key(c)] = true
	}
	has := map[string]bool{}
	for _, c := range n.Constraints {
		has[key(c)] = true
		if had[key(c)] {
			continue
		}
		if onNewColumnsOnly(c.Columns, newCol) {
			d.add(KindAdditive, addRule[c.Kind], constraintObject(table, c), "%s on new columns only", c.Def)
			continue
		}
		d.add(KindBreaking, addRule[c.Kind], constraintObject(table, c), "%s; the live release's writes that violate it fail", c.Def)
	}
	for _, c := range o.Constraints {
		if has[key(c)] {
			continue
		}
		why := "" // Nothing the live release does fails.
		if c.Kind == ConstraintUnique {
			why = "; an INSERT … ON CONFLICT on these columns fails"
		}
		d.add(KindAdditive, dropRule[c.Kind], constraintObject(table, c), "%s dropped%s", c.Def, why)
	}
}

func (d *differ) indexes(table string, o, n *Table, newCol map[string]bool) {
	had := map[string]bool{}
	for _, i := range o.Indexes {
		had[i.Def] = true
	}
	has := map[string]bool{}
	for _, i := range n.Indexes {
		has[i.Def] = true
		if had[i.Def] {
			continue
		}
		switch {
		case i.Unique && !onNewColumnsOnly(i.Columns, newCol):
			d.add(KindBreaking, RuleAddUnique, "index "+i.Name, "%s; the live release's writes of duplicates fail", i.Def)
		default:
			d.add(KindAdditive, RuleAddIndex, "index "+i.Name, "%s", i.Def)
		}
	}
	for _, i := range o.Indexes {
		if has[i.Def] {
			continue
		}
		why := "may slow the live release's queries that used it"
		if i.Unique {
			why += "; its INSERT … ON CONFLICT on these columns fails"
		}
		d.add(KindAdditive, RuleDropIndex, "index "+i.Name, "%s dropped: %s", i.Def, why)
	}
}

func (d *differ) enums(old, new map[string][]string) {
	for _, name := range slices.Sorted(maps.Keys(old)) {
		obj := "enum " + name
		nv, ok := new[name]
		if !ok {
			d.add(KindBreaking, RuleDropEnum, obj, "dropped; the live release's casts to it fail")
			continue
		}
		ov := old[name]
		var gone, came []string
		for _, v := range ov {
			if !slices.Contains(nv, v) {
				gone = append(gone, v)
			}
		}
		for _, v := range nv {
			if !slices.Contains(ov, v) {
				came = append(came, v)
			}
		}
		// ALTER TYPE … RENAME VALUE keeps the position: the same number
		// of values, one replaced in place.
		if len(gone) == 1 && len(came) == 1 && len(ov) == len(nv) && slices.Index(ov, gone[0]) == slices.Index(nv, came[0]) {
			d.add(KindBreaking, RuleRenameEnumValue, obj, "value %q → %q; the live release still writes %q", gone[0], came[0], gone[0])
			continue
		}
		for _, v := range gone {
			d.add(KindBreaking, RuleDropEnumValue, obj, "value %q dropped; the live release's writes of it fail", v)
		}
		for _, v := range came {
			d.add(KindAdditive, RuleAddEnumValue, obj, "value %q added", v)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(new)) {
		if _, ok := old[name]; !ok {
			d.add(KindAdditive, RuleAddEnum, "enum "+name, "new enum (%s)", strings.Join(new[name], ", "))
		}
	}
}

func (d *differ) views(old, new *Schema) {
	for _, name := range slices.Sorted(maps.Keys(old.Views)) {
		obj := "view " + name
		nd, ok := new.Views[name]
		if !ok {
			d.add(KindBreaking, RuleDropView, obj, "dropped; the live release's queries on it fail")
			continue
		}
		var gone []string
		for _, c := range old.ViewColumns[name] {
			if !slices.Contains(new.ViewColumns[name], c) {
				gone = append(gone, c)
			}
		}
		switch {
		case len(gone) > 0:
			d.add(KindBreaking, RuleChangeView, obj, "columns %s removed; the live release's queries that select them fail", strings.Join(gone, ", "))
		case nd != old.Views[name]:
			d.add(KindAdditive, RuleChangeView, obj, "definition changed, every column kept; the rows it returns may differ")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(new.Views)) {
		if _, ok := old.Views[name]; !ok {
			d.add(KindAdditive, RuleAddView, "view "+name, "new view")
		}
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
