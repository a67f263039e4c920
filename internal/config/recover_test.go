package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDataDirOf(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file string
		want       string
		set        bool
	}{
		{"valid", "data_dir = \"/srv/shop/data\"\n[app]\nname = \"shop\"\ncommand = \"./app\"\n", "/srv/shop/data", true},
		{"relative", "# comment\ndata_dir = 'state' # trailing\n", filepath.Join(dir, "state"), true},
		{"typo elsewhere", "data_dir = \"/d\"\n[app]\nname = \"shop\nbogus = [\n", "/d", true},
		{"broken line before", "instances == 2\ndata_dir = \"/d\"\n", "/d", true},
		{"unknown key before", "colour = \"red\"\ndata_dir = \"/d\"\n", "/d", true},
		{"data_dir under a table is not it", "[app]\ndata_dir = \"/d\"\n", filepath.Join(dir, ".cutover"), false},
		{"broken data_dir", "data_dir = \"/d\n", filepath.Join(dir, ".cutover"), false},
		{"not a string", "data_dir = 3\n", filepath.Join(dir, ".cutover"), false},
		{"unset", "[app]\nname = \"shop\"\n", filepath.Join(dir, ".cutover"), false},
	}
	for _, c := range cases {
		path := filepath.Join(dir, "cutover.toml")
		if err := os.WriteFile(path, []byte(c.file), 0o644); err != nil {
			t.Fatal(err)
		}
		got, set, err := DataDirOf(path)
		if err != nil || got != c.want || set != c.set {
			t.Errorf("%s: got %q, %v, %v; want %q, %v", c.name, got, set, err, c.want, c.set)
		}
	}
	if _, _, err := DataDirOf(filepath.Join(dir, "missing.toml")); err == nil {
		t.Error("missing file: got no error")
	}
}
