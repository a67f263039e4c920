package sqlsplit

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestScanPostgres(t *testing.T) {
	sql := "SELECT 1; -- c\n/* d */ 'é';"
	got, err := scanPostgres(sql)
	if err != nil {
		t.Fatal(err)
	}
	want := []lexeme{
		{start: 0, end: 6},
		{start: 7, end: 8},
		{start: 8, end: 9, semi: true},
		{start: 10, end: 14, comment: true},
		{start: 15, end: 22, comment: true},
		{start: 23, end: 27},
		{start: 27, end: 28, semi: true},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(lexeme{})); diff != "" {
		t.Errorf("scanPostgres(%q) mismatch (-want +got):\n%s", sql, diff)
	}
}

func TestDecodeScanResult(t *testing.T) {
	token := func(start, end, tok uint64) []byte {
		var b []byte
		b = protowire.AppendTag(b, scanTokenStart, protowire.VarintType)
		b = protowire.AppendVarint(b, start)
		b = protowire.AppendTag(b, scanTokenEnd, protowire.VarintType)
		b = protowire.AppendVarint(b, end)
		b = protowire.AppendTag(b, scanTokenToken, protowire.VarintType)
		b = protowire.AppendVarint(b, tok)
		// keyword_kind, and a field from a later version of the message.
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
		b = protowire.AppendTag(b, 9, protowire.BytesType)
		return protowire.AppendBytes(b, []byte("later"))
	}
	var msg []byte
	msg = protowire.AppendTag(msg, 1, protowire.VarintType) // version
	msg = protowire.AppendVarint(msg, 170007)
	for _, tok := range [][]byte{token(0, 6, 600), token(7, 9, tokenSQLComment), token(9, 10, tokenSemicolon), token(10, 17, tokenCComment)} {
		msg = protowire.AppendTag(msg, scanResultTokens, protowire.BytesType)
		msg = protowire.AppendBytes(msg, tok)
	}
	got, err := decodeScanResult(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := []lexeme{{start: 0, end: 6}, {start: 7, end: 9, comment: true}, {start: 9, end: 10, semi: true}, {start: 10, end: 17, comment: true}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(lexeme{})); diff != "" {
		t.Errorf("decodeScanResult mismatch (-want +got):\n%s", diff)
	}
	if _, err := decodeScanResult(msg[:len(msg)-3]); err == nil {
		t.Errorf("truncated message: got no error")
	}
}
