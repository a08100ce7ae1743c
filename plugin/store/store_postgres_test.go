package store

import (
	"testing"

	"github.com/octavo-ci/octavo/plugin/store/storetest"
)

func TestMigrationsOnPostgres(t *testing.T) {
	dsn := storetest.Postgres(t)

	s, err := Open(t.Context(), Options{DSN: dsn})
	if err != nil {
		t.Fatalf("Open(postgres): %v", err)
	}
	if s.Dialect != "postgres" {
		t.Errorf("Dialect = %q, want postgres", s.Dialect)
	}
	_ = s.Close()

	// A second start finds every migration applied and changes nothing.
	again, err := Open(t.Context(), Options{DSN: dsn})
	if err != nil {
		t.Fatalf("second Open(postgres): %v", err)
	}
	defer again.Close()

	repo := Repo{FullName: "alice/app", Owner: "alice", Name: "app"}
	if err := again.DB.Create(&repo).Error; err != nil {
		t.Fatalf("create repo: %v", err)
	}
	if err := again.DB.Create(&Run{RepoID: repo.ID + 1000, Ref: "refs/heads/main", SHA: "abc", State: RunQueued}).Error; err == nil {
		t.Error("creating a run for a missing repo succeeded on PostgreSQL, want a foreign key error")
	}
}
