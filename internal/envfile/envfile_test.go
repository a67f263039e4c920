package envfile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"comments and blanks", "# top\n\n   \n\t# indented\nA=1\n", map[string]string{"A": "1"}},
		{"plain", "A=hello world\nB=x=y\n", map[string]string{"A": "hello world", "B": "x=y"}},
		{"trailing space dropped", "A=v  \t\n", map[string]string{"A": "v"}},
		{"inline comment", "A=v # note\nB=v#not-a-comment\n", map[string]string{"A": "v", "B": "v#not-a-comment"}},
		{"empty value", "A=\nB=   # nothing\nC=", map[string]string{"A": "", "B": "", "C": ""}},
		{"hash value", "A=#hash\n", map[string]string{"A": "#hash"}},
		{"export", "export A=1\n  export\tB=2\nexportC=3\n", map[string]string{"A": "1", "B": "2", "exportC": "3"}},
		{"spaces around =", "A = 1\n", map[string]string{"A": "1"}},
		{"single quotes literal", `A='x $HOME \n "y"' # c`, map[string]string{"A": `x $HOME \n "y"`}},
		{"double quote escapes", `A="a\nb\tc\"d\\e\$f\qg"`, map[string]string{"A": "a\nb\tc\"d\\e$f\\qg"}},
		{"no expansion", "HOME2=$HOME\nB=${A}\n", map[string]string{"HOME2": "$HOME", "B": "${A}"}},
		{"multi-line double", "KEY=\"-----BEGIN-----\nabc\n-----END-----\"\nNEXT=1\n",
			map[string]string{"KEY": "-----BEGIN-----\nabc\n-----END-----", "NEXT": "1"}},
		{"multi-line single", "A='1\n2'\n", map[string]string{"A": "1\n2"}},
		{"crlf", "A=1\r\nB=\"2\"\r\n# c\r\n", map[string]string{"A": "1", "B": "2"}},
		{"last wins", "A=1\nA=2\n", map[string]string{"A": "2"}},
		{"underscore and digits", "_A1=x\n", map[string]string{"_A1": "x"}},
		{"line continuation in double quotes", "A=\"one \\\ntwo\"\n", map[string]string{"A": "one two"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.src), "app.env")
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.src, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.src, diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{"A=1\nnot an assignment\n", "app.env:2: expected = after not"},
		{"A=1\n1A=2\n", "app.env:2: expected a variable name"},
		{"=1\n", "app.env:1: expected a variable name"},
		{"# c\nA=\"open\n\nB=2\n", "app.env:2: unterminated double-quoted value"},
		{"A='open\n", "app.env:1: unterminated single-quoted value"},
		{"A=\"1\" trailing\n", `app.env:1: unexpected 't' after the value`},
		{"A='x\ny' z\n", `app.env:2: unexpected 'z' after the value`},
		{"A=\"a\x00b\"\n", "app.env:1: value of A contains a NUL byte"},
		{"A=1\rB=2\n", "app.env:1: stray carriage return"},
		{"export A\n", "app.env:1: expected = after A"},
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(tt.src), "app.env")
		if err == nil {
			t.Errorf("Parse(%q) = nil error, want %q", tt.src, tt.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error = %q, want prefix %q", tt.src, err, tt.want)
		}
	}
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestDigest(t *testing.T) {
	a := map[string]string{"A": "1", "B": "2"}
	b := map[string]string{"B": "2", "A": "1"}
	if got, want := Digest(testKey, a), Digest(testKey, b); got != want {
		t.Errorf("Digest of equal maps: got %q, want %q", got, want)
	}
	if got := Digest(testKey, a); !strings.HasPrefix(got, "hmac-sha256:") || len(got) != len("hmac-sha256:")+64 {
		t.Errorf("Digest = %q, want hmac-sha256:<64 hex>", got)
	}
	// A known value (HMAC-SHA256 of "3:A=1\n" under testKey), so the digest
	// stays stable across versions and recorded digests keep meaning the
	// same thing.
	if got, want := Digest(testKey, map[string]string{"A": "1"}), "hmac-sha256:c50acf1bd2680f9e66da10694d87596a25b6db09b3578bb6d279c81faad8001c"; got != want {
		t.Errorf("Digest({A:1}) = %q, want %q", got, want)
	}
	for _, other := range []map[string]string{
		{"A": "1", "B": "3"},
		{"A": "1"},
		{"A": "1", "B": "2", "C": ""},
		{"A": "1\x00B=2"}, // a value that looks like two entries
	} {
		if Digest(testKey, other) == Digest(testKey, a) {
			t.Errorf("Digest(%q) equals Digest(%q)", other, a)
		}
	}
	// The bare sha256 of the entries must not be what is recorded.
	if got := Digest(testKey, map[string]string{"A": "1"}); strings.Contains(got, "804f6ff0dc2c17e6eb703c8d3f753e98ba213b26404c8c64664607ca3d41cc1b") {
		t.Errorf("Digest is the bare sha256: %q", got)
	}
	if Digest([]byte("another key 0123456789abcdef0123"), a) == Digest(testKey, a) {
		t.Error("Digest does not depend on the key")
	}
}

func TestRedact(t *testing.T) {
	got := Redact(testKey, map[string]string{"SECRET": "hunter2", "EMPTY": ""})
	want := map[string]string{
		"SECRET": "hmac-sha256:3920d54ec70f",
		"EMPTY":  "hmac-sha256:796cd3078af1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Redact mismatch (-want +got):\n%s", diff)
	}
	for _, v := range got {
		// Neither the value nor its bare sha256 (f52fbd32b2b3… for hunter2).
		if strings.Contains(v, "hunter2") || strings.Contains(v, "f52fbd32b2b3") || strings.Contains(v, "e3b0c44298fc") {
			t.Errorf("Redact leaked the value or its bare hash: %q", v)
		}
	}
}

// quote renders v as a double-quoted value that Parse reads back as v.
func quote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "`", "\\`", "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(v) + `"`
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"A=1\n", "export A='x'\n# c\nB=\"y\\n\"\n", "A=\"multi\nline\"", "A= # c", "A=\r\n",
		"=", "A", "A='", "A=\"\\", "A=\"\\\n\"", "A=b # c\r\nexport\tZ_9=$X",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		env, err := Parse(strings.NewReader(src), "fuzz.env")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.env:") {
				t.Fatalf("error %q does not name the file and line", err)
			}
			return
		}
		// Whatever parsed must survive being written back and re-read.
		var b strings.Builder
		for k, v := range env {
			b.WriteString(k + "=" + quote(v) + "\n")
		}
		again, err := Parse(strings.NewReader(b.String()), "again.env")
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		if diff := cmp.Diff(env, again); diff != "" {
			t.Fatalf("round trip mismatch (-first +again):\n%s", diff)
		}
		if Digest(testKey, env) != Digest(testKey, again) {
			t.Fatalf("Digest changed across a round trip")
		}
	})
}
