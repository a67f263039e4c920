package pgtree

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/wasilibs/go-pgquery/parser"
)

// RawStmt is one statement of a parsed script.
type RawStmt struct {
	// Stmt is the statement's parse tree.
	Stmt *Node `json:"stmt"`
	// StmtLocation is the byte offset at which the statement's text starts,
	// right after the previous statement's semicolon, so the text may begin
	// with blanks, comments and the semicolons of empty statements.
	StmtLocation int `json:"stmt_location"`
	// StmtLen is the length in bytes of the statement's text without its
	// semicolon; 0 means up to the end of the script.
	StmtLen int `json:"stmt_len"`
}

// ErrInvalidUTF8 is Parse's error for a script whose names or strings are
// not valid UTF-8 (comments may be anything). It does not say where: the
// parse tree does not hold the offsets of names and strings.
var ErrInvalidUTF8 = errors.New("a name or string is not valid UTF-8")

// Parse parses a script and returns its statements in order. A syntax error
// is returned as the parser's own *[parser.Error], which says where it is;
// invalid UTF-8 in a name or string as ErrInvalidUTF8.
func Parse(sql string) ([]RawStmt, error) {
	js, err := parser.ParseToJSON(sql)
	if err != nil {
		return nil, err
	}
	// libpg_query copies the bytes of names and strings as they are, and
	// encoding/json would turn invalid UTF-8 into U+FFFD without a word: a
	// finding would then name a table that is not in the script.
	if !utf8.ValidString(js) {
		return nil, ErrInvalidUTF8
	}
	var tree struct {
		Stmts []RawStmt `json:"stmts"`
	}
	if err := json.Unmarshal([]byte(js), &tree); err != nil {
		return nil, fmt.Errorf("decode parse tree: %w", err)
	}
	return tree.Stmts, nil
}

// Node is one node of a parse tree.
type Node struct {
	// Type is the node's type as Postgres names it, such as "AlterTableStmt"
	// or "A_Const"; "" for the empty node that stands for a NULL in a list.
	Type string
	// fields is a pointer to the node's struct for the types in nodeTypes,
	// nil for other types.
	fields any
	// json is the node as libpg_query wrote it, type key included.
	json []byte
}

// UnmarshalJSON decodes a node: {"Type": {fields}}.
func (n *Node) UnmarshalJSON(data []byte) error {
	var typed map[string]json.RawMessage
	if err := json.Unmarshal(data, &typed); err != nil {
		return err
	}
	if len(typed) > 1 {
		return fmt.Errorf("parse tree node with %d keys, want one: its type", len(typed))
	}
	*n = Node{json: bytes.Clone(data)}
	for typ, body := range typed {
		n.Type = typ
		newFields, ok := nodeTypes[typ]
		if !ok {
			break
		}
		fields := newFields()
		if err := json.Unmarshal(body, fields); err != nil {
			return fmt.Errorf("%s: %w", typ, err)
		}
		n.fields = fields
	}
	return nil
}

// GetNode returns the node's struct, such as an *[AlterTableStmt], or nil
// for a node type that this package does not decode (and for a nil Node).
func (n *Node) GetNode() any {
	if n == nil {
		return nil
	}
	return n.fields
}

// String returns the node as libpg_query wrote it in JSON.
func (n *Node) String() string {
	if n == nil {
		return "<nil>"
	}
	return string(n.json)
}

// Find returns the nodes of type typ at and below n, depth first in the
// order libpg_query writes them: a node before the nodes inside it, and
// the nodes inside it in the order of its fields and list items, which is
// the order in which the SQL writes them.
func (n *Node) Find(typ string) []*Node {
	if n == nil {
		return nil
	}
	var found []*Node
	// n.json was decoded once already, so it is valid JSON.
	_ = find(n.json, typ, &found)
	return found
}

// find appends the nodes of type typ in the JSON value v to found. A node
// type is a key: no field of a parse node is named like a node type.
func find(v json.RawMessage, typ string, found *[]*Node) error {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return nil
	}
	switch v[0] {
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return err
		}
		for _, it := range items {
			if err := find(it, typ, found); err != nil {
				return err
			}
		}
	case '{':
		dec := json.NewDecoder(bytes.NewReader(v))
		if _, err := dec.Token(); err != nil { // {
			return err
		}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return err
			}
			var field json.RawMessage
			if err := dec.Decode(&field); err != nil {
				return err
			}
			if key == typ {
				node := new(Node)
				if err := node.UnmarshalJSON(v); err != nil {
					return err
				}
				*found = append(*found, node)
			}
			if err := find(field, typ, found); err != nil {
				return err
			}
		}
	}
	return nil
}
