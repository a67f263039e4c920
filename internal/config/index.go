package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"
)

// index records where each key and table of a document is, and checks
// every key against the schema before the document is decoded. It walks
// go-toml's own syntax tree, so the lines are the parser's, and the
// messages can say what the key must hold instead of naming Go types.
type index struct {
	file string
	data []byte
	p    unstable.Parser

	keys    map[string]int // dotted key → line where it is set
	tables  map[string]int // dotted table → line of its header, or of the first key that implies it
	headers map[string]int // dotted table → line of its [header]

	// names records the tables of a kindTableMap ([apps.NAME]): dotted
	// key → line where it is first seen; order holds their parts in that
	// order.
	names map[string]int
	order [][]string

	// entries counts the tables of each array of tables ([[app.tcp]]) so
	// far, by its dotted key.
	entries map[string]int

	errs     []*Error
	reported map[string]bool // dotted keys already reported, so one mistake gives one error
}

// scan parses data and fills the index. Syntax errors stop it; schema
// errors (unknown keys, wrong types) are collected in ix.errs.
func scan(file string, data []byte) *index {
	ix := &index{
		file:     file,
		data:     data,
		keys:     map[string]int{},
		tables:   map[string]int{},
		headers:  map[string]int{},
		names:    map[string]int{},
		entries:  map[string]int{},
		reported: map[string]bool{},
	}
	ix.p.Reset(data)
	var current []string
	for ix.p.NextExpression() {
		e := ix.p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			path, line := ix.key(e.Key())
			if e.Kind == unstable.ArrayTable && specAt(path) != nil && specAt(path).kind == kindTableList {
				// Each [[name]] is a table of its own: its keys are
				// name[n].key (see entryPart).
				list := dotted(path)
				ix.entries[list]++
				ix.noteTables(path, 1, len(path), line)
				path = append(path, entryPart(ix.entries[list]))
			}
			current = path
			k := dotted(path)
			if first, ok := ix.headers[k]; ok && e.Kind == unstable.Table {
				ix.fail(path, line, "table [%s] is already defined on line %d; write its keys under one header", k, first)
				continue
			}
			ix.headers[k] = line
			ix.noteTables(path, 1, len(path), line)
			ix.check(path, e, line)
		case unstable.KeyValue:
			ix.keyValue(current, e)
		}
	}
	if err := ix.p.Error(); err != nil {
		ix.errs = append(ix.errs[:0], ix.syntaxError(err))
	}
	return ix
}

// syntaxError turns a parser error into an *Error with its line.
func (ix *index) syntaxError(err error) *Error {
	e := &Error{File: ix.file, Msg: "invalid TOML: " + err.Error()}
	if pe, ok := err.(*unstable.ParserError); ok {
		// The highlight is a subslice of data: its distance from the end of
		// the backing array gives its offset.
		off := cap(ix.data) - cap(pe.Highlight)
		e.Line = lineAt(ix.data, min(max(off, 0), len(ix.data)))
		if len(pe.Key) > 0 {
			e.Field = strings.Join(pe.Key, ".")
		}
	}
	return e
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int) int {
	return 1 + strings.Count(string(data[:off]), "\n")
}

// key returns the parts of a (possibly dotted) key and the line it is on.
func (ix *index) key(it unstable.Iterator) ([]string, int) {
	var parts []string
	line := 0
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = ix.p.Shape(n.Raw).Start.Line
		}
		parts = append(parts, string(n.Data))
	}
	return parts, line
}

// noteTables records path[:from] … path[:to] as tables first seen on line.
func (ix *index) noteTables(path []string, from, to, line int) {
	for i := from; i <= to; i++ {
		k := dotted(path[:i])
		if _, ok := ix.tables[k]; !ok {
			ix.tables[k] = line
		}
	}
}

// keyValue indexes and checks one key = value under the table prefix, and
// the keys of an inline table value.
func (ix *index) keyValue(prefix []string, e *unstable.Node) {
	parts, line := ix.key(e.Key())
	path := append(append([]string(nil), prefix...), parts...)
	ix.noteTables(path, len(prefix)+1, len(path)-1, line)
	k := dotted(path)
	if first, ok := ix.keys[k]; ok {
		if !ix.reported[k] {
			ix.fail(path, line, "is already set on line %d; set each key once", first)
		}
		return
	}
	ix.keys[k] = line
	v := e.Value()
	if !ix.check(path, v, line) || v.Kind != unstable.InlineTable {
		return
	}
	ix.noteTables(path, len(path), len(path), line)
	it := v.Children()
	for it.Next() {
		if c := it.Node(); c.Kind == unstable.KeyValue {
			ix.keyValue(path, c)
		}
	}
}

// check compares the value n set at path against the schema, and records
// an error when the key is unknown or holds the wrong type. It reports
// whether the key is fine.
func (ix *index) check(path []string, n *unstable.Node, line int) bool {
	s := schema
	for i, part := range path {
		if ix.reported[dotted(path[:i+1])] {
			return false
		}
		switch s.kind {
		case kindTableMap:
			k := dotted(path[:i+1])
			if _, ok := ix.names[k]; !ok {
				ix.names[k] = line
				ix.order = append(ix.order, slices.Clone(path[:i+1]))
			}
			s = s.elem
		case kindTable:
			child, ok := s.fields[part]
			if !ok {
				ix.unknown(path[:i+1], s, line, i == len(path)-1 && n.Kind == unstable.Table)
				return false
			}
			s = child
		case kindStringMap:
			s = envValueSpec
		case kindTableList:
			if !isEntryPart(part) {
				ix.fail(path[:i], line, "is an array of tables: write each entry as [[%s]] followed by its keys", dotted(path[:i]))
				return false
			}
			s = s.elem
		default:
			ix.fail(path[:i], line, "must be %s, got a table", s.want())
			return false
		}
	}
	field := dotted(path)
	switch s.kind {
	case kindTable, kindStringMap, kindTableMap:
		if n.Kind == unstable.Table || n.Kind == unstable.InlineTable || n.Kind == unstable.ArrayTable && isEntryPart(path[len(path)-1]) {
			return true
		}
	case kindTableList:
		ix.reported[field] = true
		ix.fail(path, line, "must be %s: write each entry as [[%s]] followed by its keys, got %s", s.want(), field, ix.describe(n))
		return false
	case kindString:
		if n.Kind == unstable.String {
			return true
		}
	case kindInt:
		if n.Kind == unstable.Integer {
			return true
		}
	case kindBool:
		if n.Kind == unstable.Bool {
			return true
		}
	case kindFloat:
		if n.Kind == unstable.Float || n.Kind == unstable.Integer {
			return true
		}
	case kindIntOrString:
		if n.Kind == unstable.Integer || n.Kind == unstable.String {
			return true
		}
	case kindStringList:
		if n.Kind == unstable.Array {
			it := n.Children()
			for it.Next() {
				if c := it.Node(); c.Kind != unstable.String {
					ix.reported[field] = true
					ix.fail(path, line, "must be %s, got an array holding %s", s.want(), ix.describe(c))
					return false
				}
			}
			return true
		}
	case kindDuration:
		if n.Kind == unstable.String {
			if _, err := time.ParseDuration(string(n.Data)); err != nil {
				ix.fail(path, line, "must be %s (units ns, us, ms, s, m, h), got %q", s.want(), n.Data)
				return false
			}
			return true
		}
	}
	ix.reported[field] = true
	ix.fail(path, line, "must be %s, got %s", s.want(), ix.describe(n))
	return false
}

// specAt returns the spec of the key path, nil if the schema has none.
func specAt(path []string) *spec {
	s := schema
	for _, part := range path {
		switch s.kind {
		case kindTable:
			s = s.fields[part]
		case kindTableMap, kindTableList:
			s = s.elem
		default:
			return nil
		}
		if s == nil {
			return nil
		}
	}
	return s
}

// removedDeployKeys are keys of [deploy] cutover no longer reads, with what
// to write instead. They are refused rather than ignored or translated:
// the canary judge they bounded is gone, and a value tuned for it (a p99
// ratio raised to quiet noise) means nothing for the judge that replaced
// it, so the user decides once, told where.
var removedDeployKeys = map[string]string{
	"max_p99_ratio": "removed: the canary judge no longer compares p99s (noisy on a busy machine) but tests whether the new release's " +
		"typical request is slower by at least min_latency_effect (default 0.2: 20%) at the confidence level confidence (default 0.99); " +
		"delete this line, or set min_latency_effect (see docs/observability.md, \"The canary judge\")",
	"max_error_ratio": "removed: the canary judge no longer compares error rates by ratio but tests whether the new release fails " +
		"at least min_error_effect more often in points (default 0.01: one point) at the confidence level confidence (default 0.99); " +
		"delete this line, or set min_error_effect (see docs/observability.md, \"The canary judge\")",
}

// unknown records an unknown key, suggesting the closest known one.
func (ix *index) unknown(path []string, parent *spec, line int, isTable bool) {
	parentKey := dotted(path[:len(path)-1])
	name := path[len(path)-1]
	what := "key"
	if isTable {
		what = "table"
	}
	if parentKey == "app" && (name == "hosts" || name == "default") {
		ix.fail(path, line, "unknown %s; %s is a key of the multi-app form, whose [apps.NAME] tables replace [app] (see docs/config.md)", what, name)
		return
	}
	if len(path) >= 2 && path[len(path)-2] == "deploy" && !isTable {
		if why, ok := removedDeployKeys[name]; ok {
			ix.fail(path, line, "%s", why)
			return
		}
	}
	if hint := suggest(parentKey, parent, name); hint != "" {
		ix.fail(path, line, "unknown %s; did you mean %q?", what, hint)
		return
	}
	where := "at the top level"
	if parentKey != "" {
		where = "in [" + parentKey + "]"
	}
	ix.fail(path, line, "unknown %s; the keys allowed %s are %s", what, where, strings.Join(parent.names, ", "))
}

// fail records an error about the key path.
func (ix *index) fail(path []string, line int, format string, args ...any) {
	field := dotted(path)
	ix.reported[field] = true
	ix.errs = append(ix.errs, &Error{File: ix.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// describe names the type (and, for a scalar, the text) of a value.
func (ix *index) describe(n *unstable.Node) string {
	raw := ""
	if n.Raw.Length > 0 {
		raw = string(ix.p.Raw(n.Raw))
		if i := strings.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[:i] + "..."
		}
		if len(raw) > 40 {
			raw = raw[:37] + "..."
		}
	}
	switch n.Kind {
	case unstable.String:
		return "the string " + raw
	case unstable.Integer:
		return "the integer " + raw
	case unstable.Float:
		return "the float " + raw
	case unstable.Bool:
		return "the boolean " + raw
	case unstable.Array:
		return "an array"
	case unstable.Table, unstable.InlineTable:
		return "a table"
	case unstable.ArrayTable:
		return "an array of tables"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "the date/time " + raw
	}
	return "a " + n.Kind.String()
}
