package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNotFound is wrapped by the error Find returns when there is no config
// file to use.
var ErrNotFound = errors.New("config file not found")

// DefaultFile is the config file Find looks for in the working directory.
const DefaultFile = "cutover.toml"

// EnvVar names the environment variable Find consults after the flag.
const EnvVar = "CUTOVER_CONFIG"

// Find returns the config file to use: flag when it is not empty, else
// $CUTOVER_CONFIG when set, else ./cutover.toml when it exists. Otherwise
// it returns an *Error wrapping ErrNotFound that says where it looked.
// Find does not check that a named file exists; Load reports that.
func Find(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if env := os.Getenv(EnvVar); env != "" {
		return env, nil
	}
	_, err := os.Stat(DefaultFile)
	if err == nil {
		return DefaultFile, nil
	}
	where := DefaultFile
	if wd, werr := os.Getwd(); werr == nil {
		where = filepath.Join(wd, DefaultFile)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", &Error{File: where, Msg: fmt.Sprintf("cannot use config file: %v", unwrapPath(err)), Err: err}
	}
	return "", &Error{
		File: where,
		Msg:  fmt.Sprintf("no config file: --config was not given, $%s is not set, and this file does not exist; run `cutover init` to create one", EnvVar),
		Err:  ErrNotFound,
	}
}
