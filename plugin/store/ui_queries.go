package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// EventPage selects stored events of one run for the log API and the live
// view. The result is always in ascending Seq order.
type EventPage struct {
	RunID uint
	// After keeps only events with Seq > After; 0 keeps all.
	After int64
	// Before, when positive, keeps only events with Seq < Before.
	Before int64
	// Job, when not nil, keeps only the events of that job. A pointer to ""
	// keeps only the run's own events, which belong to no job.
	Job *string
	// Limit is the maximum number of events returned; it must be positive.
	Limit int
	// Tail returns the last Limit matching events instead of the first.
	Tail bool
}

// PageRunEvents returns the events of p.RunID that p selects. It reads the
// chunk indexes (run_id, first_seq) and (run_id, job_name, first_seq) in
// order, so a page costs the same at the start and at the end of a long log.
func (s *Store) PageRunEvents(ctx context.Context, p EventPage) ([]RunEvent, error) {
	events, err := pageEvents(ctx, s.DB, p)
	if err != nil {
		return nil, fmt.Errorf("page events of run %d: %w", p.RunID, err)
	}
	return events, nil
}

// PublicRepo returns the repository owner/name unless it is missing or
// private; found is false in both cases, so callers cannot tell them apart.
func (s *Store) PublicRepo(ctx context.Context, owner, name string) (repo Repo, found bool, err error) {
	err = s.DB.WithContext(ctx).
		Where("full_name = ? AND private = ?", owner+"/"+name, false).
		Take(&repo).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Repo{}, false, nil
	}
	if err != nil {
		return Repo{}, false, fmt.Errorf("read repository %s/%s: %w", owner, name, err)
	}
	return repo, true, nil
}

// PublicRun returns run id with its repository unless the run is missing or
// belongs to a private repository; found is false in both cases.
func (s *Store) PublicRun(ctx context.Context, id uint) (run Run, found bool, err error) {
	err = s.DB.WithContext(ctx).
		Joins("Repo").
		Where("runs.id = ? AND \"Repo\".\"private\" = ?", id, false).
		Take(&run).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("read run %d: %w", id, err)
	}
	return run, true, nil
}

// RunJobsAndSteps returns the jobs of a run in pipeline order and their
// steps ordered by job and step number.
func (s *Store) RunJobsAndSteps(ctx context.Context, runID uint) ([]Job, []Step, error) {
	var jobs []Job
	if err := s.DB.WithContext(ctx).Where("run_id = ?", runID).Order("position, id").Find(&jobs).Error; err != nil {
		return nil, nil, fmt.Errorf("read jobs of run %d: %w", runID, err)
	}
	var steps []Step
	if err := s.DB.WithContext(ctx).Where("run_id = ?", runID).Order("job_name, seq").Find(&steps).Error; err != nil {
		return nil, nil, fmt.Errorf("read steps of run %d: %w", runID, err)
	}
	return jobs, steps, nil
}

// ListPublicRepos returns every repository that is not private, by name.
func (s *Store) ListPublicRepos(ctx context.Context) ([]Repo, error) {
	var repos []Repo
	if err := s.DB.WithContext(ctx).Where("private = ?", false).Order("full_name").Find(&repos).Error; err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return repos, nil
}

// RepoRunFilter selects runs of one repository for [Store.ListRepoRuns].
type RepoRunFilter struct {
	RepoID uint
	// Branch, when set, keeps only runs of that branch.
	Branch string
	// States, when set, keeps only runs in one of these states.
	States []RunState
	// BeforeID, when positive, keeps only runs with a smaller id, for paging.
	BeforeID uint
	// Limit is the maximum number of runs; it must be positive.
	Limit int
}

// ListRepoRuns returns the runs f selects, newest first.
func (s *Store) ListRepoRuns(ctx context.Context, f RepoRunFilter) ([]Run, error) {
	if f.Limit <= 0 {
		return nil, fmt.Errorf("list runs of repository %d: limit %d is not positive", f.RepoID, f.Limit)
	}

	q := s.DB.WithContext(ctx).Where("repo_id = ?", f.RepoID)
	if f.Branch != "" {
		q = q.Where("branch = ?", f.Branch)
	}
	if len(f.States) > 0 {
		q = q.Where("state IN ?", f.States)
	}
	if f.BeforeID > 0 {
		q = q.Where("id < ?", f.BeforeID)
	}

	var runs []Run
	if err := q.Order("id DESC").Limit(f.Limit).Find(&runs).Error; err != nil {
		return nil, fmt.Errorf("list runs of repository %d: %w", f.RepoID, err)
	}
	return runs, nil
}

// RunBranches returns the distinct branch names of a repository's runs.
func (s *Store) RunBranches(ctx context.Context, repoID uint) ([]string, error) {
	var branches []string
	err := s.DB.WithContext(ctx).Model(&Run{}).
		Where("repo_id = ? AND branch <> ''", repoID).
		Distinct().Order("branch").Pluck("branch", &branches).Error
	if err != nil {
		return nil, fmt.Errorf("list branches of repository %d: %w", repoID, err)
	}
	return branches, nil
}
