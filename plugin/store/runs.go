package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// CreateRun inserts a queued run inside tx.
func CreateRun(tx *gorm.DB, r *Run) error {
	r.State = RunQueued
	if err := tx.Create(r).Error; err != nil {
		return fmt.Errorf("insert run for %s at %s: %w", r.Ref, r.SHA, err)
	}
	return nil
}

// StoppedRun is a run ended by [IntakeStmts.StopRuns] with the state it had before.
type StoppedRun struct {
	Run
	PrevState RunState
}

// TakeRun marks the oldest queued run active for worker and returns it, or
// returns nil when the queue is empty. The select and the update are one
// statement, so two workers, in this process or another replica, never
// take the same run. dialect is [Store.Dialect].
func TakeRun(tx *gorm.DB, dialect, worker string, now time.Time) (*Run, error) {
	// FOR UPDATE SKIP LOCKED lets PostgreSQL replicas take different runs
	// at once instead of waiting on each other's row lock. SQLite has one
	// writer at a time, so the plain subquery is already atomic there.
	lock := ""
	if dialect == "postgres" {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	q := `UPDATE runs SET state = ?, attempt = attempt + 1, worker = ?, started_at = ?, updated_at = ?
WHERE id = (SELECT id FROM runs WHERE state = ? ORDER BY id LIMIT 1` + lock + `) AND state = ?
RETURNING *`

	var runs []Run
	err := tx.Raw(q, RunActive, worker, now, now, RunQueued, RunQueued).Scan(&runs).Error
	if err != nil {
		return nil, fmt.Errorf("take queued run: %w", err)
	}
	if len(runs) == 0 {
		return nil, nil
	}
	return &runs[0], nil
}

// FinishRun moves an active run to its final state and reports whether it
// did: false means another party (a replacing push, a cancel) ended the run
// first, and its state stays.
func FinishRun(tx *gorm.DB, r *Run, state RunState, kind FailureKind, reason string, now time.Time) (bool, error) {
	res := tx.Model(&Run{}).Where("id = ? AND state = ?", r.ID, RunActive).Updates(map[string]any{
		"state":        state,
		"failure_kind": kind,
		"error":        reason,
		"finished_at":  now,
		"updated_at":   now,
	})
	if res.Error != nil {
		return false, fmt.Errorf("finish run %d: %w", r.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return false, nil
	}
	r.State, r.FailureKind, r.Error, r.FinishedAt, r.UpdatedAt = state, kind, reason, &now, now
	return true, nil
}

// SkipRun ends a queued or active run whose commit has no pipeline file and
// reports whether it did.
func SkipRun(tx *gorm.DB, r *Run, reason string, now time.Time) (bool, error) {
	res := tx.Model(&Run{}).Where("id = ? AND state IN ?", r.ID, []RunState{RunQueued, RunActive}).Updates(map[string]any{
		"state":       RunSkipped,
		"error":       reason,
		"finished_at": now,
		"updated_at":  now,
	})
	if res.Error != nil {
		return false, fmt.Errorf("skip run %d: %w", r.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return false, nil
	}
	r.State, r.Error, r.FinishedAt, r.UpdatedAt = RunSkipped, reason, &now, now
	return true, nil
}

// TouchRun reports whether r is still in state, taking the row's write
// lock in tx so a status written in the same transaction cannot race
// another change of the run.
func TouchRun(tx *gorm.DB, r *Run, state RunState, now time.Time) (bool, error) {
	res := tx.Model(&Run{}).Where("id = ? AND state = ?", r.ID, state).Update("updated_at", now)
	if res.Error != nil {
		return false, fmt.Errorf("touch run %d: %w", r.ID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// RequeueRun puts an active run back in the queue, keeping its attempt
// count, and reports whether it was still active.
func RequeueRun(tx *gorm.DB, r *Run, now time.Time) (bool, error) {
	res := tx.Model(&Run{}).Where("id = ? AND state = ?", r.ID, RunActive).Updates(map[string]any{
		"state":      RunQueued,
		"worker":     "",
		"last_seq":   0,
		"updated_at": now,
	})
	if res.Error != nil {
		return false, fmt.Errorf("requeue run %d: %w", r.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return false, nil
	}
	r.State, r.Worker, r.LastSeq, r.UpdatedAt = RunQueued, "", 0, now
	return true, nil
}

// ClearRunRecords deletes the events, jobs and steps of a run, so a
// re-queued run starts again from sequence number 1.
func ClearRunRecords(tx *gorm.DB, runID uint) error {
	for _, m := range []any{&RunEventChunk{}, &Step{}, &Job{}} {
		if err := tx.Where("run_id = ?", runID).Delete(m).Error; err != nil {
			return fmt.Errorf("clear records of run %d: %w", runID, err)
		}
	}
	return nil
}

// ActiveRuns returns the runs in state active, oldest first.
func ActiveRuns(ctx context.Context, db *gorm.DB) ([]Run, error) {
	var runs []Run
	if err := db.WithContext(ctx).Where("state = ?", RunActive).Order("id").Find(&runs).Error; err != nil {
		return nil, fmt.Errorf("list active runs: %w", err)
	}
	return runs, nil
}

// GetRun returns the run with its repository, or [ErrNotFound].
func GetRun(ctx context.Context, db *gorm.DB, id uint) (*Run, error) {
	var r Run
	err := db.WithContext(ctx).Preload("Repo").Take(&r, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get run %d: %w", id, err)
	}
	return &r, nil
}

// RunFilter selects runs for [ListRuns]. Zero fields do not filter. Limit
// is clamped to 1..100 (default 20); BeforeID pages to older runs.
type RunFilter struct {
	Repo     string // owner/name
	Ref      string // full ref, or a branch name
	BeforeID uint
	Limit    int
}

// ListRuns returns runs newest first.
func ListRuns(ctx context.Context, db *gorm.DB, f RunFilter) ([]Run, error) {
	q := db.WithContext(ctx).Preload("Repo").Order("runs.id DESC")
	if f.Repo != "" {
		q = q.Joins("JOIN repos ON repos.id = runs.repo_id").Where("repos.full_name = ?", f.Repo)
	}
	if f.Ref != "" {
		q = q.Where("runs.ref = ? OR runs.branch = ?", f.Ref, f.Ref)
	}
	if f.BeforeID > 0 {
		q = q.Where("runs.id < ?", f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)

	var runs []Run
	if err := q.Limit(limit).Find(&runs).Error; err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

// CountRunsByState returns the number of runs in each state.
func CountRunsByState(ctx context.Context, db *gorm.DB) (map[RunState]int64, error) {
	var rows []struct {
		State RunState
		N     int64
	}
	err := db.WithContext(ctx).Model(&Run{}).Select("state, count(*) AS n").Group("state").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count runs by state: %w", err)
	}
	out := make(map[RunState]int64, len(rows))
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out, nil
}

// NewestRunSHA returns the sha of the newest run of repoID and ref, or ""
// when the ref has none.
func NewestRunSHA(ctx context.Context, db *gorm.DB, repoID uint, ref string) (string, error) {
	var shas []string
	err := db.WithContext(ctx).Model(&Run{}).Where("repo_id = ? AND ref = ?", repoID, ref).
		Order("id DESC").Limit(1).Pluck("sha", &shas).Error
	if err != nil {
		return "", fmt.Errorf("find newest run of %s: %w", ref, err)
	}
	if len(shas) == 0 {
		return "", nil
	}
	return shas[0], nil
}

// ReposWithRuns returns every repository that has at least one run.
func ReposWithRuns(ctx context.Context, db *gorm.DB) ([]Repo, error) {
	var repos []Repo
	err := db.WithContext(ctx).Where("id IN (SELECT DISTINCT repo_id FROM runs)").Order("id").Find(&repos).Error
	if err != nil {
		return nil, fmt.Errorf("list repositories with runs: %w", err)
	}
	return repos, nil
}
