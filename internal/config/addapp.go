package config

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrSingleForm is the cause of AddApp's error for a file of the
// single-app form.
var ErrSingleForm = errors.New("single-app form")

// AddApp returns data, the text of the config file named file (whose
// relative paths are relative to dir), with the [apps.NAME] tables of a
// new app appended, as `cutover init --app NAME` writes them: commented
// like Example, with hosts as given (see ExampleApp). Empty data gives a
// whole file, ExampleApps.
//
// The existing text is kept byte for byte, comments included: the app is
// appended as text, never by re-encoding the file. AddApp refuses a file
// that does not parse, one of the single-app form (converting it moves
// the app's data; the error says how, and wraps ErrSingleForm), a name
// already there, and a result that would not load (an existing only app
// that has neither hosts nor default = true becomes unreachable beside a
// second one). Its errors are *Error, or joined *Errors.
func AddApp(file, dir string, data []byte, name string, hosts []string) ([]byte, error) {
	if !isAppName(name) || name == "." || name == ".." {
		return nil, &Error{File: file, Msg: fmt.Sprintf("cannot add app %q: an app's name is letters, digits, '-', '_' and '.', and not \".\" or \"..\"", name)}
	}
	for i, h := range hosts {
		host, problem := checkHost(h)
		if problem != "" {
			return nil, &Error{File: file, Msg: fmt.Sprintf("cannot add app %q: host %d (%q) %s", name, i+1, h, problem)}
		}
		hosts[i] = host
	}
	var out []byte
	if len(bytes.TrimSpace(data)) == 0 {
		out = []byte(ExampleApps(name, hosts))
	} else {
		ix := scan(file, data)
		if len(ix.errs) > 0 {
			return nil, joinErrors(ix.errs)
		}
		if err := checkForm(ix); err != nil {
			return nil, err
		}
		if err := singleForm(ix, dir); err != nil {
			return nil, err
		}
		key := dotted([]string{"apps", name})
		if line, ok := ix.names[key]; ok {
			return nil, &Error{File: file, Line: line, Field: key, Msg: fmt.Sprintf("app %q is already in the file; choose another name, or edit its [%s] tables", name, key)}
		}
		out = append(out, data...)
		if !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
		out = append(out, '\n')
		out = append(out, ExampleApp(name, hosts, len(ix.appNames()) == 0)...)
	}
	if _, err := parse(file, dir, out); err != nil {
		return nil, fmt.Errorf("with [apps.%s] added the file would not load, so it was left as it is; fix the first of these and run the command again:\n%w", quoteKey(name), err)
	}
	return out, nil
}

// singleForm refuses to add an app to a file of the single-app form, and
// says how to convert it.
func singleForm(ix *index, dir string) error {
	var found []string
	line := 0
	for _, t := range singleTables {
		if l, ok := ix.tables[t]; ok {
			found = append(found, "["+t+"]")
			if line == 0 || l < line {
				line = l
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	name, table := "<NAME>", "apps.<NAME>"
	if c, err := parse(ix.file, dir, ix.data); err == nil {
		name, table = c.App.Name, dotted([]string{"apps", c.App.Name})
	}
	return &Error{
		File: ix.file,
		Line: line,
		Msg: fmt.Sprintf("the file is of the single-app form (%s), and apps are added to the multi-app form only. "+
			"To convert it: stop the daemon; move releases/, current, logs/, shared/ and state.db from <data_dir> into <data_dir>/apps/%s/; "+
			"rename [app] to [%[3]s], and [app.env], [app.health], [deploy], [release], [database] to "+
			"[%[3]s.env], [%[3]s.health], [%[3]s.deploy], [%[3]s.release], [%[3]s.database]; "+
			"then run this command again (see \"Several apps\" in docs/config.md). "+
			"cutover does not convert the file itself, since that moves the data of a live app",
			strings.Join(found, ", "), name, table),
		Err: ErrSingleForm,
	}
}
