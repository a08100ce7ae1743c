package store

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

func openTestStore(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Options{DSN: path})
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestOpenSQLiteSettings(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "sub", "octavo.db"))

	var mode string
	if err := s.DB.Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}

	var fk int
	if err := s.DB.Raw("PRAGMA foreign_keys").Scan(&fk).Error; err != nil {
		t.Fatal(err)
	}
	if fk != 1 {
		t.Errorf("foreign_keys = %d, want 1", fk)
	}
}

func TestMigrationsAreAppliedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "octavo.db")
	first := openTestStore(t, path)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := openTestStore(t, path)
	var n int64
	if err := second.DB.Model(&schemaMigration{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != int64(len(migrations)) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(migrations))
	}
	for _, table := range []string{"repos", "deliveries", "runs", "jobs", "steps", "run_event_chunks", "commit_statuses"} {
		if !second.DB.Migrator().HasTable(table) {
			t.Errorf("table %s is missing", table)
		}
	}
}

func TestForeignKeysAreEnforced(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "octavo.db"))
	err := s.DB.Create(&Run{RepoID: 999, Ref: "refs/heads/main", SHA: "abc", State: RunQueued}).Error
	if err == nil {
		t.Fatal("creating a run for a missing repo succeeded, want a foreign key error")
	}
}

func TestUnknownMigrationIsRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "octavo.db")
	s := openTestStore(t, path)
	if err := s.DB.Create(&schemaMigration{ID: "9999_future"}).Error; err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	if _, err := Open(t.Context(), Options{DSN: path}); err == nil {
		t.Fatal("Open succeeded on a database from a newer version, want an error")
	}
}

// TestOpenFailureLogsNothingUnreadable guards the start-up log: GORM logged
// a refused PostgreSQL connection as "!ERROR:json: unsupported type", while
// Open's own error already says what failed.
func TestOpenFailureLogsNothingUnreadable(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))

	_, err := Open(t.Context(), Options{
		DSN:    "host=127.0.0.1 port=1 user=octavo dbname=octavo sslmode=disable connect_timeout=1",
		Logger: log,
	})
	if err == nil {
		t.Fatal("Open of a refused PostgreSQL address succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Open error = %q, want it to name the refused connection", err)
	}
	if strings.Contains(buf.String(), "!ERROR") {
		t.Errorf("log = %q, want no unencodable attribute", buf.String())
	}
}
