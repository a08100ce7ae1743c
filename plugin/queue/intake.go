package queue

import (
	"context"
	"encoding/json"
	"fmt"

	"gorm.io/gorm"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/webhook"
)

// IntakeResult says what a delivery did.
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

// Intake persists a verified delivery and acts on it in one transaction:
// it queues a run (replacing older runs of the same repository and ref),
// cancels the runs of a deleted ref, or only records an ignored delivery.
// It never calls git or the forge; fetching the mirror and looking up the
// pipeline file happen afterwards in the background.
func (q *Queue) Intake(ctx context.Context, d *webhook.Delivery) (IntakeResult, error) {
	var (
		res     IntakeResult
		stopped []store.StoppedRun
		created *store.Run
	)
	now := q.now()

	err := q.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		stopped, created = nil, nil
		row := &store.Delivery{DeliveryID: d.ID, Event: d.Event, RepoFullName: d.Repo.FullName}
		isNew, err := store.InsertDelivery(tx, row)
		if err != nil {
			return err
		}
		if !isNew {
			res = IntakeResult{Duplicate: true}
			var prev store.Delivery
			if err := tx.Where("delivery_id = ?", d.ID).Take(&prev).Error; err != nil {
				return fmt.Errorf("read delivery %s: %w", d.ID, err)
			}
			res.Result = prev.Result
			return nil
		}

		var repo *store.Repo
		if d.Repo.FullName != "" {
			repo = &store.Repo{
				FullName: d.Repo.FullName, Owner: d.Repo.Owner, Name: d.Repo.Name,
				Private: d.Repo.Private, DefaultBranch: d.Repo.DefaultBranch,
				CloneURL: d.Repo.CloneURL, HTMLURL: d.Repo.HTMLURL,
			}
			if err := store.UpsertRepo(tx, repo); err != nil {
				return err
			}
		}

		switch d.Action {
		case webhook.ActionRun:
			created, stopped, err = q.queueRun(tx, repo, d)
			if err != nil {
				return err
			}
			res = IntakeResult{Result: fmt.Sprintf("queued run %d", created.ID), RunID: created.ID}
			if len(stopped) > 0 {
				res.Result += fmt.Sprintf(", replaced %d", len(stopped))
			}
		case webhook.ActionCancel:
			stopped, err = store.StopRuns(tx, repo.ID, d.Ref, 0, store.RunCanceled, nil, "Canceled: "+d.Ref+" was deleted", now)
			if err != nil {
				return err
			}
			res = IntakeResult{Result: fmt.Sprintf("canceled %d runs", len(stopped))}
		default:
			res = IntakeResult{Result: "ignored: " + d.Reason}
		}

		for i := range stopped {
			if err := q.notifyRun(tx, &stopped[i].Run); err != nil {
				return err
			}
		}
		return store.SetDeliveryResult(tx, d.ID, res.Result)
	})
	if err != nil {
		q.opts.Metrics.delivery("error")
		return IntakeResult{}, fmt.Errorf("store delivery %s: %w", d.ID, err)
	}

	q.afterIntake(d, res, stopped, created)
	return res, nil
}

func (q *Queue) queueRun(tx *gorm.DB, repo *store.Repo, d *webhook.Delivery) (*store.Run, []store.StoppedRun, error) {
	p := d.Push
	payload, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("encode push payload: %w", err)
	}
	r := &store.Run{
		RepoID: repo.ID, Ref: d.Ref, Branch: p.Branch, Tag: p.Tag, SHA: p.SHA,
		Before: p.Before, Pusher: p.Pusher, Message: p.Message, CompareURL: p.CompareURL,
		Payload: string(payload), DeliveryID: d.ID,
	}
	if err := store.CreateRun(tx, r); err != nil {
		return nil, nil, err
	}
	r.Repo = *repo

	id := r.ID
	stopped, err := store.StopRuns(tx, repo.ID, d.Ref, id, store.RunReplaced, &id, fmt.Sprintf("Replaced by run %d", id), q.now())
	if err != nil {
		return nil, nil, err
	}
	return r, stopped, nil
}

// afterIntake acts on a committed intake: it stops runners of replaced or
// canceled runs, tells live viewers and wakes the preparer and workers.
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
