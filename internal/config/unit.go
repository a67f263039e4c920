package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Unit is one app's configuration: what one per-app unit of the daemon
// (its releases, instances, deploys, migrations and routing entry) runs
// with. Config.Units gives one per app in both forms of the file.
type Unit struct {
	// Name is the app's name: app.name in the single-app form, NAME of
	// [apps.NAME] in the multi-app form.
	Name string

	// App is the app's [app] or [apps.NAME] keys, with Health and Env.
	App      App
	Deploy   Deploy
	Release  Release
	Database Database

	// Hosts are the Host names routed to the app, lower-case, exact or
	// "*." wildcards (see AppEntry.Hosts). Empty in the single-app form.
	Hosts []string

	// Default is whether the app takes requests for hosts no app lists.
	// Always true for the single-app form's one app, and for an only app
	// of the multi-app form that lists no hosts.
	Default bool

	// DataDir holds the app's releases/, current, logs/, shared/ and
	// state.db. In the single-app form it is data_dir itself (the layout
	// cutover always had, so nothing moves); in the multi-app form it is
	// <data_dir>/apps/<NAME>. Absolute after Load.
	DataDir string

	// Cookie is the name of the app's version cookie: proxy.cookie in the
	// single-app form (so the cookies clients hold stay valid); in the
	// multi-app form proxy.cookie + "_" + NAME with each '.' written '_'
	// ("cutover_release_shop"), so two apps under one domain never read
	// each other's.
	Cookie string
}

// ReleasesDir holds one directory per release, <DataDir>/releases.
func (u *Unit) ReleasesDir() string { return filepath.Join(u.DataDir, "releases") }

// LogsDir holds instance logs, <DataDir>/logs/<release>/<instance>.log.
func (u *Unit) LogsDir() string { return filepath.Join(u.DataDir, "logs") }

// CurrentLink is the symlink to the live release, <DataDir>/current.
func (u *Unit) CurrentLink() string { return filepath.Join(u.DataDir, "current") }

// SharedDir holds the shared paths, <DataDir>/shared.
func (u *Unit) SharedDir() string { return filepath.Join(u.DataDir, "shared") }

// StatePath is the app's SQLite database, <DataDir>/state.db.
func (u *Unit) StatePath() string { return filepath.Join(u.DataDir, "state.db") }

// ErrUnknownApp is the cause of the error of Config.Unit for a name no app
// has, or for no name when there are several apps.
var ErrUnknownApp = errors.New("unknown app")

// MultiApp reports whether the file uses the multi-app form ([apps.NAME]).
func (c *Config) MultiApp() bool { return c.Apps != nil }

// Units returns one Unit per app, sorted by name: the single-app form
// gives one. The Units share no slices or maps with c or each other's
// that validation does not already fix: treat them as read-only.
func (c *Config) Units() []Unit {
	if !c.MultiApp() {
		return []Unit{{
			Name:     c.App.Name,
			App:      c.App,
			Deploy:   c.Deploy,
			Release:  c.Release,
			Database: c.Database,
			Default:  true,
			DataDir:  c.DataDir,
			Cookie:   c.Proxy.Cookie,
		}}
	}
	names := c.AppNames()
	out := make([]Unit, 0, len(names))
	for _, name := range names {
		e := c.Apps[name]
		app := e.App
		app.Name = name
		out = append(out, Unit{
			Name:     name,
			App:      app,
			Deploy:   e.Deploy,
			Release:  e.Release,
			Database: e.Database,
			Hosts:    e.Hosts,
			Default:  e.Default || len(names) == 1 && len(e.Hosts) == 0,
			DataDir:  filepath.Join(c.DataDir, "apps", name),
			Cookie:   appCookie(c.Proxy.Cookie, name),
		})
	}
	return out
}

// AppNames returns the names of the apps, sorted.
func (c *Config) AppNames() []string {
	if !c.MultiApp() {
		return []string{c.App.Name}
	}
	names := make([]string, 0, len(c.Apps))
	for name := range c.Apps {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Unit returns the app called name; "" names the only app, and is an
// error when there are several. The error (an *Error wrapping
// ErrUnknownApp) lists the apps there are.
func (c *Config) Unit(name string) (Unit, error) {
	units := c.Units()
	if name == "" && len(units) == 1 {
		return units[0], nil
	}
	for _, u := range units {
		if u.Name == name {
			return u, nil
		}
	}
	names := c.AppNames()
	msg := fmt.Sprintf("no app %q; the apps are %s", name, strings.Join(names, ", "))
	if name == "" {
		msg = fmt.Sprintf("holds %d apps (%s); say which one with --app NAME", len(names), strings.Join(names, ", "))
	}
	return Unit{}, &Error{File: c.Path, Msg: msg, Err: ErrUnknownApp}
}

// appCookie is the version cookie of the multi-app form's app name.
func appCookie(cookie, name string) string {
	return cookie + "_" + strings.ReplaceAll(name, ".", "_")
}

// ForUnit returns the configuration one app's unit runs with, in the
// single-app form: [app], [deploy], [release] and [database] are the
// app's, data_dir is the app's own (Unit.DataDir) and proxy.cookie its
// cookie; [proxy] is otherwise shared. "" names the only app. A deploy
// engine, which knows one app, sees only this view of the file; in the
// single-app form it is c itself.
func (c *Config) ForUnit(name string) (*Config, error) {
	if !c.MultiApp() {
		if name != "" && name != c.App.Name {
			_, err := c.Unit(name)
			return nil, err
		}
		return c, nil
	}
	u, err := c.Unit(name)
	if err != nil {
		return nil, err
	}
	view := *c
	view.Apps = nil
	view.App, view.Deploy, view.Release, view.Database = u.App, u.Deploy, u.Release, u.Database
	view.DaemonDir = c.DataDir
	view.DataDir = u.DataDir
	view.Proxy.Cookie = u.Cookie
	return &view, nil
}
