package config

import "fmt"

// Error is a problem in a config file: where it is and what is allowed.
// Load returns one (or several joined with errors.Join) for every problem it
// finds; use errors.As to get at it.
type Error struct {
	File  string // path of the config file as given
	Line  int    // 1-based line of the key; 0 when unknown
	Field string // dotted key, e.g. "app.health.interval"; empty for syntax errors
	Msg   string // what is wrong and what is allowed
	Err   error  // underlying cause, if any (for errors.Is); may be nil
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
}

// Unwrap returns the underlying cause, such as fs.ErrNotExist or
// ErrNotFound, or nil.
func (e *Error) Unwrap() error { return e.Err }
