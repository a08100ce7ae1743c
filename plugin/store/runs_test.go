package store

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/octavo-ci/octavo/plugin/store/storetest"
)

func seedRuns(t *testing.T, s *Store, n int, ref string) (Repo, []Run) {
	t.Helper()
	repo := Repo{FullName: "acme/app", Owner: "acme", Name: "app"}
	if err := UpsertRepo(s.DB, &repo); err != nil {
		t.Fatal(err)
	}
	runs := make([]Run, n)
	for i := range runs {
		runs[i] = Run{RepoID: repo.ID, Ref: ref, SHA: fmt.Sprintf("%040d", i)}
		if err := CreateRun(s.DB, &runs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return repo, runs
}

// checkTakeRace starts many workers that take runs until the queue is empty
// and checks that every run was taken exactly once, oldest first per worker.
func checkTakeRace(t *testing.T, s *Store) {
	const runs, workers = 200, 16
	seedRuns(t, s, runs, "refs/heads/main")

	var (
		mu    sync.Mutex
		taken = map[uint]int{}
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := uint(0)
			for range runs + 1 {
				var r *Run
				err := s.DB.WithContext(t.Context()).Transaction(func(tx *gorm.DB) error {
					var err error
					r, err = TakeRun(tx, s.Dialect, fmt.Sprintf("w%d", w), time.Now())
					return err
				})
				if err != nil {
					t.Errorf("TakeRun: %v", err)
					return
				}
				if r == nil {
					return
				}
				if r.ID <= last {
					t.Errorf("worker %d took run %d after %d, want oldest first", w, r.ID, last)
				}
				last = r.ID
				if r.State != RunActive || r.Attempt != 1 {
					t.Errorf("taken run %d has state %s attempt %d, want active 1", r.ID, r.State, r.Attempt)
				}
				mu.Lock()
				taken[r.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	if len(taken) != runs {
		t.Errorf("%d distinct runs taken, want %d", len(taken), runs)
	}
	for id, n := range taken {
		if n != 1 {
			t.Errorf("run %d taken %d times, want once", id, n)
		}
	}
}

func TestTakeRunRaceSQLite(t *testing.T) {
	checkTakeRace(t, openTestStore(t, filepath.Join(t.TempDir(), "octavo.db")))
}

func TestTakeRunRacePostgres(t *testing.T) {
	checkTakeRace(t, openPostgresStore(t))
}

// openPostgresStore opens a store on a throwaway PostgreSQL server.
func openPostgresStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), Options{DSN: storetest.Postgres(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
