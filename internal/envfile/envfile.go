// Package envfile reads environment files (KEY=VALUE lines) and summarises
// environments without showing their values, so a release's environment
// can be recorded and compared while its secrets stay unprinted.
//
// The accepted syntax is the common subset of shell and dotenv files:
//
//	# a comment, and blank lines, are ignored
//	PLAIN=value with spaces   # a comment after whitespace is dropped
//	export EXPORTED=1         # "export " is allowed and ignored
//	SINGLE='taken $literally\n, may span lines'
//	DOUBLE="escapes \n \r \t \" \\ \$ are decoded; may span lines"
//
// Values are never expanded: $HOME stays "$HOME". A later assignment to the
// same key wins.
package envfile

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Parse reads an environment file from r. name is used in error messages,
// which have the form "name:line: what is wrong".
func Parse(r io.Reader, name string) (map[string]string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	p := parser{src: string(b), name: name, line: 1}
	env := map[string]string{}
	for !p.eof() {
		key, value, ok, err := p.assignment()
		if err != nil {
			return nil, err
		}
		if ok {
			env[key] = value
		}
	}
	return env, nil
}

type parser struct {
	src  string
	pos  int
	name string
	line int // line of src[pos]
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.name, line, fmt.Sprintf(format, args...))
}

// skipSpace skips blanks and tabs, not line endings.
func (p *parser) skipSpace() {
	for !p.eof() && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
}

// endLine consumes the rest of the line, which must be blank or a comment.
func (p *parser) endLine(line int) error {
	p.skipSpace()
	if p.eof() {
		return nil
	}
	switch c := p.src[p.pos]; c {
	case '#':
		for !p.eof() && p.src[p.pos] != '\n' {
			p.pos++
		}
	case '\r', '\n':
	default:
		return p.errorf(line, "unexpected %q after the value (quote values that contain it)", c)
	}
	if strings.HasPrefix(p.src[p.pos:], "\r\n") {
		p.pos++
	}
	if !p.eof() && p.src[p.pos] == '\r' {
		return p.errorf(line, "stray carriage return")
	}
	if !p.eof() {
		p.pos++ // '\n'
		p.line++
	}
	return nil
}

// assignment reads one line (or several, for a multi-line quoted value).
// ok is false for a blank or comment line.
func (p *parser) assignment() (key, value string, ok bool, err error) {
	line := p.line
	p.skipSpace()
	if p.eof() || p.src[p.pos] == '#' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r' {
		return "", "", false, p.endLine(line)
	}
	if rest, found := strings.CutPrefix(p.src[p.pos:], "export"); found && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		p.pos += len("export")
		p.skipSpace()
	}
	start := p.pos
	for !p.eof() && isKeyByte(p.src[p.pos], p.pos == start) {
		p.pos++
	}
	key = p.src[start:p.pos]
	if key == "" {
		return "", "", false, p.errorf(line, "expected a variable name (letters, digits and _, not starting with a digit)")
	}
	p.skipSpace()
	if p.eof() || p.src[p.pos] != '=' {
		return "", "", false, p.errorf(line, "expected = after %s", key)
	}
	p.pos++
	p.skipSpace()
	switch {
	case p.eof():
	case p.src[p.pos] == '\'':
		value, err = p.singleQuoted(line)
	case p.src[p.pos] == '"':
		value, err = p.doubleQuoted(line)
	default:
		value = p.unquoted()
	}
	if err != nil {
		return "", "", false, err
	}
	if strings.IndexByte(value, 0) >= 0 {
		return "", "", false, p.errorf(line, "value of %s contains a NUL byte, which no environment can hold", key)
	}
	if err := p.endLine(p.line); err != nil {
		return "", "", false, err
	}
	return key, value, true, nil
}

func isKeyByte(c byte, first bool) bool {
	switch {
	case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		return true
	case '0' <= c && c <= '9':
		return !first
	}
	return false
}

// unquoted reads a bare value: up to the end of the line or a comment that
// follows whitespace, with trailing whitespace dropped.
func (p *parser) unquoted() string {
	start := p.pos
	for !p.eof() {
		c := p.src[p.pos]
		if c == '\n' || c == '\r' {
			break
		}
		if c == '#' && p.pos > 0 && (p.src[p.pos-1] == ' ' || p.src[p.pos-1] == '\t') {
			break
		}
		p.pos++
	}
	return strings.TrimRight(p.src[start:p.pos], " \t")
}

// singleQuoted reads '...' literally; it may span lines.
func (p *parser) singleQuoted(line int) (string, error) {
	p.pos++ // opening quote
	end := strings.IndexByte(p.src[p.pos:], '\'')
	if end < 0 {
		return "", p.errorf(line, "unterminated single-quoted value")
	}
	v := p.src[p.pos : p.pos+end]
	p.line += strings.Count(v, "\n")
	p.pos += end + 1
	return v, nil
}

// doubleQuoted reads "..." decoding backslash escapes; it may span lines.
func (p *parser) doubleQuoted(line int) (string, error) {
	p.pos++ // opening quote
	var b strings.Builder
	for {
		if p.eof() {
			return "", p.errorf(line, "unterminated double-quoted value")
		}
		c := p.src[p.pos]
		p.pos++
		switch c {
		case '"':
			return b.String(), nil
		case '\n':
			p.line++
			b.WriteByte(c)
		case '\\':
			if p.eof() {
				return "", p.errorf(line, "unterminated double-quoted value")
			}
			e := p.src[p.pos]
			p.pos++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '"', '\\', '$', '`':
				b.WriteByte(e)
			case '\n':
				// A backslash before a line break continues the line.
				p.line++
			default:
				// Unknown escapes are kept as written, like the shell does.
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
}

// DigestPrefix starts every digest Digest, Redact and KeyedDigest return.
const DigestPrefix = "hmac-sha256:"

// Digest returns a stable keyed digest of env, "hmac-sha256:<hex>": the
// HMAC-SHA256 under key of its KEY=VALUE entries in key order, each
// written as "<length>:KEY=VALUE\n". Under one key, two environments have
// the same digest exactly when they hold the same keys and values, so it
// says whether an environment changed without showing it. Keyed, because a
// bare hash of a secret can be tested against guesses by anyone who reads
// it; without the key, an HMAC cannot.
func Digest(key []byte, env map[string]string) string {
	h := hmac.New(sha256.New, key)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		// Each KEY=VALUE entry is preceded by its length, so no value can
		// pass for several entries, whatever bytes it holds.
		fmt.Fprintf(h, "%d:%s=%s\n", len(k)+1+len(env[k]), k, env[k])
	}
	return DigestPrefix + hex.EncodeToString(h.Sum(nil))
}

// Redact maps each key of env to "hmac-sha256:" and the first 12 hex
// digits of the HMAC-SHA256 of its value under key, for showing which
// values changed without the values. Without the key not even a short,
// guessable value (a boolean, a port) can be told from its digest.
func Redact(key []byte, env map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = KeyedDigest(key, []byte(v))[:len(DigestPrefix)+12]
	}
	return out
}

// KeyedDigest returns "hmac-sha256:<hex>" of b under key.
func KeyedDigest(key, b []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write(b)
	return DigestPrefix + hex.EncodeToString(h.Sum(nil))
}
