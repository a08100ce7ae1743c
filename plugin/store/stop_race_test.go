package store

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
)

// checkStopWhileTaken races a worker taking a queued run against a newer
// push that replaces it. Whichever wins, the older run must end replaced.
// On PostgreSQL, StopRuns read the run as queued, the take then committed
// it as active, and StopRuns' update "WHERE state = 'queued'" matched
// nothing: the older run stayed active next to its replacement.
func checkStopWhileTaken(t *testing.T, s *Store) {
	repo := Repo{FullName: "acme/app", Owner: "acme", Name: "app"}
	if err := UpsertRepo(s.DB, &repo); err != nil {
		t.Fatal(err)
	}

	for i := range 60 {
		ref := fmt.Sprintf("refs/heads/b%d", i)
		older := Run{RepoID: repo.ID, Ref: ref, SHA: fmt.Sprintf("%040d", 2*i)}
		if err := CreateRun(s.DB, &older); err != nil {
			t.Fatal(err)
		}

		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := TakeRun(s.DB, s.Dialect, "w", time.Now()); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			err := s.DB.Transaction(func(tx *gorm.DB) error {
				newer := Run{RepoID: repo.ID, Ref: ref, SHA: fmt.Sprintf("%040d", 2*i+1)}
				if err := CreateRun(tx, &newer); err != nil {
					return err
				}
				_, err := StopRuns(tx, repo.ID, ref, newer.ID, RunReplaced, &newer.ID, "replaced", time.Now())
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()

		got, err := GetRun(t.Context(), s.DB, older.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != RunReplaced {
			t.Fatalf("round %d: older run = %s, want replaced", i, got.State)
		}
		// Leave no queued run behind for the next round's take.
		if err := s.DB.Model(&Run{}).Where("state = ?", RunQueued).Update("state", RunCanceled).Error; err != nil {
			t.Fatal(err)
		}
	}
}

func TestStopWhileTakenSQLite(t *testing.T) {
	checkStopWhileTaken(t, openTestStore(t, filepath.Join(t.TempDir(), "octavo.db")))
}

func TestStopWhileTakenPostgres(t *testing.T) {
	checkStopWhileTaken(t, openPostgresStore(t))
}
