package migrate

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChecksumChangeAndRepair(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dir := writeFiles(t, t.TempDir(), manyMigrations(2))
		r := open(t, b.url)
		if _, err := r.Up(ctx, load(t, dir), Expand, nil); err != nil {
			t.Fatal(err)
		}
		writeFiles(t, dir, map[string]string{"2-t2.up.sql": "CREATE TABLE t2 (x integer); -- reformatted\nINSERT INTO runs (id) VALUES (2);"})
		set := load(t, dir)
		_, err := r.Up(ctx, set, Expand, nil)
		var ce *ChecksumError
		if !errors.As(err, &ce) || ce.ID != "2" || !strings.Contains(err.Error(), "2-t2.up.sql was changed") || !strings.Contains(err.Error(), "repair 2") {
			t.Fatalf("Up after edit: got %v, want a checksum error naming 2-t2.up.sql and repair", err)
		}
		st, err := r.Status(ctx, set)
		if err != nil || st[1].State != StateChanged {
			t.Fatalf("Status: got %+v, %v; want migration 2 changed", st, err)
		}
		done, err := r.Repair(ctx, set, RepairOptions{})
		if err != nil || len(done) != 1 || done[0].ID != "2" || !strings.Contains(done[0].Did, "accepted the new checksum") {
			t.Fatalf("Repair: got %+v, %v; want the checksum of 2 accepted", done, err)
		}
		if _, err := r.Up(ctx, set, Expand, nil); err != nil {
			t.Errorf("Up after repair: %v", err)
		}
		id := Version("2")
		if _, err := r.Repair(ctx, set, RepairOptions{ID: &id}); err == nil || !strings.Contains(err.Error(), "nothing to repair") {
			t.Errorf("Repair of a healthy migration: got %v, want nothing to repair", err)
		}
	})
}

func TestRepairPartial(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"1-a.up.sql":   "-- cutover:no-transaction\nCREATE TABLE a (x integer);\nINSERT INTO a SELECT x FROM seed;\n",
		"1-a.down.sql": "DROP TABLE a;",
	})
	set := load(t, dir)
	r := open(t, b.url)
	if _, err := r.Up(ctx, set, Expand, nil); err == nil {
		t.Fatal("Up: got no error, want the failing INSERT")
	}
	if _, err := r.Repair(ctx, set, RepairOptions{}); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.Status(ctx, set); st[0].State != StatePartial {
		t.Errorf("Repair without id changed a partial row: state %q", st[0].State)
	}
	id := Version("1")
	done, err := r.Repair(ctx, set, RepairOptions{ID: &id})
	if err != nil || len(done) != 1 || !strings.Contains(done[0].Did, "statements 1 to 1 had run") {
		t.Fatalf("Repair 1: got %+v, %v; want the row forgotten with a warning about statement 1", done, err)
	}
	if st, _ := r.Status(ctx, set); st[0].State != StatePending {
		t.Errorf("after repair: state %q, want pending", st[0].State)
	}
	// Undo what ran, as the message says, and run it whole.
	if _, err := r.conn.ExecContext(ctx, "DROP TABLE a; CREATE TABLE seed (x integer)"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Up(ctx, set, Expand, nil); err != nil {
		t.Fatalf("Up after repair: %v", err)
	}
}

func TestAdoptGolangMigrate(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dir := writeFiles(t, t.TempDir(), formatFiles[FormatGolangMigrate])
		set := load(t, dir)
		r := open(t, b.url)
		// What golang-migrate left: migrations 1 and 2 applied.
		for _, q := range []string{
			"CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)",
			"INSERT INTO schema_migrations VALUES (2, true)",
			set.Migrations[0].Up.SQL, set.Migrations[1].Up.SQL,
		} {
			if _, err := r.conn.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		_, err := r.Adopt(ctx, set, FromGolangMigrate, "")
		if err == nil || !strings.Contains(err.Error(), "version 2 is marked dirty") {
			t.Fatalf("Adopt of a dirty table: got %v, want a refusal", err)
		}
		if ids := appliedIDs(t, r); len(ids) != 0 {
			t.Errorf("refused adopt recorded %v", ids)
		}
		if _, err := r.conn.ExecContext(ctx, "UPDATE schema_migrations SET dirty = false"); err != nil {
			t.Fatal(err)
		}
		got, err := r.Adopt(ctx, set, FromGolangMigrate, "")
		if err != nil || len(got) != 2 {
			t.Fatalf("Adopt: got %v, %v; want 2 migrations", got, err)
		}
		if diff := cmp.Diff([]Version{"1", "2"}, appliedIDs(t, r)); diff != "" {
			t.Errorf("applied after adopt (-want +got):\n%s", diff)
		}
		// Nothing runs twice: the pending one is only migration 3.
		p, err := r.Pending(ctx, set, Contract)
		if err != nil || len(p) != 1 || p[0].ID != "3" {
			t.Errorf("Pending after adopt: got %v, %v; want [3]", p, err)
		}
		if again, err := r.Adopt(ctx, set, FromGolangMigrate, ""); err != nil || len(again) != 0 {
			t.Errorf("second Adopt: got %v, %v; want nothing new", again, err)
		}
	})
}

func TestAdoptGoose(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	set := load(t, writeFiles(t, t.TempDir(), formatFiles[FormatGoose]))
	r := open(t, b.url)
	for _, q := range []string{
		"CREATE TABLE goose_db_version (id integer PRIMARY KEY, version_id bigint, is_applied boolean, tstamp text)",
		"INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (20240101000001, true), (20240101000002, true), (20240101000002, false)",
	} {
		if _, err := r.conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	got, err := r.Adopt(ctx, set, FromGoose, "")
	if err != nil || len(got) != 1 || got[0].ID != "20240101000001" {
		t.Fatalf("Adopt goose: got %v, %v; want only 20240101000001 (2 was rolled back)", got, err)
	}
}

// TestAdoptFlywayDotted: Flyway's history records dotted versions as
// written; they are adopted, and repeatable migrations (version NULL there)
// are left to run.
func TestAdoptFlywayDotted(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	set := load(t, writeFiles(t, t.TempDir(), flywayFiles))
	r := open(t, b.url)
	for _, q := range []string{
		"CREATE TABLE flyway_schema_history (installed_rank integer PRIMARY KEY, version text, description text, success boolean)",
		"INSERT INTO flyway_schema_history VALUES (1, '1', 'users', true), (2, '1.9', 'email', true), (3, '1.10', 'locale', true), (4, NULL, 'users view', true)",
	} {
		if _, err := r.conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	got, err := r.Adopt(ctx, set, FromFlyway, "")
	if err != nil {
		t.Fatalf("Adopt flyway: %v", err)
	}
	var ids []Version
	for _, m := range got {
		ids = append(ids, m.ID)
	}
	if diff := cmp.Diff([]Version{"1", "1.9", "1.10"}, ids); diff != "" {
		t.Errorf("adopted (-want +got):\n%s", diff)
	}
	p, err := r.Pending(ctx, set, Expand)
	if err != nil || len(p) != 2 || p[0].ID != "2.0.1" || p[1].ID != "R__users_view" {
		t.Errorf("pending after adopt: got %v, %v; want 2.0.1 and R__users_view", p, err)
	}
}
