package config

import (
	"fmt"
	"os"
	"strings"
)

// ExpandedURL returns URL with every ${NAME} replaced by the environment
// variable NAME. Only the braced form is expanded, so a '$' elsewhere (in a
// password, say) is kept as written. It fails when a variable is unset, or
// when the expanded URL is neither postgres:// nor sqlite://.
func (d Database) ExpandedURL() (string, error) {
	return expandURL(d.URL, os.LookupEnv)
}

// expandURL is ExpandedURL with the environment passed in.
func expandURL(raw string, lookup func(string) (string, bool)) (string, error) {
	u, err := expandRefs(raw, lookup)
	if err != nil {
		return "", fmt.Errorf("database.url: %w", err)
	}
	if err := checkScheme(u); err != nil {
		return "", fmt.Errorf("database.url: after expanding variables: %w", err)
	}
	return u, nil
}

// expandRefs replaces each ${NAME} in s with lookup(NAME).
func expandRefs(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("%q has no closing '}'", s[i:])
		}
		name := s[i+2 : i+j]
		if !isEnvName(name) {
			return "", fmt.Errorf("${%s} is not a valid variable name (letters, digits and '_')", name)
		}
		val, ok := lookup(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set; export it, or write the URL in the config file", name)
		}
		b.WriteString(val)
		s = s[i+j+1:]
	}
}

// checkURL validates database.url as written: its ${NAME} references are
// well formed and, when it has none, its scheme is known. A URL built from
// variables can only be judged once expanded, by ExpandedURL.
func checkURL(raw string) error {
	if !strings.Contains(raw, "${") {
		return checkScheme(raw)
	}
	_, err := expandRefs(raw, func(string) (string, bool) { return "", true })
	return err
}

// checkScheme accepts the URL forms the migration runner knows.
func checkScheme(u string) error {
	for _, p := range []string{"postgres://", "postgresql://", "sqlite://"} {
		if strings.HasPrefix(u, p) {
			return nil
		}
	}
	return fmt.Errorf(`must start with "postgres://", "postgresql://" or "sqlite://" (or be empty for no database), got %q`, redact(u))
}

// redact hides the password of a URL shown in an error.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return u
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return u
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
