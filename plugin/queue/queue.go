// Package queue turns webhook deliveries into runs and executes them. The
// runs table is the queue, and workers take runs with one atomic update.
// Each run gets a checkout and an octavo-runner subprocess, whose event
// stream is ingested into the store while it runs.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"github.com/octavo-ci/octavo/plugin/notify"
	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/workspace"
)

// pollInterval is how often an idle worker looks for queued runs that
// another replica (or catch-up) created without waking it, and how often an
// active run checks whether another replica ended it.
const pollInterval = time.Second

// Options configures a [Queue]. Store, Workspaces and RunnerPath are
// required; nil observers and a nil Live sink are skipped.
type Options struct {
	Store      *store.Store
	Workspaces *workspace.Manager
	// RunnerPath is the octavo-runner binary.
	RunnerPath string
	// MaxRuns is the number of runs this process executes at once; 0 means 1.
	MaxRuns int
	// Parallel is the runner's --parallel job limit; 0 means the CPU count.
	Parallel int
	// RunTimeout ends a run as failed / timed-out; 0 means no limit.
	RunTimeout time.Duration
	// ShutdownGrace is how long active runs may continue after Run's ctx is
	// canceled before they are stopped and left to reconciliation.
	ShutdownGrace time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL when a runner is
	// stopped; 0 means 5 seconds.
	KillGrace time.Duration
	// Secrets returns the pipeline secrets of a repository ("owner/name").
	// Nil gives every run an empty secrets file.
	Secrets func(fullName string) (map[string]string, error)
	// Replica names this process among replicas sharing a database; start-up
	// reconciliation touches only the active runs of the same replica. Empty
	// means the host name.
	Replica string

	RunObserver notify.RunObserver
	JobObserver notify.JobObserver
	Live        notify.LiveSink
	Metrics     *Metrics
	Logger      *slog.Logger
	// Now replaces time.Now in tests.
	Now func() time.Time
}

// Queue owns intake, preparation and execution of runs. Create it with
// [New] and start its workers with [Queue.Run].
type Queue struct {
	opts Options
	st   *store.Store
	db   *gorm.DB
	// prepared is db with cached prepared statements, for the statements
	// intake repeats for every delivery.
	prepared *gorm.DB
	log      *slog.Logger
	now      func() time.Time

	// wake holds at most one pending wake-up for the idle workers.
	wake chan struct{}
	// prepare carries new run ids to the preparer; see [Queue.prepareLoop].
	prepare chan uint

	// intakeMu guards the group commit of deliveries: the waiting
	// requests and whether a caller is committing them.
	intakeMu      sync.Mutex
	intakePending []*intakeRequest
	intakeLeader  bool
	// repoIDs caches the id of each repository row as last written, keyed
	// by its forge fields, so intake skips the upsert while they stay the
	// same. Only the intake leader touches it.
	repoIDs map[repoKey]uint
	// intakeStmts are prepared by the first intake leader; only the
	// intake leader touches them.
	intakeStmts *store.IntakeStmts

	mu sync.Mutex
	// active maps the id of every run executing in this process to the
	// function that stops it with a cause.
	active map[uint]context.CancelCauseFunc
}

// New returns a queue; it starts nothing.
func New(opts Options) *Queue {
	if opts.MaxRuns <= 0 {
		opts.MaxRuns = 1
	}
	if opts.Parallel <= 0 {
		opts.Parallel = runtime.NumCPU()
	}
	if opts.KillGrace <= 0 {
		opts.KillGrace = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Replica == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "octavo"
		}
		opts.Replica = host
	}
	return &Queue{
		opts:     opts,
		st:       opts.Store,
		db:       opts.Store.DB,
		prepared: opts.Store.DB.Session(&gorm.Session{PrepareStmt: true}),
		repoIDs:  map[repoKey]uint{},
		log:      opts.Logger.With("component", "queue"),
		now:      func() time.Time { return opts.Now().UTC() },
		wake:     make(chan struct{}, 1),
		prepare:  make(chan uint, 1024),
		active:   map[uint]context.CancelCauseFunc{},
	}
}

// Run reconciles runs left behind by an earlier process, then runs the
// preparer and MaxRuns workers until ctx is canceled. After that it stops
// taking runs, gives active runs ShutdownGrace to finish, stops the rest
// (they stay active for the next start's reconciliation) and returns nil.
// It returns an error only when reconciliation fails.
func (q *Queue) Run(ctx context.Context) error {
	if err := q.Reconcile(ctx); err != nil {
		return err
	}
	q.prepareQueued(ctx)

	// Workers run on a context that outlives ctx by the grace period, so
	// a shutdown lets their runs finish first.
	workCtx, stopWork := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopWork(nil)

	g := new(errgroup.Group)
	takeCtx, stopTaking := context.WithCancel(ctx)
	defer stopTaking()
	for i := range q.opts.MaxRuns {
		worker := fmt.Sprintf("%s/%d/%d", q.opts.Replica, os.Getpid(), i)
		g.Go(func() error {
			q.workerLoop(takeCtx, workCtx, worker)
			return nil
		})
	}
	g.Go(func() error {
		q.prepareLoop(takeCtx)
		return nil
	})

	<-ctx.Done()
	q.log.InfoContext(ctx, "queue stopping", "cause", context.Cause(ctx), "active_runs", q.activeCount(), "grace", q.opts.ShutdownGrace)

	done := make(chan struct{})
	go func() {
		_ = g.Wait()
		close(done)
	}()
	timer := time.NewTimer(q.opts.ShutdownGrace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		q.log.Warn("shutdown grace over, stopping active runs", "active_runs", q.activeCount())
		stopWork(errShutdown)
		q.stopAll(errShutdown)
		<-done
	}
	q.log.Info("queue stopped")
	return nil
}

// Wake wakes an idle worker because a run was queued.
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *Queue) activeCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.active)
}

// stopRun stops the runner of run id if it executes in this process, and
// reports whether it did.
func (q *Queue) stopRun(id uint, cause error) bool {
	q.mu.Lock()
	cancel, ok := q.active[id]
	q.mu.Unlock()
	if ok {
		cancel(cause)
	}
	return ok
}

func (q *Queue) stopAll(cause error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, cancel := range q.active {
		cancel(cause)
	}
}

// notifyRun calls the run observer inside tx; a nil observer is skipped.
func (q *Queue) notifyRun(tx *gorm.DB, r *store.Run) error {
	if q.opts.RunObserver == nil {
		return nil
	}
	if err := q.opts.RunObserver.RunChanged(tx, r); err != nil {
		return fmt.Errorf("notify run %d change: %w", r.ID, err)
	}
	return nil
}

// publishRun sends a committed change of r to live viewers.
func (q *Queue) publishRun(r store.Run) {
	if q.opts.Live != nil {
		q.opts.Live.RunChanged(r)
	}
}

// cleanupCtx returns a context for database writes that must happen even
// after ctx was canceled, such as storing a run's final state.
func cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// isCause reports whether ctx ended with the cause target.
func isCause(ctx context.Context, target error) bool {
	return errors.Is(context.Cause(ctx), target)
}
