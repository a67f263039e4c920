package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/config"
)

// runCLI runs cutover with args and returns its exit code, stdout and
// stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestInitApp walks `cutover init --app` through a file's life: written
// with one app, an app appended (the user's text kept), a name taken.
func TestInitApp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cutover.toml")

	code, out, errs := runCLI(t, "init", "-c", path, "--app", "shop", "--host", "Shop.example.com")
	if code != ExitOK || !strings.Contains(out, "wrote "+path+" with app shop") {
		t.Fatalf("init --app shop: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("the written file does not load: %v", err)
	}
	if u, err := c.Unit(""); err != nil || !u.Default || len(u.Hosts) != 1 || u.Hosts[0] != "shop.example.com" {
		t.Errorf("shop: %+v, %v", u, err)
	}

	// The user edits the file; its text must survive the next app.
	edited := "# my comment\n" + strings.Replace(mustRead(t, path), `command = "./bin/server --port $PORT"`, `command = "./shop"   # shop`, 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "init", "-c", path, "--app", "blog")
	if code != ExitOK || !strings.Contains(out, "added app blog to "+path) {
		t.Fatalf("init --app blog: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	got := mustRead(t, path)
	if !strings.HasPrefix(got, edited) || !strings.Contains(got, "\n[apps.blog]\n") {
		t.Errorf("the file was not appended to:\n%s", got)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode: %v, %v; want 0600 kept", fi.Mode(), err)
	}
	c, err = config.Load(path)
	if err != nil {
		t.Fatalf("the file with two apps does not load: %v", err)
	}
	if names := c.AppNames(); len(names) != 2 {
		t.Errorf("apps: %q", names)
	}

	code, _, errs = runCLI(t, "init", "-c", path, "--app", "blog")
	if code != ExitUsage || !strings.Contains(errs, `app "blog" is already in the file`) {
		t.Errorf("init --app blog again: exit %d, stderr %q", code, errs)
	}
	if mustRead(t, path) != got {
		t.Error("a refused init changed the file")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left beside the config: %v", entries)
	}
}

// TestInitAppRefusals: the single-app form is not converted, and the flags
// of the two forms do not mix.
func TestInitAppRefusals(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cutover.toml")
	if code, _, errs := runCLI(t, "init", "-c", path, "--name", "shop"); code != ExitOK {
		t.Fatalf("init: exit %d, %s", code, errs)
	}
	single := mustRead(t, path)
	code, _, errs := runCLI(t, "init", "-c", path, "--app", "blog")
	if code != ExitUsage || !strings.Contains(errs, "the file is of the single-app form") || !strings.Contains(errs, "<data_dir>/apps/shop/") {
		t.Errorf("init --app on a single-app file: exit %d, stderr %q", code, errs)
	}
	if mustRead(t, path) != single {
		t.Error("the single-app file was changed")
	}
	for _, args := range [][]string{
		{"init", "-c", path + ".2", "--app", "a", "--name", "b"},
		{"init", "-c", path + ".2", "--host", "a.example.com"},
		{"init", "-c", path + ".2", "--app", "a", "--host", "a.example.com:80"},
		{"init", "-c", path + ".2", "--app", "a b"},
	} {
		if code, _, errs := runCLI(t, args...); code != ExitUsage || errs == "" {
			t.Errorf("cutover %q: exit %d, stderr %q; want %d", args, code, errs, ExitUsage)
		}
	}
	if _, err := os.Stat(path + ".2"); !os.IsNotExist(err) {
		t.Errorf("a refused init wrote a file: %v", err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
