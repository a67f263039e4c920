# cutover — build and test.
GO ?= go
# cutover ships as one static, pure-Go binary: SQLite is modernc.org/sqlite and
# the Postgres parser of the migration lint runs as WebAssembly without cgo.
export CGO_ENABLED ?= 0

.PHONY: build test test-short bench demo

build:
	$(GO) build -o bin/cutover ./cmd/cutover

# The whole suite: unit tests, real PostgreSQL clusters started by the tests,
# and end-to-end deploys of the real binary under load.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# Unit tests only (skips the end-to-end deploys under load).
test-short:
	$(GO) test -count=1 -short ./...

bench:
	bash bench/run

demo:
	$(GO) run ./cmd/cutover demo
