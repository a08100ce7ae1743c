package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/webhook"
)

// IntakeResult is the outcome of one delivery.
type IntakeResult struct {
	// Duplicate is true for a delivery id seen before; Result then repeats
	// the first delivery's result and nothing else happened.
	Duplicate bool
	// Result is the short text stored with the delivery, such as
	// "queued run 12" or "ignored: unsupported event status".
	Result string
	// RunID is the queued run, 0 for none.
	RunID uint
}

// Intake persists a verified delivery and acts on it: it queues a run
// (replacing older runs of the same repository and ref), cancels the runs
// of a deleted ref, or only records an ignored delivery. It returns once
// that is committed. It never calls git or the forge; fetching the mirror
// and looking up the pipeline file happen afterwards in the background.
//
// Deliveries arriving together are committed in one transaction, because
// intake has one writer on SQLite and a commit per delivery costs more than
// its statements.
func (q *Queue) Intake(ctx context.Context, d *webhook.Delivery) (IntakeResult, error) {
	req := &intakeRequest{d: d, done: make(chan struct{})}

	q.intakeMu.Lock()
	q.intakePending = append(q.intakePending, req)
	lead := !q.intakeLeader
	q.intakeLeader = true
	q.intakeMu.Unlock()

	if lead {
		q.leadIntake(ctx)
	}
	select {
	case <-req.done:
		return req.res, req.err
	case <-ctx.Done():
		// The batch still commits; the caller only stops waiting.
		return IntakeResult{}, fmt.Errorf("store delivery %s: %w", d.ID, ctx.Err())
	}
}

// intakeRequest is one delivery waiting in a group commit.
type intakeRequest struct {
	d    *webhook.Delivery
	done chan struct{}

	res     IntakeResult
	err     error
	stopped []store.StoppedRun
	created *store.Run
}

// maxIntakeBatch bounds the deliveries of one transaction, so one commit
// never holds the write lock for long.
const maxIntakeBatch = 128

// leadIntake commits the pending deliveries batch by batch until none are
// left, then gives up the leader role. Only one caller leads at a time.
func (q *Queue) leadIntake(ctx context.Context) {
	// The batch belongs to every waiting caller, so the leader's own
	// cancellation must not abort it.
	ctx, cancel := cleanupCtx(ctx)
	defer cancel()
	for {
		// Yielding first lets the requests already read and parsed join
		// this batch, so fewer commits serve the same deliveries. Without
		// it, most batches held one delivery under load.
		runtime.Gosched()
		q.intakeMu.Lock()
		batch := q.intakePending
		if len(batch) > maxIntakeBatch {
			batch = batch[:maxIntakeBatch]
		}
		q.intakePending = q.intakePending[len(batch):]
		if len(batch) == 0 {
			q.intakeLeader = false
			q.intakePending = nil
			q.intakeMu.Unlock()
			return
		}
		q.intakeMu.Unlock()

		q.commitIntake(ctx, batch)
		for _, req := range batch {
			if req.err == nil {
				q.afterIntake(req.d, req.res, req.stopped, req.created)
			} else {
				q.opts.Metrics.delivery("error")
			}
			close(req.done)
		}
	}
}

// commitIntake stores a batch in one transaction. When any delivery of
// the batch fails, the transaction rolls back and each delivery is stored
// again in a transaction of its own, so one bad delivery cannot fail the
// others. Savepoints would do the same but cost two statements for every
// delivery, and errors here are rare (a database error, not bad input).
func (q *Queue) commitIntake(ctx context.Context, batch []*intakeRequest) {
	if len(batch) > 1 && q.commitBatch(ctx, batch) == nil {
		return
	}
	for _, req := range batch {
		if err := q.commitBatch(ctx, []*intakeRequest{req}); err != nil {
			req.err = fmt.Errorf("store delivery %s: %w", req.d.ID, err)
			req.stopped, req.created = nil, nil
		}
	}
}

// commitBatch stores every delivery of batch in one transaction and fills
// in their results; on error nothing is stored.
func (q *Queue) commitBatch(ctx context.Context, batch []*intakeRequest) error {
	if q.intakeStmts == nil {
		stmts, err := q.st.PrepareIntake(ctx)
		if err != nil {
			return err
		}
		q.intakeStmts = stmts
	}
	var upserted []store.Repo
	// The transaction is a plain one: the intake statements are prepared
	// on the pool already, and GORM's own statement cache would prepare
	// them again in every transaction.
	err := q.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		stx, err := store.SQLTx(tx)
		if err != nil {
			return err
		}
		it := intakeTx{ctx: ctx, gorm: tx, sql: stx}
		if q.st.Dialect == "sqlite" {
			// go-sqlite3 runs every statement under a cancelable context
			// on a goroutine of its own, which costs more than the
			// statement. Inside an IMMEDIATE transaction on the one
			// connection nothing can block them, so they need no deadline.
			it.ctx = context.WithoutCancel(ctx)
		}
		for _, req := range batch {
			req.err, req.stopped, req.created = nil, nil, nil
			repo, err := q.intakeOne(it, req)
			if err != nil {
				return err
			}
			if repo != nil {
				upserted = append(upserted, *repo)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range upserted {
		q.repoIDs[toRepoKey(&r)] = r.ID
	}
	return nil
}

// intakeTx is one intake transaction, seen through GORM (for observers and
// rare statements) and through database/sql (for [store.IntakeStmts]).
type intakeTx struct {
	ctx  context.Context
	gorm *gorm.DB
	sql  *sql.Tx
}

// repoKey is the part of a repository row that intake writes.
type repoKey struct {
	fullName, owner, name, defaultBranch, cloneURL, htmlURL string
	private                                                 bool
}

func toRepoKey(r *store.Repo) repoKey {
	return repoKey{r.FullName, r.Owner, r.Name, r.DefaultBranch, r.CloneURL, r.HTMLURL, r.Private}
}

// intakeOne records one delivery and acts on it inside tx. It returns the
// repository row it wrote, if any, for the cache of repository ids.
func (q *Queue) intakeOne(tx intakeTx, req *intakeRequest) (*store.Repo, error) {
	d := req.d
	now := q.now()
	row := &store.Delivery{DeliveryID: d.ID, Event: d.Event, RepoFullName: d.Repo.FullName, CreatedAt: now}
	isNew, err := q.intakeStmts.InsertDelivery(tx.ctx, tx.sql, row)
	if err != nil {
		return nil, err
	}
	if !isNew {
		var prev store.Delivery
		if err := tx.gorm.Where("delivery_id = ?", d.ID).Take(&prev).Error; err != nil {
			return nil, fmt.Errorf("read delivery %s: %w", d.ID, err)
		}
		req.res = IntakeResult{Duplicate: true, Result: prev.Result}
		return nil, nil
	}

	var repo *store.Repo
	if d.Repo.FullName != "" {
		repo = &store.Repo{
			FullName: d.Repo.FullName, Owner: d.Repo.Owner, Name: d.Repo.Name,
			Private: d.Repo.Private, DefaultBranch: dropNUL(d.Repo.DefaultBranch),
			CloneURL: d.Repo.CloneURL, HTMLURL: dropNUL(d.Repo.HTMLURL),
		}
		if id, ok := q.repoIDs[toRepoKey(repo)]; ok {
			repo.ID = id
		} else if err := store.UpsertRepo(tx.gorm, repo); err != nil {
			return nil, err
		}
	}

	switch {
	case d.Action == webhook.ActionRun && repo != nil:
		req.created, req.stopped, err = q.queueRun(tx, repo, d, now)
		if err != nil {
			return nil, err
		}
		req.res = IntakeResult{Result: "queued run " + strconv.FormatUint(uint64(req.created.ID), 10), RunID: req.created.ID}
		if len(req.stopped) > 0 {
			req.res.Result += ", replaced " + strconv.Itoa(len(req.stopped))
		}
	case d.Action == webhook.ActionCancel && repo != nil:
		req.stopped, err = q.intakeStmts.StopRuns(tx.ctx, tx.sql, repo.ID, d.Ref, 0, store.RunCanceled, nil, "Canceled: "+d.Ref+" was deleted", now)
		if err != nil {
			return nil, err
		}
		req.res = IntakeResult{Result: fmt.Sprintf("canceled %d runs", len(req.stopped))}
	default:
		req.res = IntakeResult{Result: "ignored: " + d.Reason}
	}

	for i := range req.stopped {
		if err := q.notifyRun(tx.gorm, &req.stopped[i].Run); err != nil {
			return nil, err
		}
	}
	return repo, q.intakeStmts.SetDeliveryResult(tx.ctx, tx.sql, row.ID, req.res.Result)
}

func (q *Queue) queueRun(tx intakeTx, repo *store.Repo, d *webhook.Delivery, now time.Time) (*store.Run, []store.StoppedRun, error) {
	p := d.Push
	payload, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("encode push payload: %w", err)
	}
	r := &store.Run{
		RepoID: repo.ID, Ref: d.Ref, Branch: p.Branch, Tag: p.Tag, SHA: p.SHA,
		Before: dropNUL(p.Before), Pusher: dropNUL(p.Pusher), Message: dropNUL(p.Message), CompareURL: dropNUL(p.CompareURL),
		Payload: string(payload), DeliveryID: d.ID, CreatedAt: now, UpdatedAt: now,
	}
	if err := q.intakeStmts.CreateRun(tx.ctx, tx.sql, r); err != nil {
		return nil, nil, err
	}
	r.Repo = *repo

	id := r.ID
	stopped, err := q.intakeStmts.StopRuns(tx.ctx, tx.sql, repo.ID, d.Ref, id, store.RunReplaced, &id, "Replaced by run "+strconv.FormatUint(uint64(id), 10), now)
	if err != nil {
		return nil, nil, err
	}
	return r, stopped, nil
}

// dropNUL replaces NUL characters with U+FFFD. JSON payloads may carry
// them as \u0000, but PostgreSQL text columns reject them. The payload
// column keeps them escaped.
func dropNUL(s string) string {
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// afterIntake acts on a committed intake: it stops runners of replaced or
// canceled runs, notifies live viewers and wakes the preparer and workers.
func (q *Queue) afterIntake(d *webhook.Delivery, res IntakeResult, stopped []store.StoppedRun, created *store.Run) {
	switch {
	case res.Duplicate:
		q.opts.Metrics.delivery("duplicate")
	case created != nil:
		q.opts.Metrics.delivery("queued")
	case d.Action == webhook.ActionCancel:
		q.opts.Metrics.delivery("canceled")
	default:
		q.opts.Metrics.delivery("ignored")
	}

	for _, s := range stopped {
		cause := errCanceled
		if s.State == store.RunReplaced {
			cause = errReplaced
		}
		if s.PrevState == store.RunActive {
			q.stopRun(s.ID, cause)
		}
		q.opts.Metrics.runFinished(string(s.State), "")
		q.publishRun(s.Run)
	}

	if created != nil {
		q.publishRun(*created)
		select {
		case q.prepare <- created.ID:
		default:
			// NOTE: with the preparer this far behind, the worker that
			// takes the run still looks up the pipeline file itself.
		}
		q.Wake()
	}
}
