package migrate

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Version identifies a migration and orders it. It is the version as the
// file name writes it, normalised: parts separated by dots (Flyway's
// underscores become dots, as Flyway shows them) and each part without
// leading zeros, so "0042" is "42", "V1_1__" is "1.1" and "V2.0.3__" is
// "2.0.3". Integer versions, the only kind before dotted ones, are
// therefore the decimal integer an earlier version table recorded.
//
// A Flyway repeatable migration (R__<description>.sql) has no version; its
// Version is "R__" and the description, and it orders after every
// versioned one, repeatables among themselves by description, which is
// when Flyway applies them.
//
// Versions compare numerically part by part, a missing part counting as 0:
// 1.9 < 1.10 < 2, and 1 and 1.0 are the same version (LoadDir refuses both
// in one directory, as Flyway does). Compare them with [Version.Compare],
// not with <, which would compare text.
type Version string

// repeatablePrefix starts the Version of a repeatable migration.
const repeatablePrefix = "R__"

// ParseVersion parses a version as a user or a file name writes it: digits
// separated by dots or underscores ("42", "1.1", "2_0_3"), or "R__" and a
// repeatable migration's description.
func ParseVersion(s string) (Version, error) {
	if d, ok := strings.CutPrefix(s, repeatablePrefix); ok {
		if d == "" {
			return "", fmt.Errorf("version %q: a repeatable migration needs a description after R__", s)
		}
		return Version(s), nil
	}
	if s == "" {
		return "", fmt.Errorf("empty version: want digits, optionally separated by dots (1, 42, 1.1, 2.0.3)")
	}
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '_' })
	if len(parts) == 0 || strings.Count(s, ".")+strings.Count(s, "_") != len(parts)-1 {
		return "", fmt.Errorf("version %q: want digits separated by single dots or underscores (1, 42, 1.1, 2.0.3)", s)
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || n > math.MaxInt64 {
			return "", fmt.Errorf("version %q: part %q is not an integer below 2⁶³", s, p)
		}
		parts[i] = strconv.FormatUint(n, 10)
	}
	return Version(strings.Join(parts, ".")), nil
}

// VersionOf returns the Version of an integer id.
func VersionOf(id uint64) Version { return Version(strconv.FormatUint(id, 10)) }

// Repeatable reports whether v is a Flyway repeatable migration's.
func (v Version) Repeatable() bool { return strings.HasPrefix(string(v), repeatablePrefix) }

// Int returns v as an integer, and whether it is one: false for dotted
// versions and repeatables.
func (v Version) Int() (uint64, bool) {
	n, err := strconv.ParseUint(string(v), 10, 64)
	return n, err == nil && n <= math.MaxInt64
}

// String returns the version as shown to people.
func (v Version) String() string { return string(v) }

// Format prints the version as written for every verb, so that %d, used
// when versions were integers, still prints it.
func (v Version) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", string(v))
		return
	}
	_, _ = io.WriteString(f, string(v)) // fmt.State's writer reports errors at the end of Fprintf
}

// Compare returns -1, 0 or +1 as v orders before, with, or after w.
func (v Version) Compare(w Version) int {
	if rv, rw := v.Repeatable(), w.Repeatable(); rv || rw {
		switch {
		case rv && rw:
			return strings.Compare(string(v), string(w))
		case rv:
			return 1
		}
		return -1
	}
	a, b := strings.Split(string(v), "."), strings.Split(string(w), ".")
	for i := 0; i < max(len(a), len(b)); i++ {
		if c := cmp.Compare(versionPart(a, i), versionPart(b, i)); c != 0 {
			return c
		}
	}
	return 0
}

// versionPart returns part i of a normalised version, 0 when it has fewer
// parts (or the part does not parse, which ParseVersion prevents).
func versionPart(parts []string, i int) uint64 {
	if i >= len(parts) {
		return 0
	}
	n, _ := strconv.ParseUint(parts[i], 10, 64) // normalised by ParseVersion
	return n
}
