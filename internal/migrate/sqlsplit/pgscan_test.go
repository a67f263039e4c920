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
		// keyword_kind, and fields of every wire type from a later version
		// of the message.
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
		b = protowire.AppendTag(b, 9, protowire.BytesType)
		b = protowire.AppendBytes(b, []byte("later"))
		b = protowire.AppendTag(b, 10, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, 1)
		b = protowire.AppendTag(b, 11, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, 1)
	}
	var msg []byte
	msg = protowire.AppendTag(msg, 1, protowire.VarintType) // version
	msg = protowire.AppendVarint(msg, 170007)
	// Field 2 with another wire type is not a token.
	msg = protowire.AppendTag(msg, scanResultTokens, protowire.VarintType)
	msg = protowire.AppendVarint(msg, 1<<40)
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
	for name, bad := range map[string][]byte{
		"truncated token":      msg[:len(msg)-3],
		"truncated tag":        {0x80},
		"truncated varint":     protowire.AppendTag(nil, 1, protowire.VarintType),
		"truncated fixed64":    append(protowire.AppendTag(nil, 7, protowire.Fixed64Type), 1, 2, 3),
		"length past the end":  append(protowire.AppendTag(nil, 2, protowire.BytesType), 5, 1),
		"varint over 64 bits":  append(protowire.AppendTag(nil, 1, protowire.VarintType), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1),
		"group wire type":      protowire.AppendTag(nil, 3, protowire.StartGroupType),
		"bad field in a token": protowire.AppendBytes(protowire.AppendTag(nil, scanResultTokens, protowire.BytesType), []byte{0x08}),
	} {
		if toks, err := decodeScanResult(bad); err == nil {
			t.Errorf("%s: got %v and no error", name, toks)
		}
	}
}
