package sqlsplit

import (
	"fmt"

	"github.com/wasilibs/go-pgquery/parser"
	"google.golang.org/protobuf/encoding/protowire"
)

// The scanner of libpg_query returns a protobuf ScanResult message. Its field
// numbers and token numbers are those of libpg_query's pg_query.proto, as
// generated into pg_query_go's pg_query.pb.go (ScanResult, ScanToken, and the
// Token enum: Token_ASCII_59, Token_SQL_COMMENT, Token_C_COMMENT).
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
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if num == scanResultTokens && typ == protowire.BytesType {
			tok, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			lx, err := decodeScanToken(tok)
			if err != nil {
				return nil, fmt.Errorf("token %d: %w", len(toks), err)
			}
			toks = append(toks, lx)
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
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
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return lexeme{}, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.VarintType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return lexeme{}, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return lexeme{}, protowire.ParseError(n)
		}
		b = b[n:]
		// int32 and enum fields are varints of the value sign-extended to
		// 64 bits.
		switch num {
		case scanTokenStart:
			lx.start = int(int32(v))
		case scanTokenEnd:
			lx.end = int(int32(v))
		case scanTokenToken:
			token = int32(v)
		}
	}
	lx.comment = token == tokenSQLComment || token == tokenCComment
	lx.semi = token == tokenSemicolon
	return lx, nil
}
