package state

import (
	"context"
	"fmt"
	"time"
)

// Instance is a running instance as recorded, enough for a restarted daemon
// to find it again: its pid and the kernel's start time of that pid (a
// recycled pid has another start time).
type Instance struct {
	ID        string
	Release   string
	PID       int
	StartTime uint64 // /proc/<pid>/stat field 22, clock ticks since boot
	Port      int
	State     string
	Restarts  int
	LastExit  string
	UpdatedAt time.Time
}

// PutInstance inserts or replaces an instance.
func (s *Store) PutInstance(ctx context.Context, in Instance) error {
	_, err := s.exec(ctx, `INSERT INTO instances
		(id, release, pid, start_time, port, state, restarts, last_exit, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET release = excluded.release, pid = excluded.pid,
			start_time = excluded.start_time, port = excluded.port, state = excluded.state,
			restarts = excluded.restarts, last_exit = excluded.last_exit, updated_at = excluded.updated_at`,
		in.ID, in.Release, in.PID, int64(in.StartTime), in.Port, in.State, in.Restarts, in.LastExit, unixMilli(in.UpdatedAt))
	if err != nil {
		return fmt.Errorf("record instance %s: %w", in.ID, err)
	}
	return nil
}

// DeleteInstance forgets an instance (it was stopped).
func (s *Store) DeleteInstance(ctx context.Context, id string) error {
	if _, err := s.exec(ctx, `DELETE FROM instances WHERE id = ?`, id); err != nil {
		return fmt.Errorf("forget instance %s: %w", id, err)
	}
	return nil
}

// Instances returns every recorded instance.
func (s *Store) Instances(ctx context.Context) ([]Instance, error) {
	rows, err := s.query(ctx, `SELECT id, release, pid, start_time, port, state, restarts, last_exit, updated_at
		FROM instances ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		var in Instance
		var st, upd int64
		if err := rows.Scan(&in.ID, &in.Release, &in.PID, &st, &in.Port, &in.State, &in.Restarts, &in.LastExit, &upd); err != nil {
			return nil, fmt.Errorf("list instances: %w", err)
		}
		in.StartTime, in.UpdatedAt = uint64(st), fromMilli(upd)
		out = append(out, in)
	}
	return out, rows.Err()
}
