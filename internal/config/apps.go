package config

import (
	"fmt"
	"slices"
	"strings"
)

// singleTables are the top-level tables of the single-app form.
var singleTables = []string{"app", "deploy", "release", "database"}

// checkForm refuses a file that mixes the two forms: [apps.NAME] tables
// beside [app], [deploy], [release] or [database]. Nothing else is judged
// then: which keys are wrong depends on the form meant.
func checkForm(ix *index) error {
	multi, ok := ix.tables["apps"]
	if !ok {
		return nil
	}
	var found []string
	for _, t := range singleTables {
		if line, ok := ix.tables[t]; ok {
			found = append(found, fmt.Sprintf("[%s] on line %d", t, line))
		}
	}
	if len(found) == 0 {
		return nil
	}
	return &Error{
		File:  ix.file,
		Line:  multi,
		Field: "apps",
		Msg: fmt.Sprintf("the multi-app form ([apps.NAME], from line %d) cannot be mixed with the single-app form (%s); "+
			"a file holds one: move each app's deploy, release and database tables under it as [apps.NAME.deploy]…, "+
			"or keep [app] and remove [apps]", multi, strings.Join(found, ", ")),
	}
}

// appNames returns the names of the [apps.NAME] tables in the order they
// first appear: nil when the file has no [apps], empty when [apps] holds
// no app.
func (ix *index) appNames() []string {
	if _, ok := ix.tables["apps"]; !ok {
		return nil
	}
	names := []string{}
	for _, p := range ix.order {
		if len(p) == 2 && p[0] == "apps" {
			names = append(names, p[1])
		}
	}
	return names
}

// failAt records an error about field at a given line.
func (v *validator) failAt(field string, line int, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.ix.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// apps checks the multi-app form: each app's tables as the single-app
// form's, its name, its hosts, and what no two apps may share.
func (v *validator) apps(c *Config) {
	names := v.ix.appNames()
	if len(names) == 0 {
		v.failAt("apps", v.ix.tables["apps"], `holds no app; add an [apps.NAME] table with at least command = "..." (cutover init --app NAME writes one)`)
		return
	}
	type owner struct {
		app  string
		line int
	}
	hosts := map[string]owner{}   // host → the app that lists it first
	cookies := map[string]owner{} // version cookie → the app it is for
	var def *owner                // the first app with default = true
	for _, name := range names {  // in the order of the file, so the later of two is blamed
		s := appScope(name)
		e := c.Apps[name]
		at := v.ix.names[s.app]
		switch {
		case !isAppName(name):
			v.failAt(s.app, at, "the app's name (%q) must be letters, digits, '-', '_' and '.'", name)
		case name == "." || name == "..":
			v.failAt(s.app, at, "the app's name (%q) names its data directory <data_dir>/apps/NAME, and cannot be %q", name, name)
		}
		if _, set := v.ix.keys[s.a("name")]; set && e.Name != name {
			v.fail(s.a("name"), "must be %q, the name of its table, or be left out; got %q", name, e.Name)
		}
		v.unit(s, &e.App, &e.Deploy, &e.Release, &e.Database)
		v.tlsFiles(s, name, &e.App, &c.Proxy, e.Hosts, len(names))

		field := s.a("hosts")
		line := v.line(field)
		seen := map[string]int{} // host → its 1-based entry
		for i, h := range e.Hosts {
			host, problem := checkHost(h)
			e.Hosts[i] = host
			if problem != "" {
				v.fail(field, "entry %d (%q) %s", i+1, h, problem)
				continue
			}
			if j, dup := seen[host]; dup {
				v.fail(field, "entry %d (%q) repeats entry %d; list each host once", i+1, h, j)
				continue
			}
			seen[host] = i + 1
			if o, taken := hosts[host]; taken {
				v.fail(field, "entry %d (%q) is also a host of app %q (line %d); a host goes to one app", i+1, h, o.app, o.line)
				continue
			}
			hosts[host] = owner{name, line}
		}
		if e.Default {
			if def != nil {
				v.fail(s.a("default"), "app %q (line %d) is already the default; only one app may take the hosts no app lists", def.app, def.line)
			} else {
				def = &owner{name, v.line(s.a("default"))}
			}
		}
		if len(names) > 1 && len(e.Hosts) == 0 && !e.Default {
			v.failAt(s.app, at, `is unreachable: it has no hosts and is not the default, and the file has %d apps; add hosts = ["%s.example.com"] (the names it answers to) or default = true`, len(names), name)
		}
		cookie := appCookie(c.Proxy.Cookie, name)
		if o, taken := cookies[cookie]; taken {
			v.failAt(s.app, at, "its version cookie %q is also app %q's (line %d), since '.' is written '_' in it; rename one of the two", cookie, o.app, o.line)
		} else {
			cookies[cookie] = owner{name, at}
		}
	}
	if c.Proxy.PreviewListen != "" && len(names) > 1 {
		v.fail("proxy.preview_listen", "serves one app's preview, and the file has %d apps (%s); remove it: a preview is reached on proxy.listen with its preview token, for any app",
			len(names), strings.Join(slices.Sorted(slices.Values(names)), ", "))
	}
}

// checkHost lower-cases an entry of apps.NAME.hosts, and says what is
// wrong with it, or "".
func checkHost(h string) (host, problem string) {
	host = strings.ToLower(h)
	name, _ := strings.CutPrefix(host, "*.")
	switch {
	case strings.Contains(host, ":"):
		return host, "must be a host name without a port (the proxy routes by name and ignores the port)"
	case strings.Contains(name, "*"):
		return host, `may hold a wildcard only as its whole first label, as in "*.example.com"`
	case strings.HasSuffix(name, ".") && isHostName(strings.TrimSuffix(name, ".")):
		return host, "must be written without the trailing dot"
	case !isHostName(name):
		return host, `must be a host name such as "shop.example.com" or "*.shop.example.com": labels of letters, digits and '-' (not first or last), 1 to 63 characters each`
	}
	return host, ""
}
