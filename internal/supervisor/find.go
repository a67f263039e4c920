package supervisor

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// Found is a process found by Find: a process group leader, with its
// start time (see ProcStartTime), working directory and environment.
type Found struct {
	PID       int
	StartTime uint64
	// Cwd is the link /proc/<pid>/cwd; the kernel appends " (deleted)"
	// when the directory was removed.
	Cwd string
	Env map[string]string
}

// Find scans /proc for live process group leaders whose environment has
// key set to value, as every instance of an app has (CUTOVER_APP): the
// way to find the instances a daemon started when nothing recorded them.
// Processes that cannot be read (gone meanwhile, another user's) are
// skipped.
func Find(key, value string) ([]Found, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	want := []byte(key + "=" + value)
	var out []Found
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := "/proc/" + ent.Name()
		raw, err := os.ReadFile(dir + "/environ")
		if err != nil || !hasEntry(raw, want) {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.pgrp != pid || st.state == 'Z' || st.state == 'X' {
			continue // children of an instance share its environment
		}
		cwd, _ := os.Readlink(dir + "/cwd") //nolint:errcheck // "" when unreadable: the caller matches on the environment
		out = append(out, Found{PID: pid, StartTime: st.startTime, Cwd: cwd, Env: parseEnviron(raw)})
	}
	return out, nil
}

func hasEntry(environ, entry []byte) bool {
	for _, kv := range bytes.Split(environ, []byte{0}) {
		if bytes.Equal(kv, entry) {
			return true
		}
	}
	return false
}

// ProcEnv returns the environment process pid was started with, from
// /proc/<pid>/environ: what an adopted instance was given.
func ProcEnv(pid int) (map[string]string, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return nil, fmt.Errorf("read the environment of pid %d: %w", pid, err)
	}
	return parseEnviron(raw), nil
}

// parseEnviron splits the NUL-separated KEY=value entries of an environ
// file.
func parseEnviron(raw []byte) map[string]string {
	env := map[string]string{}
	for _, kv := range bytes.Split(raw, []byte{0}) {
		if k, v, ok := bytes.Cut(kv, []byte{'='}); ok {
			env[string(k)] = string(v)
		}
	}
	return env
}
