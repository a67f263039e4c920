package demoapp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// settings is what the demo app reads from its environment, with the
// optional demo.env file of its working directory layered over it.
type settings struct {
	env        map[string]string // the environment after demo.env; /env serves it
	port       string            // PORT
	version    string            // DEMO_VERSION, else the VERSION file, else "dev"
	bootDelay  time.Duration     // DEMO_BOOT_DELAY
	failBoot   bool              // DEMO_FAIL_BOOT=1
	failHealth bool              // DEMO_FAIL_HEALTH=1
	errorPPM   uint64            // DEMO_ERROR_RATE, in failures per million requests to /
	work       uint64            // DEMO_WORK, rounds of CPU work per request to /
	healthPath string            // DEMO_HEALTH_PATH, default /healthz
	query      string            // DEMO_QUERY (see db.go)
	lockFile   string            // DEMO_LOCK_FILE, "" = none
}

// loadEnv returns environ (os.Environ's form) with the EnvFile of dir
// layered over it.
func loadEnv(environ []string, dir string) (map[string]string, error) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	overrides, err := readEnvFile(filepath.Join(dir, EnvFile))
	if err != nil {
		return nil, err
	}
	for k, v := range overrides {
		env[k] = v
	}
	return env, nil
}

// EnvFile is the optional file in the working directory whose KEY=VALUE
// lines override the environment. A release can carry one, so two
// releases of the demo app behave differently with the same environment.
const EnvFile = "demo.env"

// VersionFile is read for the version when DEMO_VERSION is not set.
const VersionFile = "VERSION"

// loadSettings reads settings from environ (os.Environ's form) and the
// files EnvFile and VersionFile in dir.
func loadSettings(environ []string, dir string) (settings, error) {
	env, err := loadEnv(environ, dir)
	if err != nil {
		return settings{}, err
	}
	s := settings{env: env, query: env["DEMO_QUERY"], port: env["PORT"], version: env["DEMO_VERSION"], healthPath: "/healthz"}
	if s.port == "" {
		return settings{}, errors.New("PORT is not set: the demo app listens on 127.0.0.1:$PORT")
	}
	if s.version == "" {
		b, err := os.ReadFile(filepath.Join(dir, VersionFile))
		switch {
		case err == nil:
			s.version = strings.TrimSpace(string(b))
		case !errors.Is(err, fs.ErrNotExist):
			return settings{}, fmt.Errorf("read version: %w", err)
		}
		if s.version == "" {
			s.version = "dev"
		}
	}
	if v := env["DEMO_BOOT_DELAY"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return settings{}, fmt.Errorf("DEMO_BOOT_DELAY: want a duration such as \"5s\", got %q", v)
		}
		s.bootDelay = d
	}
	s.failBoot = env["DEMO_FAIL_BOOT"] == "1"
	s.failHealth = env["DEMO_FAIL_HEALTH"] == "1"
	if v := env["DEMO_ERROR_RATE"]; v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r >= 0 && r <= 1) {
			return settings{}, fmt.Errorf("DEMO_ERROR_RATE: want a share from 0 to 1 such as 0.1, got %q", v)
		}
		s.errorPPM = uint64(math.Round(r * 1e6))
	}
	if v := env["DEMO_WORK"]; v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > 1e10 {
			return settings{}, fmt.Errorf("DEMO_WORK: want a number of rounds from 0 to 10000000000 such as 1000000 (about 1ms of CPU), got %q", v)
		}
		s.work = n
	}
	if v := env["DEMO_HEALTH_PATH"]; v != "" {
		if !strings.HasPrefix(v, "/") {
			return settings{}, fmt.Errorf("DEMO_HEALTH_PATH: want a path starting with \"/\", got %q", v)
		}
		s.healthPath = v
	}
	s.lockFile = env["DEMO_LOCK_FILE"]
	return s, nil
}

// readEnvFile parses KEY=VALUE lines; blank lines and lines starting with
// # are skipped, and a value in matching single or double quotes is
// unquoted. A missing file is no error.
func readEnvFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", EnvFile, err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(strings.TrimPrefix(k, "export "))
		if !ok || k == "" {
			return nil, fmt.Errorf("%s:%d: want KEY=VALUE, got %q", EnvFile, n, line)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", EnvFile, err)
	}
	return out, nil
}
