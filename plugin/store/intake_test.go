package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStopQueryUsesRefStateIndex checks that finding the runs a push
// replaces reads only the ref's queued and active runs, not its history.
func TestStopQueryUsesRefStateIndex(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "octavo.db"))

	var plan []struct {
		Detail string
	}
	err := s.DB.Raw("EXPLAIN QUERY PLAN "+findStoppableQuery, 1, "refs/heads/main", RunQueued, RunActive, 0).Scan(&plan).Error
	if err != nil {
		t.Fatal(err)
	}
	var details []string
	for _, p := range plan {
		details = append(details, p.Detail)
	}
	got := strings.Join(details, "; ")
	if !strings.Contains(got, "idx_runs_repo_ref_state") {
		t.Errorf("query plan = %q, want it to use idx_runs_repo_ref_state", got)
	}
}

// TestIntakeStmtsRecordAndReplace runs the intake statements in one
// transaction: a delivery id stored once, a new run, and the older queued
// and active runs of the ref replaced, oldest first.
func TestIntakeStmtsRecordAndReplace(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "octavo.db"))
	repo, old := seedRuns(t, s, 2, "refs/heads/main")
	other := Run{RepoID: repo.ID, Ref: "refs/heads/dev", SHA: "d"}
	if err := CreateRun(s.DB, &other); err != nil {
		t.Fatal(err)
	}
	if _, err := TakeRun(s.DB, s.Dialect, "w", time.Now()); err != nil {
		t.Fatal(err)
	}
	p, err := s.PrepareIntake(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })

	now := time.Now().UTC()
	tx, err := s.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	stx, err := tx.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stx.Rollback() }()

	d := &Delivery{DeliveryID: "d-1", Event: "push", RepoFullName: repo.FullName, CreatedAt: now}
	if isNew, err := p.InsertDelivery(t.Context(), stx, d); err != nil || !isNew || d.ID == 0 {
		t.Fatalf("first InsertDelivery = %v, %v with id %d, want new with an id", isNew, err, d.ID)
	}
	again := &Delivery{DeliveryID: "d-1", Event: "push", CreatedAt: now}
	if isNew, err := p.InsertDelivery(t.Context(), stx, again); err != nil || isNew {
		t.Fatalf("second InsertDelivery = %v, %v, want a duplicate", isNew, err)
	}

	r := &Run{RepoID: repo.ID, Ref: "refs/heads/main", Branch: "main", SHA: "c", DeliveryID: "d-1", CreatedAt: now, UpdatedAt: now}
	if err := p.CreateRun(t.Context(), stx, r); err != nil || r.ID == 0 {
		t.Fatalf("CreateRun = %v with id %d, want an id", err, r.ID)
	}
	stopped, err := p.StopRuns(t.Context(), stx, repo.ID, r.Ref, r.ID, RunReplaced, &r.ID, "replaced", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(stopped) != 2 || stopped[0].ID != old[0].ID || stopped[1].ID != old[1].ID {
		t.Fatalf("stopped %v, want runs %d and %d", stopped, old[0].ID, old[1].ID)
	}
	if stopped[0].PrevState != RunActive || stopped[1].PrevState != RunQueued {
		t.Errorf("previous states = %s, %s, want active, queued", stopped[0].PrevState, stopped[1].PrevState)
	}
	if stopped[0].SHA != old[0].SHA || stopped[0].State != RunReplaced || stopped[0].FinishedAt == nil {
		t.Errorf("stopped run = %+v, want sha %q, replaced and finished", stopped[0].Run, old[0].SHA)
	}
	if err := p.SetDeliveryResult(t.Context(), stx, d.ID, "queued run"); err != nil {
		t.Fatal(err)
	}
	if err := stx.Commit(); err != nil {
		t.Fatal(err)
	}

	got, err := FindDelivery(t.Context(), s.DB, "d-1")
	if err != nil || got.Result != "queued run" {
		t.Errorf("FindDelivery = %+v, %v, want result %q", got, err, "queued run")
	}
	for _, id := range []uint{old[0].ID, old[1].ID} {
		run, err := GetRun(t.Context(), s.DB, id)
		if err != nil {
			t.Fatal(err)
		}
		if run.State != RunReplaced || run.ReplacedBy == nil || *run.ReplacedBy != r.ID {
			t.Errorf("run %d = %s replaced_by %v, want replaced by %d", id, run.State, run.ReplacedBy, r.ID)
		}
	}
	for _, id := range []uint{r.ID, other.ID} {
		run, err := GetRun(t.Context(), s.DB, id)
		if err != nil {
			t.Fatal(err)
		}
		if run.State != RunQueued {
			t.Errorf("run %d = %s, want queued", id, run.State)
		}
	}
}

// checkIntakeStopWhileTaken races a worker taking a queued run against a
// newer push that replaces it; whichever wins, the older run must end
// replaced. On PostgreSQL the lookup read the run as queued, the take then
// committed it as active, and the update conditioned on the queued state
// matched nothing, so the older run stayed active next to its replacement.
func checkIntakeStopWhileTaken(t *testing.T, s *Store) {
	repo := Repo{FullName: "acme/app", Owner: "acme", Name: "app"}
	if err := UpsertRepo(s.DB, &repo); err != nil {
		t.Fatal(err)
	}
	p, err := s.PrepareIntake(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	sqlDB, err := s.DB.DB()
	if err != nil {
		t.Fatal(err)
	}

	for i := range 40 {
		ref := fmt.Sprintf("refs/heads/b%d", i)
		older := Run{RepoID: repo.ID, Ref: ref, SHA: fmt.Sprintf("%040d", 2*i)}
		if err := CreateRun(s.DB, &older); err != nil {
			t.Fatal(err)
		}

		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := TakeRun(s.DB, s.Dialect, "w", time.Now()); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			tx, err := sqlDB.BeginTx(t.Context(), nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer func() { _ = tx.Rollback() }()
			now := time.Now().UTC()
			newer := Run{RepoID: repo.ID, Ref: ref, SHA: fmt.Sprintf("%040d", 2*i+1), CreatedAt: now, UpdatedAt: now}
			if err := p.CreateRun(t.Context(), tx, &newer); err != nil {
				t.Error(err)
				return
			}
			if _, err := p.StopRuns(t.Context(), tx, repo.ID, ref, newer.ID, RunReplaced, &newer.ID, "replaced", now); err != nil {
				t.Error(err)
				return
			}
			if err := tx.Commit(); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()

		got, err := GetRun(t.Context(), s.DB, older.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != RunReplaced {
			t.Fatalf("round %d: older run = %s, want replaced", i, got.State)
		}
		if err := s.DB.Model(&Run{}).Where("state = ?", RunQueued).Update("state", RunCanceled).Error; err != nil {
			t.Fatal(err)
		}
	}
}

func TestIntakeStopWhileTakenSQLite(t *testing.T) {
	checkIntakeStopWhileTaken(t, openTestStore(t, filepath.Join(t.TempDir(), "octavo.db")))
}

func TestIntakeStopWhileTakenPostgres(t *testing.T) {
	checkIntakeStopWhileTaken(t, openPostgresStore(t))
}
