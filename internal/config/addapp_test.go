package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAddApp(t *testing.T) {
	// A multi-app file as a user keeps it: comments, odd spacing, and no
	// newline at the end.
	const kept = "# our apps\ndata_dir = \"/var/lib/cutover\"  # keep\n\n[apps.shop]\ncommand = \"./shop\" # the shop\nhosts = [\"shop.example.com\"]\ndefault = true"
	tests := []struct {
		name    string
		data    string
		app     string
		hosts   []string
		apps    []string // the apps of the result
		hostsOf []string // the new app's hosts in the result
		def     bool     // whether the new app is the default
	}{
		{"no file", "", "shop", nil, []string{"shop"}, nil, true},
		{"no file, with hosts", "\n", "shop", []string{"Shop.Example.com", "*.shop.example.com"}, []string{"shop"}, []string{"shop.example.com", "*.shop.example.com"}, true},
		{"a second app", kept, "blog", nil, []string{"blog", "shop"}, []string{"blog.example.com"}, false},
		{"a second app with hosts", kept, "blog", []string{"BLOG.example.com"}, []string{"blog", "shop"}, []string{"blog.example.com"}, false},
		{"a name with a dot", kept, "blog.v2", nil, []string{"blog.v2", "shop"}, []string{"blog.v2.example.com"}, false},
		{"a file of no form yet", "[proxy]\nlisten = \":80\"\n", "shop", nil, []string{"shop"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := AddApp("cutover.toml", "/srv", []byte(tt.data), tt.app, tt.hosts)
			if err != nil {
				t.Fatalf("AddApp: %v", err)
			}
			if strings.TrimSpace(tt.data) != "" && !bytes.HasPrefix(out, []byte(tt.data)) {
				t.Errorf("the existing text was changed:\n%s", out)
			}
			c, err := parse("cutover.toml", "/srv", out)
			if err != nil {
				t.Fatalf("the result does not load: %v\n%s", err, out)
			}
			if diff := cmp.Diff(tt.apps, c.AppNames()); diff != "" {
				t.Errorf("apps (-want +got):\n%s", diff)
			}
			u, err := c.Unit(tt.app)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.hostsOf, u.Hosts); diff != "" || u.Default != tt.def || u.App.Command != "./bin/server --port $PORT" {
				t.Errorf("new app: hosts (-want +got) %s, default %v, command %q", diff, u.Default, u.App.Command)
			}
		})
	}
}

func TestAddAppErrors(t *testing.T) {
	const multi = "[apps.shop]\ncommand = \"./shop\"\n"
	tests := []struct {
		name  string
		data  string
		app   string
		hosts []string
		want  string
	}{
		{"bad name", "", "a b", nil, `cutover.toml: cannot add app "a b": an app's name is letters, digits, '-', '_' and '.', and not "." or ".."`},
		{"name ..", multi, "..", nil, `cutover.toml: cannot add app "..": an app's name is letters, digits, '-', '_' and '.', and not "." or ".."`},
		{"bad host", multi, "blog", []string{"blog.example.com:443"}, `cutover.toml: cannot add app "blog": host 1 ("blog.example.com:443") must be a host name without a port (the proxy routes by name and ignores the port)`},
		{"name taken", multi + "[apps.blog]\ncommand = \"x\"\n", "blog", nil, `cutover.toml:3: apps.blog: app "blog" is already in the file; choose another name, or edit its [apps.blog] tables`},
		{"broken file", "[apps.shop\n", "blog", nil, `cutover.toml:1: invalid TOML: expected ']' to close table name`},
		{
			"single-app form",
			"data_dir = \"x\"\n[app]\nname = \"shop\"\ncommand = \"./shop\"\n[deploy]\nwatch = \"1m\"\n",
			"blog", nil,
			`cutover.toml:2: the file is of the single-app form ([app], [deploy]), and apps are added to the multi-app form only. ` +
				`To convert it: stop the daemon; move releases/, current, logs/, shared/ and state.db from <data_dir> into <data_dir>/apps/shop/; ` +
				`rename [app] to [apps.shop], and [app.env], [app.health], [deploy], [release], [database] to ` +
				`[apps.shop.env], [apps.shop.health], [apps.shop.deploy], [apps.shop.release], [apps.shop.database]; ` +
				`then run this command again (see "Several apps" in docs/config.md). cutover does not convert the file itself, since that moves the data of a live app`,
		},
		{
			"an only app would become unreachable",
			multi, "blog", nil,
			"with [apps.blog] added the file would not load, so it was left as it is; fix the first of these and run the command again:\n" +
				`cutover.toml:1: apps.shop: is unreachable: it has no hosts and is not the default, and the file has 2 apps; add hosts = ["shop.example.com"] (the names it answers to) or default = true`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := AddApp("cutover.toml", "/srv", []byte(tt.data), tt.app, tt.hosts)
			if err == nil {
				t.Fatalf("AddApp accepted it:\n%s", out)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %q\nwant %q", got, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("got %T, want an *Error inside", err)
			}
		})
	}
	_, err := AddApp("cutover.toml", "/srv", []byte("[app]\nname = \"x\"\ncommand = \"y\"\n"), "blog", nil)
	if !errors.Is(err, ErrSingleForm) {
		t.Errorf("single-app form: %v does not wrap ErrSingleForm", err)
	}
}
