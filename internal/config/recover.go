package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pelletier/go-toml/v2/unstable"
)

// DataDirOf reads only the data directory out of the config file at path,
// for the commands that reach a running daemon (status, logs, rollback…)
// when the file does not load: the daemon runs with the config it loaded
// before the mistake, and its admin socket is in that data directory.
//
// It is lenient where Load is strict: it looks at the top-level lines one
// at a time (up to the first [table]), parses each with the TOML parser,
// and keeps a data_dir that holds a string; any other line, broken or not,
// is skipped. set reports whether the file sets data_dir; when it does not
// (or that line is broken), dir is the default, ".cutover" beside the file.
// dir is absolute, resolved like Load does. err is set only when the file
// cannot be read.
func DataDirOf(path string) (dir string, set bool, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", false, fmt.Errorf("resolve %s: %w", path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	dd := defaults().DataDir
	for line := range bytes.Lines(data) {
		trimmed := bytes.TrimSpace(line)
		if bytes.HasPrefix(trimmed, []byte("[")) {
			break // data_dir is a top-level key: it comes before every table
		}
		if v, ok := topLevelString(trimmed, "data_dir"); ok {
			dd, set = v, true
		}
	}
	return resolve(filepath.Dir(abs), dd), set, nil
}

// topLevelString parses line as one TOML key = value and returns the value
// when the key is name and the value a string.
func topLevelString(line []byte, name string) (string, bool) {
	var p unstable.Parser
	p.Reset(line)
	if !p.NextExpression() {
		return "", false
	}
	e := p.Expression()
	if e.Kind != unstable.KeyValue {
		return "", false
	}
	it := e.Key()
	if !it.Next() || string(it.Node().Data) != name || it.Next() {
		return "", false
	}
	v := e.Value()
	if v.Kind != unstable.String || p.NextExpression() || p.Error() != nil {
		return "", false
	}
	return string(v.Data), true
}
