package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Load reads the config file at path, checks every key against the file
// format, fills defaults, resolves data_dir against the file's directory,
// and validates every field.
//
// Every problem is reported as an *Error naming the file, the line and the
// key. When there are several, they are joined with errors.Join, in line
// order; errors.As finds the first.
func Load(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("resolve path: %v", err), Err: err}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		msg := fmt.Sprintf("cannot read config file: %v", unwrapPath(err))
		if errors.Is(err, os.ErrNotExist) {
			msg = "config file does not exist; create one with `cutover init`"
		}
		return nil, &Error{File: path, Msg: msg, Err: err}
	}
	c, err := parse(path, filepath.Dir(abs), data)
	if err != nil {
		return nil, err
	}
	c.Path = abs
	return c, nil
}

// unwrapPath drops the *os.PathError wrapper, whose path the Error already
// names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parse does Load's work on data already read. file names the file in
// errors; dir is the absolute directory data_dir is relative to.
func parse(file, dir string, data []byte) (*Config, error) {
	ix := scan(file, data)
	if len(ix.errs) > 0 {
		return nil, joinErrors(ix.errs)
	}
	if err := checkForm(ix); err != nil {
		return nil, err
	}
	c := defaults()
	if names := ix.appNames(); names != nil {
		// The multi-app form: each app starts from the defaults of the
		// single-app form's tables, which stay zero. go-toml decodes into
		// the entries already in the map, so keys the file leaves out keep
		// them.
		c.App, c.Deploy, c.Release, c.Database = App{}, Deploy{}, Release{}, Database{}
		c.Apps = make(map[string]*AppEntry, len(names))
		for _, name := range names {
			d := defaults()
			c.Apps[name] = &AppEntry{App: d.App, Deploy: d.Deploy, Release: d.Release, Database: d.Database}
		}
	}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, decodeError(file, err)
	}
	v := validator{ix: ix}
	v.config(c)
	if len(v.errs) > 0 {
		return nil, joinErrors(v.errs)
	}
	c.DataDir = resolve(dir, c.DataDir)
	if c.TLS.CARoot != "" {
		c.TLS.CARoot = resolve(dir, c.TLS.CARoot)
	}
	resolveLog(dir, &c.Log)
	resolveApp(dir, &c.App, &c.Release)
	for name, e := range c.Apps {
		e.Name = name
		resolveApp(dir, &e.App, &e.Release)
	}
	return c, nil
}

// resolveApp makes an app's paths absolute against dir: env_file, and a
// release.repo that is a local path.
func resolveApp(dir string, a *App, r *Release) {
	if a.EnvFile != "" {
		a.EnvFile = resolve(dir, a.EnvFile)
	}
	if a.TLSCert != "" {
		a.TLSCert = resolve(dir, a.TLSCert)
	}
	if a.TLSKey != "" {
		a.TLSKey = resolve(dir, a.TLSKey)
	}
	if r.Repo != "" && isLocalPath(r.Repo) {
		r.Repo = resolve(dir, r.Repo)
	}
}

// defaults returns a Config holding every default. Decoding over it
// replaces only the keys the file sets, so an explicit zero stays zero and
// is judged by validation rather than silently defaulted.
func defaults() *Config {
	return &Config{
		DataDir: ".cutover",
		App: App{
			Instances:        2,
			StopSignal:       "TERM",
			StopTimeout:      Duration{10 * time.Second},
			LogMaxSize:       10 << 20,
			LogsMaxTotal:     1 << 30,
			BootNice:         10,
			RedirectHTTPS:    true,
			UpstreamProtocol: UpstreamHTTP1,
			Health: Health{
				Path:           "/",
				Interval:       Duration{time.Second},
				Timeout:        Duration{2 * time.Second},
				HealthyAfter:   2,
				UnhealthyAfter: 3,
				RestartAfter:   10,
				BootTimeout:    Duration{60 * time.Second},
			},
		},
		Proxy: Proxy{
			Listen:                "127.0.0.1:8080",
			HoldTimeout:           Duration{30 * time.Second},
			DrainTimeout:          Duration{30 * time.Second},
			DrainPace:             Duration{5 * time.Second},
			ReadHeaderTimeout:     Duration{10 * time.Second},
			IdleTimeout:           Duration{120 * time.Second},
			ResponseHeaderTimeout: Duration{60 * time.Second},
			ClientBodyTimeout:     Duration{60 * time.Second},
			RequestBuffering:      true,
			RequestBufferMemory:   64 << 10,
			RequestBufferMax:      10 << 20,
			MaxRequestLine:        8 << 10,
			MaxHeaderBytes:        64 << 10,
			HTTP2Server:           "cutover",
			Sticky:                true,
			Cookie:                "cutover_release",
			VersionHeader:         "X-Cutover-Release",
		},
		Deploy: Deploy{
			Strategy:         "bluegreen",
			Batch:            int64(1),
			Steps:            []string{"5%", "25%", "50%"},
			StepTime:         Duration{30 * time.Second},
			MaxErrorRate:     0.05,
			Confidence:       0.99,
			MinLatencyEffect: 0.2,
			MinErrorEffect:   0.01,
			MinRequests:      20,
			HookTimeout:      Duration{5 * time.Minute},
			PreviewTimeout:   Duration{30 * time.Minute},
			Breaking:         "refuse",
		},
		Release: Release{Keep: 5},
		TLS:     defaultTLS(),
		Log:     Log{AccessFormat: "json"},
		Database: Database{
			Dir:                "migrations",
			Table:              "cutover_migrations",
			Format:             "auto",
			Contract:           "manual",
			LockTimeout:        Duration{5 * time.Second},
			MigrateLockTimeout: Duration{60 * time.Second},
			URLEnv:             "DATABASE_URL",
			CommandTimeout:     Duration{30 * time.Minute},
			Preview:            "on",
			PreviewData:        []string{},
		},
	}
}

// decodeError converts an error of go-toml's decoder into *Errors. The
// index has already caught unknown keys and wrong types, so what is left
// here is rarer: duplicate keys, integers out of range.
func decodeError(file string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var errs []*Error
		for _, de := range strict.Errors {
			errs = append(errs, fromDecodeError(file, &de))
		}
		if len(errs) > 0 {
			return joinErrors(errs)
		}
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		return fromDecodeError(file, de)
	}
	return &Error{File: file, Msg: err.Error(), Err: err}
}

func fromDecodeError(file string, de *toml.DecodeError) *Error {
	line, _ := de.Position()
	return &Error{
		File:  file,
		Line:  line,
		Field: strings.Join(de.Key(), "."),
		Msg:   strings.TrimPrefix(de.Error(), "toml: "),
	}
}

// joinErrors returns the only error, or all of them in line order joined.
func joinErrors(errs []*Error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	slices.SortStableFunc(errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

// resolve makes p absolute against dir.
func resolve(dir, p string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p)
}

// isLocalPath reports whether a git repository reference is a filesystem
// path rather than a URL (scheme://… or scp-like user@host:path).
func isLocalPath(repo string) bool {
	if strings.Contains(repo, "://") {
		return false
	}
	if i := strings.IndexByte(repo, ':'); i > 0 && !strings.ContainsRune(repo[:i], '/') {
		return false // host:path
	}
	return true
}
