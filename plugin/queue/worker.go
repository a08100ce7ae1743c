package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"gorm.io/gorm"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/workspace"
)

// workerLoop takes queued runs one at a time until takeCtx is canceled.
// Runs execute on workCtx, which outlives takeCtx by the shutdown grace.
func (q *Queue) workerLoop(takeCtx, workCtx context.Context, worker string) {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		if takeCtx.Err() != nil {
			return
		}
		r, err := q.take(takeCtx, worker)
		if err != nil && takeCtx.Err() == nil {
			// A take cut short by shutdown is expected, not an error.
			q.log.ErrorContext(takeCtx, "take queued run", "worker", worker, "err", err)
		}
		if r != nil {
			q.execute(workCtx, r)
			continue
		}

		select {
		case <-takeCtx.Done():
			return
		case <-q.wake:
		case <-ticker.C:
		}
	}
}

// take marks the oldest queued run active. The run observer hears of it
// only in [Queue.announceActive], once the pipeline file is known to exist,
// because a commit without one must get no commit status.
func (q *Queue) take(ctx context.Context, worker string) (*store.Run, error) {
	var r *store.Run
	err := q.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		r, err = store.TakeRun(tx, q.st.Dialect, worker, q.now())
		if err != nil || r == nil {
			return err
		}
		if err := tx.Take(&r.Repo, r.RepoID).Error; err != nil {
			return fmt.Errorf("read repository of run %d: %w", r.ID, err)
		}
		return nil
	})
	if err != nil || r == nil {
		return nil, err
	}
	q.publishRun(*r)
	// Another worker may be idle while more runs wait.
	q.Wake()
	return r, nil
}

// execute runs one taken run to its final state. It never returns an
// error: every failure becomes the run's state.
func (q *Queue) execute(ctx context.Context, r *store.Run) {
	log := q.log.With("run_id", r.ID, "repo", r.Repo.FullName, "sha", r.SHA)

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if q.opts.RunTimeout > 0 {
		var stop context.CancelFunc
		runCtx, stop = context.WithTimeoutCause(runCtx, q.opts.RunTimeout, errTimedOut)
		defer stop()
	}
	q.mu.Lock()
	q.active[r.ID] = cancel
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		delete(q.active, r.ID)
		q.mu.Unlock()
	}()
	go q.watchState(runCtx, r.ID, cancel)

	dir := q.opts.Workspaces.RunDir(r.ID)
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			log.Error("remove run folder", "dir", dir, "err", err)
		}
	}()

	log.InfoContext(ctx, "run started", "attempt", r.Attempt, "ref", r.Ref)
	src, err := q.materialise(runCtx, r, dir)
	if err != nil {
		if isCause(runCtx, errTimedOut) {
			q.finish(ctx, r, toOutcome(nil, nil, true), log)
			return
		}
		if runCtx.Err() != nil {
			q.finishStopped(runCtx, log)
			return
		}
		log.ErrorContext(ctx, "prepare checkout", "err", err)
		q.finish(ctx, r, outcome{state: store.RunFailed, kind: store.FailureCloneFailed, reason: firstLine(err.Error())}, log)
		return
	}
	if src == "" {
		q.skip(ctx, r)
		return
	}
	if err := q.announceActive(ctx, r); err != nil {
		log.ErrorContext(ctx, "announce active run", "err", err)
	}

	out, err := q.runRunner(runCtx, r, dir, src, log)
	if err != nil {
		log.ErrorContext(ctx, "start runner", "runner", q.opts.RunnerPath, "err", err)
		q.finish(ctx, r, outcome{state: store.RunFailed, kind: store.FailureProcessCrashed, reason: firstLine(err.Error())}, log)
		return
	}
	if isCause(runCtx, errShutdown) || isCause(runCtx, errReplaced) || isCause(runCtx, errCanceled) {
		q.finishStopped(runCtx, log)
		return
	}
	q.finish(ctx, r, out, log)
}

// announceActive notifies the run observer that r is active, unless the run
// was replaced or canceled meanwhile.
func (q *Queue) announceActive(ctx context.Context, r *store.Run) error {
	return q.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		active, err := store.TouchRun(tx, r, store.RunActive, q.now())
		if err != nil || !active {
			return err
		}
		return q.notifyRun(tx, r)
	})
}

// finishStopped logs the end of a run stopped from outside: a replaced or
// canceled run already has its final state, and a run stopped by shutdown
// stays active for reconciliation.
func (q *Queue) finishStopped(runCtx context.Context, log *slog.Logger) {
	log.Info("run stopped", "cause", context.Cause(runCtx))
}

// watchState polls the run's row and stops the runner when another
// replica replaced or canceled the run.
func (q *Queue) watchState(ctx context.Context, id uint, cancel context.CancelCauseFunc) {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		// NOTE: Pluck needs a slice; into a single value it always fails.
		var states []store.RunState
		err := q.db.WithContext(ctx).Model(&store.Run{}).Where("id = ?", id).Pluck("state", &states).Error
		if err != nil || len(states) == 0 {
			continue
		}
		state := states[0]
		switch state {
		case store.RunReplaced:
			cancel(errReplaced)
		case store.RunCanceled, store.RunFailed, store.RunComplete, store.RunSkipped:
			cancel(errCanceled)
		}
	}
}

// materialise fetches the mirror, checks the pipeline file and checks the
// commit out into dir/src. It returns "" when the commit has no pipeline.
func (q *Queue) materialise(ctx context.Context, r *store.Run, dir string) (string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("clear run folder: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create run folder: %w", err)
	}
	src := filepath.Join(dir, "src")
	has, err := q.opts.Workspaces.Materialise(ctx, r.Repo.FullName, r.Repo.CloneURL, r.SHA, workspace.PipelineFile, src)
	if err != nil || !has {
		return "", err
	}
	return src, nil
}

// writeRunFiles writes the push payload and the repository's secrets
// (mode 0600) beside the checkout and returns their paths.
func (q *Queue) writeRunFiles(r *store.Run, dir string) (push, secrets string, err error) {
	push = filepath.Join(dir, "push.json")
	if err := os.WriteFile(push, []byte(r.Payload), 0o600); err != nil {
		return "", "", fmt.Errorf("write push payload: %w", err)
	}

	values := map[string]string{}
	if q.opts.Secrets != nil {
		values, err = q.opts.Secrets(r.Repo.FullName)
		if err != nil {
			return "", "", fmt.Errorf("read secrets of %s: %w", r.Repo.FullName, err)
		}
	}
	raw, err := json.Marshal(values)
	if err != nil {
		return "", "", fmt.Errorf("encode secrets: %w", err)
	}
	secrets = filepath.Join(dir, "secrets.json")
	if err := os.WriteFile(secrets, raw, 0o600); err != nil {
		return "", "", fmt.Errorf("write secrets file: %w", err)
	}
	return push, secrets, nil
}

// finish stores the run's final state and notifies the observers, unless a
// replacing push or a cancel ended the run first.
func (q *Queue) finish(ctx context.Context, r *store.Run, out outcome, log *slog.Logger) {
	ctx, cancel := cleanupCtx(ctx)
	defer cancel()

	var done bool
	err := q.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		done, err = store.FinishRun(tx, r, out.state, out.kind, out.reason, q.now())
		if err != nil || !done {
			return err
		}
		return q.notifyRun(tx, r)
	})
	if err != nil {
		log.ErrorContext(ctx, "store run result", "state", out.state, "err", err)
		return
	}
	if !done {
		return
	}

	q.opts.Metrics.runFinished(string(out.state), string(out.kind))
	q.publishRun(*r)
	switch out.kind {
	case store.FailureNone:
		log.InfoContext(ctx, "run complete")
	case store.FailurePipeline:
		log.InfoContext(ctx, "run failed", "failure_kind", out.kind, "reason", out.reason)
	default:
		log.ErrorContext(ctx, "run failed", "failure_kind", out.kind, "reason", out.reason)
	}
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
