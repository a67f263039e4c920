package config

import (
	"strconv"
	"strings"
)

// Example returns a complete, commented cutover.toml for an app called
// name, as `cutover init` writes it: every section and field with its unit
// and default, optional ones commented out. Load accepts it as is.
// Characters not allowed in app.name are replaced by '-'; an empty name
// becomes "app".
func Example(name string) string {
	return strings.NewReplacer(
		"{{name}}", sanitizeName(name),
		"{{app}}", "app",
		"{{root}}", "",
		"{{data}}", "<data_dir>",
	).Replace(exampleHead + exampleAppHead + exampleApp + exampleProxy + exampleTLS + exampleObserve + exampleRest)
}

// ExampleApps returns a complete, commented cutover.toml of the multi-app
// form holding one app, as `cutover init --app NAME` writes it: the
// top-level keys and [proxy], then ExampleApp(name, hosts, true). Load
// accepts it as is.
func ExampleApps(name string, hosts []string) string {
	return exampleMultiHead + exampleProxy + exampleTLS + exampleObserve + ExampleApp(name, hosts, true)
}

// ExampleApp returns the [apps.NAME] tables of one app, commented like
// Example, as `cutover init --app NAME` appends them to a multi-app file.
// Characters not allowed in a name are replaced by '-'. hosts (which
// should be valid) are written as given. With none, def writes default =
// true and shows hosts commented out; otherwise hosts is set to
// ["NAME.example.com"], a placeholder for the names the app answers to,
// since with several apps an app with no hosts that is not the default is
// unreachable.
func ExampleApp(name string, hosts []string, def bool) string {
	name = sanitizeName(name)
	if name == "." || name == ".." {
		name = strings.Repeat("-", len(name))
	}
	table := dotted([]string{"apps", name})
	list := `["` + name + `.example.com"]`
	if len(hosts) > 0 {
		q := make([]string, len(hosts))
		for i, h := range hosts {
			q[i] = strconv.Quote(h)
		}
		list = "[" + strings.Join(q, ", ") + "]"
	}
	hostsLine, defLine := "hosts = "+list, "# default = false"
	if def {
		defLine = "default = true"
		if len(hosts) == 0 {
			hostsLine = "# hosts = " + list
		}
	}
	return strings.NewReplacer(
		"{{hosts}}", hostsLine,
		"{{default}}", defLine,
		"{{name}}", name,
		"{{app}}", table,
		"{{root}}", table+".",
		"{{data}}", "<data_dir>/apps/"+name,
	).Replace(exampleMultiAppHead + exampleApp + exampleRest)
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

const exampleHead = `# cutover.toml — how cutover deploys {{name}}.
# Durations are strings such as "250ms", "10s", "1m30s" (units ns, us, ms,
# s, m, h). Commented-out keys show their default; those whose default is
# empty show an example instead.
# Reference: docs/config.md.

# Where releases/, logs/, state.db and cutover.sock live. Relative to this
# file's directory. Default ".cutover".
# data_dir = ".cutover"

`

const exampleAppHead = `[app]
# Identifies the app in status and logs: letters, digits, '-', '_', '.'.
# Required.
name = "{{name}}"

`

// exampleApp is the app's keys, [app.env] and [app.health], of both forms.
const exampleApp = `# Starts one instance, with /bin/sh -c in the release directory, as in a
# Procfile ("cd web && RAILS_ENV=production bin/web" works); its last
# command is exec'd so the app is the instance's process. It must
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

# File of KEY=VALUE lines (# comments, optional "export ", optional quotes)
# added to the environment of every instance, after [{{app}}.env]. Relative to
# this file's directory. Read at each deploy and kept with the release, so a
# rollback gets the environment its release had. Default empty: none.
# env_file = ".env"

# Cap of each instance log file, in bytes, held as the file is written:
# before a write that would pass it, the file is rotated once (to .1).
# At least 4096. Default 10485760 (10 MiB).
# log_max_size = 10485760

# Cap of all the logs, in bytes, in
# {{data}}/logs: past it the least recently written
# files (rotated ones, logs of stopped instances) are removed, never
# those running instances write to. Checked every 30 seconds and
# after each deploy. At least twice log_max_size. Default 1073741824 (1 GiB),
# or twice log_max_size if that is more.
# logs_max_total = 1073741824

# How much lower than the daemon's the CPU priority (nice) of a starting
# instance is, until its first passing health check: the boot of a new
# release then takes only the CPU the serving release leaves. 0 to 19; 0
# boots at the daemon's priority. Needs a daemon allowed to raise the
# priority back (root, CAP_SYS_NICE or RLIMIT_NICE). Default 10.
# boot_nice = 10

# The app's certificate (PEM chain, leaf first) and private key, served on
# proxy.tls_listen for the app's host names (for every name when the app
# has none). Relative to this file. Read again within 5 seconds of a change
# on disk, without a restart. Both or neither. Default empty. See
# docs/tls.md.
# tls_cert = "certs/{{name}}.crt"
# tls_key = "certs/{{name}}.key"

# With proxy.tls_listen: answer plain HTTP requests for a host with a
# certificate with 308 to https (but ACME's /.well-known/acme-challenge/).
# Default true.
# redirect_https = true

# Strict-Transport-Security sent over TLS: browsers then use https only,
# for max-age seconds (start small). Default empty (no header).
# hsts = "max-age=300"

# How the proxy speaks to the instances: "http1" (HTTP/1.1 keep-alive) or
# "h2c" (HTTP/2 without TLS, for a gRPC server, which speaks HTTP/2 only;
# gRPC clients then come over proxy.tls_listen). Default "http1".
# upstream_protocol = "http1"

# Added to the environment of every instance. PORT cannot be set here;
# $PORT in a value is replaced by the instance's port.
[{{app}}.env]
# RAILS_ENV = "production"

# Health check of instances: GET path; 2xx is healthy (a redirect fails).
# Or the gRPC health protocol: see grpc below.
[{{app}}.health]
# Path requested on each instance. Default "/".
# path = "/"

# Check with the gRPC health protocol (grpc.health.v1.Health/Check;
# SERVING passes) instead of a GET of path. Needs upstream_protocol = "h2c".
# Default false.
# grpc = false

# Service the gRPC check asks about; "" is the server as a whole. Only
# with grpc. Default "".
# grpc_service = ""

# Time between two checks of one instance. Default "1s".
# interval = "1s"

# Time one check may take. Default "2s".
# timeout = "2s"

# Consecutive passes that make an instance healthy. At least 1. Default 2.
# healthy_after = 2

# Consecutive failures that take an instance out of rotation. At least 1.
# Default 3.
# unhealthy_after = 3

# Consecutive failures after which an instance that was healthy once is
# killed (its whole process group) and restarted: it hung. 0 or at least
# unhealthy_after; 0 never restarts. Default 10 (about 20s at the
# defaults, each failing check taking up to timeout).
# restart_after = 10

# Time a new instance has to become healthy during a deploy before the
# deploy aborts; also the time an instance restarted after a crash or a
# hang has before it is killed and restarted again. Default "60s".
# boot_timeout = "60s"

# A TCP port besides HTTP (one [[{{app}}.tcp]] table per port): the daemon
# listens on it and forwards each connection to an instance of the live
# release, which listens on 127.0.0.1:$<port_env>. At a deploy, new
# connections go to the new release at the switch; open ones get
# drain_timeout before they are closed. Default none.
# [[{{app}}.tcp]]
# Address the daemon listens on, host:port. Required.
# listen = "0.0.0.0:2222"
# Variable giving each instance its own port for it. Required.
# port_env = "NAILGUN_PORT"
# "first": every connection to the first healthy instance, the next when
# it is down (a primary and its backups); or "round-robin". Default "first".
# balance = "first"
# "tcp": healthy when a connect to its port succeeds (every
# health.interval); "http": when it is in rotation for HTTP. Default "tcp".
# health = "tcp"
# Send the client's address first, as a PROXY protocol "v1" or "v2"
# header; "" sends none. Default "".
# proxy_protocol = ""
# Time connections to a retiring release may go on after the switch
# before they are closed, and connections open through the old daemon
# after "cutover upgrade". Default proxy.drain_timeout.
# drain_timeout = "30s"
# Time a connect to one instance may take before the next is tried.
# Default "2s".
# connect_timeout = "2s"

`

const exampleProxy = `[proxy]
# Address the proxy serves on, host:port. Default "127.0.0.1:8080".
# listen = "127.0.0.1:8080"

# Time a request waits for a healthy instance when there is none, before a
# 503. Default "30s".
# hold_timeout = "30s"

# Time in-flight requests, streams and websockets of a retiring release
# have to finish before they are cut. Default "30s".
# drain_timeout = "30s"

# What is still open at drain_timeout (websockets, streams, long polls) is
# closed one after the other, spread evenly over this time, so that its
# clients do not all reconnect in the same second; "0s" closes it all at
# once. Default "5s".
# drain_pace = "5s"

# Time a client may take to send request headers. Default "10s".
# read_header_timeout = "10s"

# Idle time after which a client keep-alive connection is closed (also
# on the [metrics] and [dashboard] listeners). Default "120s".
# idle_timeout = "120s"

# Time an instance may take to start answering before a 504. Default "60s".
# response_header_timeout = "60s"

# Longest a client may go without sending anything of a request body it
# is sending (time between two reads). After it the client gets 408 and
# a request the app already received is aborted, so the app sees its
# body fail. Default "60s", as nginx's client_body_timeout.
# client_body_timeout = "60s"

# Read a request body with a Content-Length of at most request_buffer_max
# bytes whole from the client before the request goes to an instance (as
# nginx does), so a slow client never holds an app connection or worker.
# A chunked body always streams. Default true.
# request_buffering = true

# Bytes of a buffered body kept in memory; the rest goes to a temporary
# file in <data_dir>/bodies, unlinked as soon as it is made (nothing is
# left behind). Default 65536 (64 KiB).
# request_buffer_memory = 65536

# Largest body buffered, in bytes; a larger one streams to the app as it
# arrives. Default 10485760 (10 MiB).
# request_buffer_max = 10485760

# Largest request body accepted, in bytes; a larger one gets 413. 0 = no
# limit. Default 0, so apps taking large uploads keep working (nginx's
# client_max_body_size is 1m).
# max_request_body = 0

# The proxies in front of cutover (a load balancer, a CDN), as networks or
# single addresses: from them, the X-Forwarded-For (appended to),
# X-Forwarded-Proto, X-Forwarded-Host, Forwarded and X-Real-IP they send
# reach the app. From any other peer these fields are dropped and set from
# the connection. Default [] (trust no one).
# trusted_proxies = ["10.0.0.0/8", "192.0.2.10"]

# Longest request line (method, target, version), in bytes; a longer one
# gets 414 URI Too Long. 256 to max_header_bytes. Default 8192 (8 KiB).
# max_request_line = 8192

# Largest request head (request line and header fields), in bytes; a
# larger one gets 431 Request Header Fields Too Large. Each client
# connection may hold this much while its head arrives. 1024 to 1048576.
# Default 65536 (64 KiB).
# max_header_bytes = 65536

# A second address, host:port, that serves only a release in preview
# (` + "`cutover deploy --preview`" + `), for a sanity test before any user sees it.
# Must differ from listen; refused when the file has several apps.
# Default empty: preview by header or cookie only.
# preview_listen = "127.0.0.1:8081"

# The TLS listener, host:port: HTTPS with HTTP/2 and HTTP/1.1 for the
# hosts with a certificate (app tls_cert/tls_key). Held across upgrades
# like listen. Must differ from listen and preview_listen. Default empty:
# no TLS.
# tls_listen = "0.0.0.0:443"

# The port clients reach the TLS listener on, written in redirects to
# https (left out when 443). Set it when a firewall forwards 443 to
# another port of tls_listen. Default 0: the port of tls_listen.
# https_port = 443

# The server of the TLS listener's HTTP/2 connections: "cutover"
# (cutover's own) or "go" (Go's net/http, kept as a fallback).
# Default "cutover".
# http2_server = "cutover"

# While two releases serve, keep each client on the release that first
# served it (version cookie), so pages, assets and forms stay consistent.
# true or false. Default true.
# sticky = true

# Name of the version cookie. Letters, digits, '-' and '_'. With
# [apps.NAME] tables each app's is this name + "_" + NAME ('.' written
# '_'). Default "cutover_release".
# cookie = "cutover_release"

# Request header with which a client asks to stay on a release while two
# serve; every response carries it with the release that answered (its id:
# the deploy's time and the source's name). "" turns it off. A release in
# preview is reached only with its preview token, never by its name.
# Default "X-Cutover-Release".
# version_header = "X-Cutover-Release"

`

// exampleObserve is the [metrics] and [log] tables of both forms.
const exampleObserve = `[metrics]
# Address on which /metrics serves Prometheus's text format, host:port.
# Keep it on loopback: /metrics asks for no token. Default "" (none).
# listen = "127.0.0.1:9100"

[dashboard]
# Address of the live dashboard, host:port. Default "" (the first
# ` + "`cutover dashboard`" + ` opens it on an ephemeral loopback port).
# listen = "127.0.0.1:9200"

# Token that logs a browser in (open http://LISTEN/?token=...), 16
# characters or more (openssl rand -hex 16). Required when listen is not a
# loopback address. Default "" (logins only through ` + "`cutover dashboard`" + `).
# token = "5f0e7d9b2c4a61e8d3b07a9c1e2f4d6b"

[log]
# The access log, one line per request: "stdout", or a file (relative to
# this file's directory) opened again on SIGUSR1 to the daemon, for
# logrotate. Default "" (none).
# access = "/var/log/cutover/access.log"

# Its format: "json" or "combined" (nginx's). Default "json".
# access_format = "json"

`

// exampleRest is the deploy, release and database tables of both forms.
const exampleRest = `[{{root}}deploy]
# How traffic moves to a new release: "bluegreen" (boot all new instances,
# then one atomic switch), "rolling" (batch instances at a time), "canary"
# (growing shares of traffic, each step judged against the old release) or
# "stop-first" (for an app that cannot run two copies at once: requests are
# held while the old release stops and the new one boots; watch must be
# "0s"). Default "bluegreen".
# strategy = "bluegreen"

# rolling: instances moved per step, a count from 1 to 64 or a percentage
# of instances such as "50%". Default 1.
# batch = 1

# canary: the new release's share of traffic at each step, increasing,
# each from "1%" to "99%"; 100% follows the last step. Default
# ["5%", "25%", "50%"].
# steps = ["5%", "25%", "50%"]

# canary: how long each step lasts before it is judged. Default "30s".
# step_time = "30s"

# After the switch, keep the old release running this long and switch back
# at once if the new one breaks the bounds below. "0s" turns it off.
# Default "0s".
# watch = "0s"

# The canary judge (docs/observability.md, "The canary judge"): a step
# goes back to the old release only when a test says, at this confidence,
# that the new release is worse by at least the effects below. Above 0.5
# and below 1. Default 0.99.
# confidence = 0.99

# Smallest slowdown worth going back for, as a share of the old release's
# latency: 0.2 fails a step when the new release's typical request is at
# least 20% slower. 0 turns the latency test off. Default 0.2.
# min_latency_effect = 0.2

# Smallest rise of the error rate (5xx or connection errors) over the old
# release's worth going back for, in points: 0.01 is one percentage point.
# 0 turns the test off. Default 0.01.
# min_error_effect = 0.01

# Highest share of failed requests the new release may show whatever the
# old one's, in a canary step or the watch (where it is the only bound),
# 0 to 1; it fails when its error rate is above this at the confidence
# above. 0 turns it off. Default 0.05.
# max_error_rate = 0.05

# Requests a release must have served in a window before it is judged; a
# step with fewer waits up to another step_time. At least 1. Default 20.
# min_requests = 20

# Shell command run in the new release's directory once it is healthy and
# before traffic moves, with CUTOVER_RELEASE, CUTOVER_RELEASE_DIR and
# CUTOVER_PREVIOUS_RELEASE set. A failure aborts the deploy.
# Default empty: none.
# before_switch = "./bin/smoke-test"

# Shell command run the same way once traffic has moved; a failure is
# reported but does not undo the deploy. Default empty: none.
# after_switch = "./bin/notify-deployed"

# Time each hook may take before it is killed and counts as failed.
# Default "5m".
# hook_timeout = "5m"

# Time a preview waits for ` + "`cutover promote` or `cutover abort`" + ` before it is
# aborted by itself. Default "30m".
# preview_timeout = "30m"

# When the schema preview finds a change that breaks the live release:
# "refuse" (exit 1, nothing changed) or "hold" (requests wait while the change
# runs and the new release boots). Default "refuse".
# breaking = "refuse"

[{{root}}release]
# Releases kept on disk; the live one and the rollback target are never
# pruned. At least 2. Default 5.
# keep = 5

# Git repository that ` + "`cutover deploy --git REF`" + ` checks out: a path relative to
# this file's directory, or any URL git understands. Default empty.
# repo = "git@github.com:example/{{name}}.git"

# Shell command run in a fresh checkout before the build; a failure stops
# the deploy before anything touches traffic. Default empty: no tests.
# test = "make test"

# Shell command run in the fresh checkout after the tests. Default empty.
# build = "make release"

# Paths, relative to the release directory, kept in
# {{data}}/shared/ and linked into every release, so files
# users upload survive deploys and rollbacks. None may be inside another. Default [].
# shared = ["uploads", "log"]

[{{root}}database]
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

# The app's own migration command (the release phase), run once per deploy
# in the new release's directory, before boot, under the migration lock:
# "bin/rails db:migrate", "./miniflux -migrate". Default empty.
# migrate_command = ""

# Run like migrate_command once the old release is gone, when contract
# migrations run. Default empty.
# contract_command = ""

# Variable carrying the database URL to those commands. Default "DATABASE_URL".
# url_env = "DATABASE_URL"

# Time limit of each run of those commands. Default "30m".
# command_timeout = "30m"

# Schema preview: run the migrations on a scratch copy first and refuse
# changes that break the live release: "on" or "off". Default "on".
# preview = "on"

# Tables whose rows the scratch copy gets besides the schema (an unknown
# migration tool's version table). Default [].
# preview_data = []
`

const exampleMultiHead = `# cutover.toml — how cutover deploys its apps: one [apps.NAME] table (with
# its own health, env, deploy, release and database tables) per app, all
# served on proxy.listen and routed by the request's Host.
# Durations are strings such as "250ms", "10s", "1m30s" (units ns, us, ms,
# s, m, h). Commented-out keys show their default; those whose default is
# empty show an example instead. Add an app with ` + "`cutover init --app NAME`" + `.
# Reference: docs/config.md.

# Where cutover.sock lives, and each app's releases/, logs/, state.db… in
# apps/NAME/. Relative to this file's directory. Default ".cutover".
# data_dir = ".cutover"

`

const exampleMultiAppHead = `[{{app}}]
# The app's name is its table's: it names the app in status, in logs and
# after --app. Its releases, logs and state live in
# {{data}}.

# Host names whose requests go to this app, without a port: exact names
# ("shop.example.com") or wildcards ("*.shop.example.com": every name
# under shop.example.com, not shop.example.com itself). An exact name wins
# over a wildcard. No host may belong to two apps. Default [].
{{hosts}}

# Take the requests for hosts no app lists, which otherwise get 404. One
# app at most; with several apps, one with no hosts must set it.
# Default false.
{{default}}

`
