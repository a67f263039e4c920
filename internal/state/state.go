// Package state is the daemon's durable memory: releases, which one is live,
// the instances it runs (pid and process start time, so a restarted daemon
// can re-adopt them), and the history of deploys with their steps. It is a
// SQLite database in WAL mode (modernc.org/sqlite, no cgo); every change is
// one transaction, so a crash leaves either the old or the new state.
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned when a release or deploy does not exist.
var ErrNotFound = errors.New("not found")

// Store is an open state database. It is safe for concurrent use.
type Store struct {
	db *sql.DB

	mu    sync.Mutex
	stmts map[string]*sql.Stmt // by query text, prepared on first use
}

const schema = `
CREATE TABLE IF NOT EXISTS releases (
	id          TEXT PRIMARY KEY,
	created_at  INTEGER NOT NULL,
	source      TEXT NOT NULL,
	dir         TEXT NOT NULL,
	status      TEXT NOT NULL,
	config_json TEXT NOT NULL DEFAULT '',
	meta_json   TEXT NOT NULL DEFAULT '',
	live_since  INTEGER NOT NULL DEFAULT 0,
	retired_at  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS instances (
	id         TEXT PRIMARY KEY,
	release    TEXT NOT NULL,
	pid        INTEGER NOT NULL,
	start_time INTEGER NOT NULL,
	port       INTEGER NOT NULL,
	state      TEXT NOT NULL,
	restarts   INTEGER NOT NULL DEFAULT 0,
	last_exit  TEXT NOT NULL DEFAULT '',
	updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deploys (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	kind         TEXT NOT NULL,
	release      TEXT NOT NULL,
	from_release TEXT NOT NULL,
	started_at   INTEGER NOT NULL,
	finished_at  INTEGER NOT NULL DEFAULT 0,
	state        TEXT NOT NULL,
	error        TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS deploy_steps (
	deploy_id   INTEGER NOT NULL,
	seq         INTEGER NOT NULL,
	step        TEXT NOT NULL,
	status      TEXT NOT NULL,
	started_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL DEFAULT 0,
	detail      TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (deploy_id, seq)
);
CREATE INDEX IF NOT EXISTS releases_by_status ON releases (status, retired_at);
CREATE TABLE IF NOT EXISTS kv (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`

// Open opens (creating if needed) the state database at path. A new
// database file is created 0600 before SQLite opens it, because it holds
// the releases' environments in plain text; SQLite gives its -wal and -shm
// files the mode of the database file.
func Open(path string) (*Store, error) {
	if path != memoryPath {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open state %s: %w", path, err)
		}
		f.Close() // nothing was written: closing cannot lose data
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	// One writer at a time keeps SQLite from returning SQLITE_BUSY under
	// concurrent updates from supervisor callbacks.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: create schema: %w", path, err)
	}
	return &Store{db: db, stmts: map[string]*sql.Stmt{}}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	clear(s.stmts)
	s.mu.Unlock()
	return s.db.Close()
}

// prepared returns the statement of query, prepared on first use: SQLite
// then parses each query once, not at every call, which makes a small
// write about three times cheaper. It must not be called while the caller
// holds the connection (open rows, a transaction): with one connection,
// preparing would wait for it.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	st, ok := s.stmts[query]
	s.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if had, ok := s.stmts[query]; ok { // prepared meanwhile by another call
		st.Close()
		return had, nil
	}
	s.stmts[query] = st
	return st, nil
}

// exec runs query as a prepared statement.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// query runs query as a prepared statement.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// queryRow runs query as a prepared statement; an error preparing it comes
// out of Scan, as any other.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return s.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// Get returns the value stored under key, or "" when there is none.
func (s *Store) Get(ctx context.Context, key string) (string, error) {
	var v string
	err := s.queryRow(ctx, `SELECT value FROM kv WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	return v, nil
}

// Set stores value under key.
func (s *Store) Set(ctx context.Context, key, value string) error {
	_, err := s.exec(ctx, `INSERT INTO kv(key, value) VALUES(?, ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}
