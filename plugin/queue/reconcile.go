package queue

import (
	"context"
	"fmt"
	"os"
	"strings"

	"gorm.io/gorm"

	"github.com/octavo-ci/octavo/plugin/store"
)

// maxAttempts is how often a run is taken before start-up reconciliation
// gives up on it: a run found unfinished after its first attempt is
// re-queued once, after its second it fails as orphaned.
const maxAttempts = 2

// Reconcile resolves the runs this replica left active when it stopped:
// each is re-queued once with its events, jobs and steps cleared, then
// failed as orphaned. Queued runs stay queued. Call it before the workers
// start; [Queue.Run] does.
func (q *Queue) Reconcile(ctx context.Context) error {
	runs, err := store.ActiveRuns(ctx, q.db)
	if err != nil {
		return fmt.Errorf("reconcile runs: %w", err)
	}

	prefix := q.opts.Replica + "/"
	for i := range runs {
		r := &runs[i]
		if !strings.HasPrefix(r.Worker, prefix) {
			// NOTE: a run of another replica may still be executing there;
			// without a heartbeat it is left alone.
			continue
		}
		if err := q.db.WithContext(ctx).Take(&r.Repo, r.RepoID).Error; err != nil {
			return fmt.Errorf("read repository of run %d: %w", r.ID, err)
		}

		requeue := r.Attempt < maxAttempts
		err := q.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if requeue {
				if err := store.ClearRunRecords(tx, r.ID); err != nil {
					return err
				}
				_, err := store.RequeueRun(tx, r, q.now())
				return err
			}
			done, err := store.FinishRun(tx, r, store.RunFailed, store.FailureOrphaned, "the sidecar stopped during the run twice", q.now())
			if err != nil || !done {
				return err
			}
			return q.notifyRun(tx, r)
		})
		if err != nil {
			return fmt.Errorf("reconcile run %d: %w", r.ID, err)
		}

		log := q.log.With("run_id", r.ID, "repo", r.Repo.FullName, "sha", r.SHA, "attempt", r.Attempt)
		// The stopped process left its checkout behind.
		if err := os.RemoveAll(q.opts.Workspaces.RunDir(r.ID)); err != nil {
			log.ErrorContext(ctx, "remove run folder of unfinished run", "err", err)
		}
		if requeue {
			log.WarnContext(ctx, "unfinished run re-queued")
		} else {
			log.ErrorContext(ctx, "unfinished run failed as orphaned")
			q.opts.Metrics.runFinished(string(store.RunFailed), string(store.FailureOrphaned))
		}
		q.publishRun(*r)
	}
	return nil
}
