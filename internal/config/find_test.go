package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv(EnvVar, "")

	if _, err := Find(""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no file anywhere: got %v, want ErrNotFound", err)
	} else {
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("got %T, want *Error", err)
		}
		for _, part := range []string{filepath.Join(dir, "cutover.toml"), "--config", "$CUTOVER_CONFIG", "cutover init"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("error %q does not mention %q", err, part)
			}
		}
	}

	if err := os.WriteFile("cutover.toml", []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name, flag, env, want string
	}{
		{"working directory", "", "", "cutover.toml"},
		{"environment", "", "/etc/cutover/shop.toml", "/etc/cutover/shop.toml"},
		{"flag wins", "other.toml", "/etc/cutover/shop.toml", "other.toml"},
	}
	for _, s := range steps {
		t.Setenv(EnvVar, s.env)
		got, err := Find(s.flag)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got != s.want {
			t.Errorf("%s: got %q, want %q", s.name, got, s.want)
		}
	}
}
