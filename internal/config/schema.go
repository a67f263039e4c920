package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// fieldKind is what a key of cutover.toml holds.
type fieldKind int

const (
	kindTable     fieldKind = iota // a struct: a TOML table with known keys
	kindStringMap                  // map[string]string: a table of any keys, string values
	kindString
	kindInt
	kindDuration    // a Duration: a TOML string such as "10s"
	kindBool        // true or false
	kindFloat       // a number, integer or float
	kindStringList  // an array of strings
	kindIntOrString // an integer, or a string such as "50%"
	kindTableMap    // map[string]*struct: a table of tables of any names, each with known keys
	kindTableList   // []struct: an array of tables, [[name]], each with known keys
)

// spec describes one key of the file format. It is derived from the toml
// tags of Config, so the structs stay the single source of truth.
type spec struct {
	kind   fieldKind
	fields map[string]*spec // kindTable only
	names  []string         // kindTable only: keys in declaration order
	elem   *spec            // kindTableMap, kindTableList: the spec of each table in it
}

// want says what a value of this kind must be, for error messages.
func (s *spec) want() string {
	switch s.kind {
	case kindTable:
		return "a table"
	case kindTableMap:
		return "a table of tables, one per name"
	case kindTableList:
		return "an array of tables, each written [[name]]"
	case kindStringMap:
		return "a table of strings"
	case kindString:
		return "a string"
	case kindInt:
		return "an integer"
	case kindDuration:
		return `a duration string such as "10s", "1m30s" or "250ms"`
	case kindBool:
		return "true or false"
	case kindFloat:
		return "a number"
	case kindStringList:
		return `an array of strings such as ["a", "b"]`
	case kindIntOrString:
		return `an integer or a string such as "50%"`
	}
	return "?"
}

var durationType = reflect.TypeFor[Duration]()

// specOf derives the spec of a Go type used in Config. It panics on a type
// the file format does not support, which a test catches.
func specOf(t reflect.Type) *spec {
	if t == durationType {
		return &spec{kind: kindDuration}
	}
	switch t.Kind() {
	case reflect.Struct:
		s := &spec{kind: kindTable, fields: map[string]*spec{}}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				// An embedded struct's keys are the parent's, as go-toml
				// decodes them.
				e := specOf(f.Type)
				for _, n := range e.names {
					s.fields[n] = e.fields[n]
					s.names = append(s.names, n)
				}
				continue
			}
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			s.fields[name] = specOf(f.Type)
			s.names = append(s.names, name)
		}
		return s
	case reflect.Map:
		if t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.Pointer && t.Elem().Elem().Kind() == reflect.Struct {
			return &spec{kind: kindTableMap, elem: specOf(t.Elem().Elem())}
		}
		if t.Key().Kind() != reflect.String || t.Elem().Kind() != reflect.String {
			panic(fmt.Sprintf("config: unsupported map type %s", t))
		}
		return &spec{kind: kindStringMap}
	case reflect.String:
		return &spec{kind: kindString}
	case reflect.Bool:
		return &spec{kind: kindBool}
	case reflect.Float64:
		return &spec{kind: kindFloat}
	case reflect.Interface:
		return &spec{kind: kindIntOrString}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct && t.Elem() != durationType {
			return &spec{kind: kindTableList, elem: specOf(t.Elem())}
		}
		if t.Elem().Kind() != reflect.String {
			panic(fmt.Sprintf("config: unsupported slice type %s", t))
		}
		return &spec{kind: kindStringList}
	case reflect.Int, reflect.Int64:
		return &spec{kind: kindInt}
	}
	panic(fmt.Sprintf("config: unsupported field type %s", t))
}

// schema is the spec of the whole file.
var schema = specOf(reflect.TypeFor[Config]())

// envValueSpec is the spec of one value of a kindStringMap table.
var envValueSpec = &spec{kind: kindString}

// anyName stands for the name of a table in a kindTableMap in the keys
// allKeys returns: "apps.*.hosts".
const anyName = "*"

// anyEntry stands for the entry of a kindTableList in the keys allKeys
// returns: "app.tcp[*].listen".
const anyEntry = "[*]"

// entryPart is the key part that names the n-th (1-based) table of an
// array of tables: the keys of the second [[app.tcp]] are
// "app.tcp[2].listen"…, so that each is reported on its own line.
func entryPart(n int) string { return "[" + strconv.Itoa(n) + "]" }

// isEntryPart reports whether a key part is an entryPart.
func isEntryPart(p string) bool { return strings.HasPrefix(p, "[") && strings.HasSuffix(p, "]") }

// allKeys returns every dotted key of the schema, tables included; the
// tables of a kindTableMap are named anyName.
func allKeys() []string {
	var out []string
	var walk func(prefix string, s *spec)
	walk = func(prefix string, s *spec) {
		for _, n := range s.names {
			full := n
			if prefix != "" {
				full = prefix + "." + n
			}
			out = append(out, full)
			switch c := s.fields[n]; c.kind {
			case kindTable:
				walk(full, c)
			case kindTableMap:
				walk(full+"."+anyName, c.elem)
			case kindTableList:
				walk(full+anyEntry, c.elem)
			}
		}
	}
	walk("", schema)
	return out
}

// suggest returns the known key closest to the unknown key name (whose
// dotted parent is parent, spec s), or "" when none is close. A key that
// exists under the same name in another table of the same form wins:
// "interval" in [app] most likely belongs to [app.health], and in
// [apps.shop] to [apps.shop.health].
func suggest(parent string, s *spec, name string) string {
	lname := strings.ToLower(name)
	app, multi := appOfKey(parent)
	var elsewhere []string
	for _, k := range allKeys() {
		rest, isMulti := strings.CutPrefix(k, "apps."+anyName+".")
		if isMulti != multi {
			continue
		}
		if multi {
			k = "apps." + app + "." + rest
		}
		last := k[strings.LastIndexByte(k, '.')+1:]
		if strings.Contains(k, anyEntry) {
			// An entry of an array of tables is no place to send a key
			// of another table to.
			continue
		}
		if last == lname && k != join(parent, name) {
			elsewhere = append(elsewhere, k)
		}
	}
	if len(elsewhere) > 0 {
		// The first in the file format's order: proxy.listen before
		// metrics.listen.
		return elsewhere[0]
	}
	best, bestDist := "", max(2, len(name)/3)+1
	for _, n := range s.names {
		if d := editDistance(lname, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	if best == "" {
		return ""
	}
	return join(parent, best)
}

// appOfKey returns the (quoted if need be) app name of a dotted key of
// the multi-app form, "apps.shop.deploy" → "shop", and whether it is one.
func appOfKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, "apps.")
	if !ok {
		return "", false
	}
	if strings.HasPrefix(rest, `"`) {
		// A quoted name holds no '"' (app names are letters, digits,
		// '-', '_' and '.'), so the next one closes it.
		if i := strings.IndexByte(rest[1:], '"'); i >= 0 {
			return rest[:i+2], true
		}
		return rest, true
	}
	name, _, _ := strings.Cut(rest, ".")
	return name, true
}

// dotted joins the parts of a key with '.', quoting each part that is not
// a bare TOML key ("shop.v2" in apps."shop.v2".command), so that the key
// reads back as the same parts.
func dotted(parts []string) string {
	var b strings.Builder
	for i, p := range parts {
		if isEntryPart(p) {
			b.WriteString(p)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteKey(p))
	}
	return b.String()
}

// quoteKey writes one key part as TOML does: bare when it can be.
func quoteKey(p string) string {
	if p != "" && all(p, func(c byte) bool { return isAlnum(c) || c == '_' || c == '-' }) {
		return p
	}
	return strconv.Quote(p)
}

// join appends name to the dotted key parent.
func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// editDistance is the Levenshtein distance between a and b, in bytes. Keys
// are short ASCII, so the quadratic table is small.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
