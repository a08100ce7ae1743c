package queue

import (
	"context"

	"gorm.io/gorm"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/workspace"
)

// prepareLoop fetches the mirror for each new run and looks up the
// pipeline file at its commit. So the forge gets a pending status for a
// queued run before a worker is free, and a commit without a pipeline ends
// as skipped without taking a worker.
func (q *Queue) prepareLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-q.prepare:
			q.prepareRun(ctx, id)
		}
	}
}

// prepareQueued hands every queued run to the preparer, for runs queued
// before this process started.
func (q *Queue) prepareQueued(ctx context.Context) {
	var ids []uint
	err := q.db.WithContext(ctx).Model(&store.Run{}).Where("state = ?", store.RunQueued).Order("id").Pluck("id", &ids).Error
	if err != nil {
		q.log.ErrorContext(ctx, "list queued runs", "err", err)
		return
	}
	for _, id := range ids {
		select {
		case q.prepare <- id:
		default:
			return
		}
	}
}

func (q *Queue) prepareRun(ctx context.Context, id uint) {
	r, err := store.GetRun(ctx, q.db, id)
	if err != nil {
		q.log.ErrorContext(ctx, "read run to prepare", "run_id", id, "err", err)
		return
	}
	if r.State != store.RunQueued {
		return
	}
	log := q.log.With("run_id", r.ID, "repo", r.Repo.FullName, "sha", r.SHA)

	has, err := q.opts.Workspaces.Lookup(ctx, r.Repo.FullName, r.Repo.CloneURL, r.SHA, workspace.PipelineFile)
	if err != nil {
		// The worker fetches again and fails the run as clone-failed if
		// the forge is still unreachable then.
		log.WarnContext(ctx, "fetch mirror and look up pipeline file", "err", err)
		return
	}

	if !has {
		q.skip(ctx, r)
		return
	}
	err = q.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		queued, err := store.TouchRun(tx, r, store.RunQueued, q.now())
		if err != nil || !queued {
			return err
		}
		return q.notifyRun(tx, r)
	})
	if err != nil {
		log.ErrorContext(ctx, "announce queued run", "err", err)
	}
}

// skip ends a run whose commit has no pipeline file. It gets no commit
// status, so the run observer is not called.
func (q *Queue) skip(ctx context.Context, r *store.Run) {
	ctx, cancel := cleanupCtx(ctx)
	defer cancel()

	ok, err := store.SkipRun(q.db.WithContext(ctx), r, "no "+workspace.PipelineFile+" at this commit", q.now())
	if err != nil {
		q.log.ErrorContext(ctx, "skip run without pipeline", "run_id", r.ID, "err", err)
		return
	}
	if ok {
		q.log.InfoContext(ctx, "run skipped, no pipeline file", "run_id", r.ID, "repo", r.Repo.FullName, "sha", r.SHA)
		q.opts.Metrics.runFinished(string(store.RunSkipped), "")
		q.publishRun(*r)
	}
}
