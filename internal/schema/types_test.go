package schema

import "testing"

func TestCompareTypes(t *testing.T) {
	for _, tt := range []struct {
		old, new string
		want     typeChange
	}{
		{"character varying(100)", "character varying(200)", typeWidened},
		{"character varying(100)", "character varying(50)", typeNarrowed},
		{"character varying(100)", "character varying", typeWidened},
		{"character varying", "text", typeSame},
		{"character varying(10)", "text", typeWidened},
		{"text", "character varying(10)", typeNarrowed},
		{"varchar(100)", "character varying(100)", typeSame},
		{"int", "integer", typeSame},
		{"integer", "bigint", typeWidened},
		{"bigint", "smallint", typeNarrowed},
		{"integer", "numeric", typeWidened},
		{"integer", "numeric(5,0)", typeChanged},
		{"numeric(10,2)", "numeric(12,2)", typeWidened},
		{"numeric(10,2)", "numeric(12,4)", typeWidened},
		{"numeric(10,2)", "numeric(10,4)", typeChanged},
		{"numeric(10,2)", "numeric(8,2)", typeNarrowed},
		{"numeric(10,2)", "numeric", typeWidened},
		{"real", "double precision", typeWidened},
		{"timestamp(3) without time zone", "timestamp(6) without time zone", typeWidened},
		{"timestamp without time zone", "timestamp with time zone", typeChanged},
		{"integer[]", "bigint[]", typeWidened},
		{"integer[]", "integer", typeChanged},
		{"text", "integer", typeChanged},
		{"character(5)", "character(10)", typeChanged},
		{"bit varying(5)", "bit varying(10)", typeWidened},
	} {
		if got := compareTypes(tt.old, tt.new); got != tt.want {
			t.Errorf("compareTypes(%q, %q) = %s, want %s", tt.old, tt.new, got, tt.want)
		}
	}
}

func FuzzCompareTypes(f *testing.F) {
	for _, s := range []string{"character varying(100)", "numeric(10,2)", "integer[]", "timestamp(3) without time zone", "varchar(", "a(1,x)", ""} {
		f.Add(s, "text")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if got := compareTypes(a, a); got != typeSame {
			t.Errorf("compareTypes(%q, itself) = %s", a, got)
		}
		compareTypes(a, b) // Must not panic.
	})
}
