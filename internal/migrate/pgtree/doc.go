// Package pgtree parses Postgres SQL with the Postgres parser and decodes the
// part of the parse tree that migration lint inspects.
//
// The parser is libpg_query, compiled to WebAssembly by
// github.com/wasilibs/go-pgquery, whose package parser returns the parse tree
// as JSON. Each node is an object with one key, the node's type as Postgres
// names it, holding the node's fields under the names of the C struct in
// Postgres' nodes/parsenodes.h:
//
//	{"DropStmt": {"objects": [...], "removeType": "OBJECT_TABLE", "concurrent": true}}
//
// Fields that are zero, false, empty or NULL are left out, and enums are
// written by name. [Node] decodes the node types lint reads into small structs
// named after them (A_Const is [AConst]) with only the fields lint reads,
// named as in Postgres; any other node keeps only its type. Every node keeps
// its JSON, so that [Node.Find] can search below nodes that are not decoded,
// such as the function calls anywhere in a column default.
//
// Decoding the JSON keeps the generated protobuf types of the parse tree, and
// the time their registration takes at every start, out of the cutover
// binary.
package pgtree
