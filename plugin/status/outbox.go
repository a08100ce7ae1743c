// Package status reports runs to the forge as commit statuses, through a
// durable outbox.
//
// The outbox has two halves. [Outbox.RunChanged] and [Outbox.JobChanged]
// run inside the transaction that changes a run or job and write the status
// the forge should show into the commit_statuses table, one row per
// (repository, commit, context). [Outbox.Run] is the sender: it posts every
// row whose newest version was not delivered yet, retrying with capped
// exponential backoff, across restarts. A row only ever moves forward, so
// the forge never gets an older state after a newer one, and a status that
// did not change is not posted again. Posting never touches the runs table:
// a forge outage cannot change a run's result.
//
// Delivery is at least once. A process that stops between the forge's
// success response and recording it posts the same status again after the
// restart, once the claim on the row expires (PostTimeout plus 30 s). The
// forge keeps both entries and shows the newest per context, so the repeat
// changes nothing that users or branch protection see.
package status

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/notify"
	"github.com/octavo-ci/octavo/plugin/store"
)

// DefaultContext is the commit status context when Options.Context is
// empty. Branch protection rules name it, so it must stay stable.
const DefaultContext = "octavo"

// Default tuning of the sender; Options overrides each.
const (
	// defaultMinBackoff is the wait after the first failed post; each
	// further failure doubles it.
	defaultMinBackoff = time.Second
	// defaultMaxBackoff caps the wait between posts during a long outage,
	// so a recovered forge gets its statuses within this time.
	defaultMaxBackoff = 5 * time.Minute
	// defaultPollInterval is how often the sender looks for due rows
	// without a wake-up: rows written by another replica, or a wake-up
	// that came before its transaction committed.
	defaultPollInterval = 5 * time.Second
	// defaultPostTimeout bounds one status post.
	defaultPostTimeout = 30 * time.Second
)

// StatusPoster posts one commit status; [*forge.Client] implements it.
type StatusPoster interface {
	CreateStatus(ctx context.Context, repo, sha string, opts forge.StatusOptions) (*forge.Status, error)
}

// Options configures an [Outbox]. Zero values take the defaults.
type Options struct {
	// PublicURL is the URL browsers reach octavo at, with any path prefix.
	// A status links to PublicURL + "runs/ID", without any user name or
	// password. Nil sends statuses without a link.
	PublicURL *url.URL
	// Context is the commit status context; empty means "octavo". Job
	// statuses use Context + "/" + job name.
	Context string
	// JobStatuses adds one status per job besides the run's own.
	JobStatuses bool
	// Logger receives retries (warn), rejected posts (error) and delivered
	// statuses (debug). Nil discards them.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between attempts to post
	// one status: 1 s doubling up to 5 min by default.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// PollInterval is how often the sender looks for due rows when nothing
	// wakes it; 5 s by default.
	PollInterval time.Duration
	// PostTimeout bounds one post; 30 s by default.
	PostTimeout time.Duration
	// Now replaces time.Now, for tests.
	Now func() time.Time
}

// Outbox writes desired commit statuses and sends them. Create it with
// [New]; run exactly one [Outbox.Run] per Outbox. Its methods are safe for
// concurrent use.
type Outbox struct {
	st      *store.Store
	client  StatusPoster
	opts    Options
	log     *slog.Logger
	runURL  func(uint) string
	wake    chan struct{}
	context string
}

var (
	_ notify.RunObserver = (*Outbox)(nil)
	_ notify.JobObserver = (*Outbox)(nil)
)

// New returns an outbox that stores rows in st and posts them through
// client.
func New(st *store.Store, client StatusPoster, opts Options) *Outbox {
	if opts.Context == "" {
		opts.Context = DefaultContext
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = defaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = defaultMaxBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = defaultPollInterval
	}
	if opts.PostTimeout <= 0 {
		opts.PostTimeout = defaultPostTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	base := ""
	if opts.PublicURL != nil {
		// A link the forge shows to every reader of the commit must not
		// carry the basic-auth credentials octavo may sit behind.
		public := *opts.PublicURL
		public.User = nil
		base = public.String()
	}
	return &Outbox{
		st:      st,
		client:  client,
		opts:    opts,
		log:     log.With("component", "status"),
		runURL:  runURLFunc(base),
		wake:    make(chan struct{}, 1),
		context: opts.Context,
	}
}

// Wake signals the sender that a row was written, so it posts within
// milliseconds instead of at the next poll. It never blocks. The observer
// methods call it themselves.
func (o *Outbox) Wake() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// RunChanged implements [notify.RunObserver]: it writes the run's status,
// and with JobStatuses it also ends the job statuses still pending when the
// run reached a final state. It uses only tx and returns only database
// errors.
func (o *Outbox) RunChanged(tx *gorm.DB, run *store.Run) error {
	failedJob := ""
	if run.State == store.RunFailed && (run.FailureKind == store.FailurePipeline || run.FailureKind == store.FailureNone) {
		name, err := firstFailedJob(tx, run.ID)
		if err != nil {
			return err
		}
		failedJob = name
	}

	d, ok := toRunStatus(run, failedJob, o.runURL)
	if !ok {
		if run.State != store.RunSkipped {
			o.log.Warn("no commit status for run state", "run_id", run.ID, "state", run.State)
		}
		return nil
	}
	if err := o.write(tx, run.RepoID, run.SHA, o.context, run.ID, d); err != nil {
		return err
	}

	if o.opts.JobStatuses && run.State.Final() {
		if err := o.endPendingJobs(tx, run, d); err != nil {
			return err
		}
	}
	o.Wake()
	return nil
}

// JobChanged implements [notify.JobObserver]: with JobStatuses it writes
// the job's status under Context/JOB; otherwise it does nothing.
func (o *Outbox) JobChanged(tx *gorm.DB, run *store.Run, job *store.Job) error {
	if !o.opts.JobStatuses {
		return nil
	}

	d, ok := toJobStatus(run, job, o.runURL)
	if !ok {
		o.log.Warn("no commit status for job state", "run_id", run.ID, "job", job.Name, "state", job.State)
		return nil
	}
	if err := o.write(tx, run.RepoID, run.SHA, o.jobContext(job.Name), run.ID, d); err != nil {
		return err
	}
	o.Wake()
	return nil
}

func (o *Outbox) jobContext(job string) string { return o.context + "/" + job }

// endPendingJobs gives every job status of run that is still pending the
// run's own final status, so a canceled, replaced or crashed run leaves no
// job context pending forever.
func (o *Outbox) endPendingJobs(tx *gorm.DB, run *store.Run, d Desired) error {
	var rows []store.CommitStatus
	err := tx.Where("repo_id = ? AND sha = ? AND run_id = ? AND state = ?", run.RepoID, run.SHA, run.ID, forge.StatePending).
		Find(&rows).Error
	if err != nil {
		return fmt.Errorf("find pending job statuses of run %d: %w", run.ID, err)
	}
	for _, row := range rows {
		if !strings.HasPrefix(row.Context, o.context+"/") {
			continue
		}
		if err := o.write(tx, run.RepoID, run.SHA, row.Context, run.ID, d); err != nil {
			return err
		}
	}
	return nil
}

// firstFailedJob returns the name of the run's first failed job that was
// not allowed to fail, in finishing order, or "" when there is none.
func firstFailedJob(tx *gorm.DB, runID uint) (string, error) {
	var jobs []store.Job
	err := tx.Where("run_id = ? AND state = ?", runID, jobFailed).
		Order("allow_failure").Order("finished_at IS NULL").Order("finished_at").Order("position").Order("id").
		Limit(1).Find(&jobs).Error
	if err != nil {
		return "", fmt.Errorf("find first failed job of run %d: %w", runID, err)
	}
	if len(jobs) == 0 {
		return "", nil
	}
	return jobs[0].Name, nil
}

// maxWriteTries bounds the optimistic retries of [Outbox.write] when
// another transaction changes the same row at the same moment (possible on
// PostgreSQL only; SQLite serialises writers).
const maxWriteTries = 5

// write stores d as the desired status of (repoID, sha, context) for runID,
// unless the row already holds something newer:
//   - a status of a newer run (higher id) on the same commit and context
//     is never overwritten by an older run;
//   - a pending status never overwrites a final one of the same run, so a
//     late "Running" cannot undo "Passed";
//   - an unchanged status bumps no version and is not posted again.
func (o *Outbox) write(tx *gorm.DB, repoID uint, sha, context string, runID uint, d Desired) error {
	now := o.opts.Now().UTC()
	key := fmt.Sprintf("%s of commit %s in repo %d", context, sha, repoID)

	for range maxWriteTries {
		var row store.CommitStatus
		err := tx.Where("repo_id = ? AND sha = ? AND context = ?", repoID, sha, context).Take(&row).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			row = store.CommitStatus{
				RepoID: repoID, SHA: sha, Context: context, RunID: runID,
				State: string(d.State), Description: d.Description, TargetURL: d.TargetURL,
				Version: 1, NextAttemptAt: now,
			}
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
			if res.Error != nil {
				return fmt.Errorf("insert commit status %s: %w", key, res.Error)
			}
			if res.RowsAffected == 1 {
				return nil
			}
			continue // another writer inserted it first: read it again
		}
		if err != nil {
			return fmt.Errorf("read commit status %s: %w", key, err)
		}

		switch {
		case runID < row.RunID:
			return nil
		case runID == row.RunID && row.State != string(forge.StatePending) && d.State == forge.StatePending:
			return nil
		case row.State == string(d.State) && row.Description == d.Description && row.TargetURL == d.TargetURL:
			if row.RunID == runID {
				return nil
			}
			// Same text for a newer run: keep it, but let later writes of
			// the older run lose against the newer one.
			if err := tx.Model(&store.CommitStatus{}).Where("id = ?", row.ID).Update("run_id", runID).Error; err != nil {
				return fmt.Errorf("update commit status %s: %w", key, err)
			}
			return nil
		}

		res := tx.Model(&store.CommitStatus{}).Where("id = ? AND version = ?", row.ID, row.Version).Updates(map[string]any{
			"run_id":          runID,
			"state":           string(d.State),
			"description":     d.Description,
			"target_url":      d.TargetURL,
			"version":         row.Version + 1,
			"attempts":        0,
			"next_attempt_at": now,
			"last_error":      "",
			"updated_at":      now,
		})
		if res.Error != nil {
			return fmt.Errorf("update commit status %s: %w", key, res.Error)
		}
		if res.RowsAffected == 1 {
			return nil
		}
	}
	return fmt.Errorf("update commit status %s: row kept changing, gave up after %d tries", key, maxWriteTries)
}
