package config

import "testing"

func TestExpandURL(t *testing.T) {
	env := map[string]string{"PGPASS": "s3cr$t", "PGHOST": "db.internal", "FULL": "sqlite:///x.db", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct{ in, want, err string }{
		{"postgres://app:${PGPASS}@${PGHOST}/shop", "postgres://app:s3cr$t@db.internal/shop", ""},
		{"${FULL}", "sqlite:///x.db", ""},
		{"postgres://u:pa$word@h/db", "postgres://u:pa$word@h/db", ""},
		{"postgres://h/db${EMPTY}", "postgres://h/db", ""},
		{"postgres://${NOPE}/db", "", "database.url: environment variable NOPE is not set; export it, or write the URL in the config file"},
		{"postgres://${PGHOST", "", `database.url: "${PGHOST" has no closing '}'`},
		{"${PGHOST}/db", "", `database.url: after expanding variables: must start with "postgres://", "postgresql://" or "sqlite://" (or be empty for no database), got "db.internal/db"`},
	}
	for _, tt := range tests {
		got, err := expandURL(tt.in, lookup)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.err {
			t.Errorf("expandURL(%q) = %q, %q; want %q, %q", tt.in, got, gotErr, tt.want, tt.err)
		}
	}
}

func TestExpandedURLUsesEnvironment(t *testing.T) {
	t.Setenv("CUTOVER_TEST_DB", "postgres://localhost/test")
	got, err := Database{URL: "${CUTOVER_TEST_DB}"}.ExpandedURL()
	if err != nil || got != "postgres://localhost/test" {
		t.Errorf("got %q, %v; want %q", got, err, "postgres://localhost/test")
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"mysql://u:pw@h/db":  "mysql://u:xxxxx@h/db",
		"mysql://u@h/db":     "mysql://u@h/db",
		"mysql://u:p@w@h/db": "mysql://u:xxxxx@h/db",
		"just text":          "just text",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q): got %q, want %q", in, got, want)
		}
	}
}
