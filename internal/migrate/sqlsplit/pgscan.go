package sqlsplit

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/wasilibs/go-pgquery/parser"
)

// The scanner of libpg_query returns a protobuf ScanResult message. Its field
// numbers and token numbers are those of libpg_query's pg_query.proto, as
// generated into pg_query_go's pg_query.pb.go (ScanResult, ScanToken, and the
// Token enum: Token_ASCII_59, Token_SQL_COMMENT, Token_C_COMMENT).
//
// The message is read with the few lines of the protobuf wire format below
// rather than with the protobuf module's reader, whose package
// initialisation reads the cutover binary at every start.
const (
	scanResultTokens = 2 // ScanResult: repeated ScanToken tokens = 2

	scanTokenStart = 1 // ScanToken: int32 start = 1, byte offset
	scanTokenEnd   = 2 // ScanToken: int32 end = 2, byte offset past the token
	scanTokenToken = 4 // ScanToken: Token token = 4

	tokenSemicolon  = 59  // Token_ASCII_59: ";"
	tokenSQLComment = 275 // Token_SQL_COMMENT: "-- …"
	tokenCComment   = 276 // Token_C_COMMENT: "/* … */"
)

// scanPostgres returns the tokens of a script, comments included, from the
// Postgres scanner. A script the scanner refuses is returned as its
// *parser.Error.
func scanPostgres(sql string) ([]lexeme, error) {
	msg, err := parser.ScanToProtobuf(sql)
	if err != nil {
		return nil, err
	}
	toks, err := decodeScanResult(msg)
	if err != nil {
		return nil, fmt.Errorf("decode scanner result: %w", err)
	}
	return toks, nil
}

// decodeScanResult decodes a ScanResult message into lexemes.
func decodeScanResult(b []byte) ([]lexeme, error) {
	var toks []lexeme
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return nil, err
		}
		b = rest
		if f.num != scanResultTokens || f.typ != wireBytes {
			continue
		}
		lx, err := decodeScanToken(f.bytes)
		if err != nil {
			return nil, fmt.Errorf("token %d: %w", len(toks), err)
		}
		toks = append(toks, lx)
	}
	return toks, nil
}

// decodeScanToken decodes a ScanToken message into a lexeme.
func decodeScanToken(b []byte) (lexeme, error) {
	var (
		lx    lexeme
		token int32
	)
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return lexeme{}, err
		}
		b = rest
		if f.typ != wireVarint {
			continue
		}
		// int32 and enum fields are varints of the value sign-extended to
		// 64 bits.
		switch f.num {
		case scanTokenStart:
			lx.start = int(int32(f.varint))
		case scanTokenEnd:
			lx.end = int(int32(f.varint))
		case scanTokenToken:
			token = int32(f.varint)
		}
	}
	lx.comment = token == tokenSQLComment || token == tokenCComment
	lx.semi = token == tokenSemicolon
	return lx, nil
}

// Wire types of the protobuf encoding.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2 // length-delimited: strings, bytes, messages, packed lists
	wireFixed32 = 5
)

// wireField is one field of a protobuf message.
type wireField struct {
	num    uint64
	typ    uint64
	varint uint64 // the value of a varint field
	bytes  []byte // the value of a length-delimited field
}

var errTruncated = errors.New("truncated protobuf message")

// nextField reads the first field of the protobuf message b and returns it
// with the rest of b. A protobuf varint is encoding/binary's Uvarint.
func nextField(b []byte) (f wireField, rest []byte, err error) {
	tag, n := binary.Uvarint(b)
	if n <= 0 {
		return f, nil, errTruncated
	}
	b = b[n:]
	f.num, f.typ = tag>>3, tag&7
	switch f.typ {
	case wireVarint:
		if f.varint, n = binary.Uvarint(b); n <= 0 {
			return f, nil, errTruncated
		}
	case wireFixed64:
		n = 8
	case wireBytes:
		size, m := binary.Uvarint(b)
		if m <= 0 || size > uint64(len(b)-m) {
			return f, nil, errTruncated
		}
		n = m + int(size)
		f.bytes = b[m:n]
	case wireFixed32:
		n = 4
	default: // the groups of proto2, unused by pg_query.proto
		return f, nil, fmt.Errorf("field %d: unsupported protobuf wire type %d", f.num, f.typ)
	}
	if n > len(b) {
		return f, nil, errTruncated
	}
	return f, b[n:], nil
}
