package config

// Name checks of the validator. They are small hand-written matchers
// rather than regular expressions: every command, `cutover deploy` and
// `cutover status` included, loads the configuration, and compiling the
// expressions at start cost more than the rest of the validation
// (a counted repetition such as {0,62} compiles to a large program).
// names_test.go checks each against the expression it replaces.

import "strings"

// isAppName reports whether s is an app name: ^[A-Za-z0-9._-]+$.
func isAppName(s string) bool {
	return s != "" && all(s, func(c byte) bool { return isAlnum(c) || c == '.' || c == '_' || c == '-' })
}

// isEnvName reports whether s is an environment variable name:
// ^[A-Za-z_][A-Za-z0-9_]*$.
func isEnvName(s string) bool { return isIdent(s, len(s)) }

// isCookieName reports whether s is a cookie name that needs no quoting
// anywhere, a subset of RFC 6265's cookie-name: ^[A-Za-z0-9_-]+$.
func isCookieName(s string) bool {
	return s != "" && all(s, func(c byte) bool { return isAlnum(c) || c == '_' || c == '-' })
}

// isHeaderName reports whether s is a header name of the same kind, a
// subset of RFC 9110's field-name: ^[A-Za-z0-9-]+$.
func isHeaderName(s string) bool {
	return s != "" && all(s, func(c byte) bool { return isAlnum(c) || c == '-' })
}

// isTableName reports whether s is a table name, optionally
// schema-qualified, as Postgres and SQLite accept it unquoted, each part
// at most 63 bytes (Postgres' identifier limit):
// ^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$.
func isTableName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return isIdent(s[:i], 63) && isIdent(s[i+1:], 63)
		}
	}
	return isIdent(s, 63)
}

// isIdent reports whether s is a non-empty identifier of letters, digits
// and '_', not starting with a digit, of at most max bytes.
func isIdent(s string, max int) bool {
	if s == "" || len(s) > max || isDigit(s[0]) {
		return false
	}
	return all(s, func(c byte) bool { return isAlnum(c) || c == '_' })
}

func all(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// isHostName reports whether s is a lower-case DNS host name of labels of
// letters, digits and '-' (not first or last), 1 to 63 bytes each and 253
// in all: ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		if !all(label, func(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'z' || c == '-' }) {
			return false
		}
	}
	return true
}
