package config

import (
	"strings"
)

// Example returns a complete, commented cutover.toml for an app called
// name, as `cutover init` writes it: every section and field with its unit
// and default, optional ones commented out. Load accepts it as is.
// Characters not allowed in app.name are replaced by '-'; an empty name
// becomes "app".
func Example(name string) string {
	return strings.ReplaceAll(exampleTemplate, "{{name}}", sanitizeName(name))
}

// sanitizeName makes name a valid app.name.
func sanitizeName(name string) string {
	b := []byte(strings.TrimSpace(name))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "app"
	}
	return string(b)
}

const exampleTemplate = `# cutover.toml — how cutover deploys {{name}}.
# Durations are strings such as "250ms", "10s", "1m30s" (units ns, us, ms,
# s, m, h). Commented-out keys show their default.
# Reference: docs/config.md.

# Where releases/, logs/, state.db and cutover.sock live. Relative to this
# file's directory. Default ".cutover".
# data_dir = ".cutover"

[app]
# Identifies the app in status and logs: letters, digits, '-', '_', '.'.
# Required.
name = "{{name}}"

# Starts one instance, with /bin/sh -c in the release directory. It must
# listen on 127.0.0.1:$PORT (cutover sets PORT for each instance).
# Required.
command = "./bin/server --port $PORT"

# How many instances serve. 1 to 64. Default 2.
# instances = 2

# Signal asking an instance to stop gracefully: TERM, INT, QUIT, HUP, USR1
# or USR2. Default "TERM".
# stop_signal = "TERM"

# Time an instance has to exit after stop_signal before its process group
# is killed. Default "10s".
# stop_timeout = "10s"

# Cap of each instance log file, in bytes, before it is rotated once.
# At least 4096. Default 10485760 (10 MiB).
# log_max_size = 10485760

# Added to the environment of every instance. PORT cannot be set here.
[app.env]
# RAILS_ENV = "production"

# HTTP health check of instances: GET path; 2xx or 3xx is healthy.
[app.health]
# Path requested on each instance. Default "/".
# path = "/"

# Time between two checks of one instance. Default "1s".
# interval = "1s"

# Time one check may take. Default "2s".
# timeout = "2s"

# Consecutive passes that make an instance healthy. At least 1. Default 2.
# healthy_after = 2

# Consecutive failures that take an instance out of rotation. At least 1.
# Default 3.
# unhealthy_after = 3

# Time a new instance has to become healthy during a deploy before the
# deploy aborts. Default "60s".
# boot_timeout = "60s"

[proxy]
# Address the proxy serves on, host:port. Default "127.0.0.1:8080".
# listen = "127.0.0.1:8080"

# Time a request waits for a healthy instance when there is none, before a
# 503. Default "30s".
# hold_timeout = "30s"

# Time in-flight requests, streams and websockets of a retiring release
# have to finish before they are cut. Default "30s".
# drain_timeout = "30s"

# Time a client may take to send request headers. Default "10s".
# read_header_timeout = "10s"

# Idle time after which a client keep-alive connection is closed.
# Default "120s".
# idle_timeout = "120s"

# Time an instance may take to start answering before a 504. Default "60s".
# response_header_timeout = "60s"

[deploy]
# How traffic moves to a new release: "bluegreen" (one atomic switch).
# Default "bluegreen".
# strategy = "bluegreen"

[release]
# Releases kept on disk; the live one and the rollback target are never
# pruned. At least 2. Default 5.
# keep = 5

[database]
# Database migrations run against: "postgres://user:pass@host/db" or
# "sqlite:///path/to/file.db". ${VAR} is taken from the environment.
# Default empty: no migrations.
# url = "${DATABASE_URL}"

# Migrations directory, relative to the release directory.
# Default "migrations".
# dir = "migrations"

# Table recording applied migrations. Default "cutover_migrations".
# table = "cutover_migrations"

# Migration file layout: "auto", "native", "golang-migrate", "goose" or
# "flyway". Default "auto" (detected from the file names).
# format = "auto"

# When contract migrations run: "auto" once the old release is stopped, or
# "manual" with ` + "`cutover migrate contract`" + `. Default "manual".
# contract = "manual"

# Postgres lock_timeout of migration statements. Default "5s".
# lock_timeout = "5s"

# Postgres statement_timeout of migration statements; "0s" means none.
# Default "0s".
# statement_timeout = "0s"

# Time a runner waits for another runner's lock. Default "60s".
# migrate_lock_timeout = "60s"
`
