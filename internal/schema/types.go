package schema

import (
	"strconv"
	"strings"
)

// typeChange says how a column's type changed, for the live release's
// reads and writes.
type typeChange int

const (
	typeSame     typeChange = iota // the same type under another spelling
	typeWidened                    // every old value fits and reads back the same
	typeNarrowed                   // some old values no longer fit
	typeChanged                    // another type: reads or writes may fail
)

func (c typeChange) String() string {
	return [...]string{"same", "widened", "narrowed", "changed"}[c]
}

// sqlType is a column type taken apart: canonical base name, its
// parameters (length, precision, scale) and array dimensions.
type sqlType struct {
	base  string
	args  []int
	array int
}

// aliases maps PostgreSQL's and SQLite's spellings to one base name.
var aliases = map[string]string{
	"character varying": "varchar", "varchar": "varchar", "nvarchar": "varchar", "varying character": "varchar",
	"character": "char", "char": "char", "bpchar": "char", "nchar": "char", "native character": "char",
	"text": "text", "clob": "text",
	"smallint": "int2", "int2": "int2",
	"integer": "int4", "int": "int4", "int4": "int4", "mediumint": "int4",
	"bigint": "int8", "int8": "int8",
	"real": "float4", "float4": "float4",
	"double precision": "float8", "float8": "float8", "double": "float8", "float": "float8",
	"numeric": "numeric", "decimal": "numeric",
	"bit varying": "varbit", "varbit": "varbit",
	"timestamp without time zone": "timestamp", "timestamp": "timestamp",
	"timestamp with time zone": "timestamptz", "timestamptz": "timestamptz",
	"time without time zone": "time", "time": "time",
	"time with time zone": "timetz", "timetz": "timetz",
	"boolean": "bool", "bool": "bool",
}

func parseType(t string) sqlType {
	t = strings.ToLower(strings.TrimSpace(t))
	var st sqlType
	for strings.HasSuffix(t, "[]") {
		st.array++
		t = strings.TrimSpace(strings.TrimSuffix(t, "[]"))
	}
	// "timestamp(3) without time zone": the parameters sit in the middle.
	name := t
	if open := strings.IndexByte(t, '('); open >= 0 {
		if end := strings.IndexByte(t[open:], ')'); end >= 0 {
			for _, a := range strings.Split(t[open+1:open+end], ",") {
				n, err := strconv.Atoi(strings.TrimSpace(a))
				if err != nil {
					return sqlType{base: t, array: st.array} // Not numbers: compare as text.
				}
				st.args = append(st.args, n)
			}
			name = strings.TrimSpace(t[:open] + " " + strings.TrimSpace(t[open+end+1:]))
		}
	}
	name = strings.Join(strings.Fields(name), " ")
	if a, ok := aliases[name]; ok {
		name = a
	}
	st.base = name
	return st
}

var intRank = map[string]int{"int2": 1, "int4": 2, "int8": 3}

// compareTypes classifies the change of a column's type from old to new.
func compareTypes(oldT, newT string) typeChange {
	o, n := parseType(oldT), parseType(newT)
	if o.array != n.array {
		return typeChanged
	}
	if o.base == n.base && equalInts(o.args, n.args) {
		return typeSame
	}
	switch {
	case isVarLen(o.base) && isVarLen(n.base) && o.base != "varbit" && n.base != "varbit",
		o.base == "varbit" && n.base == "varbit":
		// varchar(n) → varchar(m), varchar ↔ text: a length limit, or none.
		return compareLimits(limit(o), limit(n))
	case intRank[o.base] > 0 && intRank[n.base] > 0:
		return compareRanks(intRank[o.base], intRank[n.base])
	case o.base == "float4" && n.base == "float8":
		return typeWidened
	case o.base == "float8" && n.base == "float4":
		return typeNarrowed
	case intRank[o.base] > 0 && n.base == "numeric":
		if len(n.args) == 0 {
			return typeWidened
		}
		return typeChanged // Whether every integer fits depends on the precision.
	case o.base == "numeric" && n.base == "numeric":
		return compareNumeric(o.args, n.args)
	case o.base == n.base && len(o.args) == 1 && len(n.args) == 1 &&
		(o.base == "timestamp" || o.base == "timestamptz" || o.base == "time" || o.base == "timetz"):
		// Fractional-second precision.
		return compareRanks(o.args[0], n.args[0])
	case o.base == n.base && (len(o.args) == 0) != (len(n.args) == 0) &&
		(o.base == "timestamp" || o.base == "timestamptz" || o.base == "time" || o.base == "timetz"):
		if len(n.args) == 0 {
			return typeWidened
		}
		return typeNarrowed
	}
	return typeChanged
}

func isVarLen(base string) bool { return base == "varchar" || base == "text" || base == "varbit" }

// limit is a variable-length type's maximum length, -1 for none.
func limit(t sqlType) int {
	if t.base == "text" || len(t.args) == 0 {
		return -1
	}
	return t.args[0]
}

func compareLimits(o, n int) typeChange {
	switch {
	case o == n:
		return typeSame
	case n == -1:
		return typeWidened
	case o == -1:
		return typeNarrowed
	}
	return compareRanks(o, n)
}

func compareRanks(o, n int) typeChange {
	switch {
	case n > o:
		return typeWidened
	case n < o:
		return typeNarrowed
	}
	return typeSame
}

// compareNumeric compares numeric(p,s) parameters: wider when neither the
// integer digits (p-s) nor the scale shrink.
func compareNumeric(o, n []int) typeChange {
	if len(n) == 0 {
		return typeWidened
	}
	if len(o) == 0 {
		return typeNarrowed
	}
	ps := func(a []int) (int, int) {
		if len(a) == 1 {
			return a[0], 0
		}
		return a[0], a[1]
	}
	op, os := ps(o)
	np, ns := ps(n)
	switch {
	case np-ns >= op-os && ns >= os:
		return typeWidened
	case np-ns <= op-os && ns <= os:
		return typeNarrowed
	}
	return typeChanged // More integer digits but fewer decimals, or the reverse.
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
