package status

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/store"
)

// Sender tuning that Options does not expose.
const (
	// batchSize bounds the rows one pass reads; the next pass follows at
	// once while more are due.
	batchSize = 100
	// recheckDelay is how soon after a wake-up the sender looks again. A
	// wake-up comes from inside the writing transaction, so on PostgreSQL
	// the first look can run before the row is committed.
	recheckDelay = 250 * time.Millisecond
	// leaseSlack is added to PostTimeout for the time a claimed row stays
	// hidden from other senders (other replicas on one PostgreSQL).
	leaseSlack = 30 * time.Second
	// dbTimeout bounds the bookkeeping update after a post, which runs even
	// when the sender is shutting down.
	dbTimeout = 10 * time.Second
	// maxLastError bounds the error text kept in a row.
	maxLastError = 1000
	// idleFloor is the shortest wait after a pass that claimed no row, so a
	// row that stays due (a failing database) cannot make the loop spin.
	idleFloor = 50 * time.Millisecond
)

// dueRow is an outbox row with the repository's full name on the forge.
type dueRow struct {
	store.CommitStatus
	RepoFullName string
}

// Run is the sender loop. It posts due rows right away, when woken by
// [Outbox.Wake], and at least every PollInterval, until ctx is canceled; it
// then returns nil. Rows left unsent stay in the table for the next start.
// Database and forge errors are logged and retried, never returned.
func (o *Outbox) Run(ctx context.Context) error {
	o.log.Info("commit status sender started", "context", o.context)
	defer o.log.Info("commit status sender stopped")

	recheck := false
	for {
		next, more, claimed := o.sendDue(ctx)
		if ctx.Err() != nil {
			return nil
		}

		wait := o.opts.PollInterval
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(o.opts.Now()), 0))
		}
		if more {
			wait = 0
		}
		if recheck {
			wait = min(wait, recheckDelay)
			recheck = false
		}
		if claimed == 0 {
			wait = max(wait, idleFloor)
		}

		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-o.wake:
			recheck = true
		case <-timer.C:
		}
		timer.Stop()
	}
}

// sendDue posts the rows that are due now, oldest due first. It returns
// when the next row falls due (zero when none is waiting), whether a full
// batch was read, so more may be due already, and how many rows it claimed.
func (o *Outbox) sendDue(ctx context.Context) (next time.Time, more bool, claimed int) {
	db := o.st.DB.WithContext(ctx)
	now := o.opts.Now().UTC()

	var rows []dueRow
	err := db.Table("commit_statuses").
		Select("commit_statuses.*, repos.full_name AS repo_full_name").
		Joins("JOIN repos ON repos.id = commit_statuses.repo_id").
		Where("commit_statuses.sent_version < commit_statuses.version AND commit_statuses.next_attempt_at <= ?", now).
		Order("commit_statuses.next_attempt_at").Order("commit_statuses.id").
		Limit(batchSize).
		Scan(&rows).Error
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("read due commit statuses", "err", err)
		}
		return time.Time{}, false, 0
	}

	for i := range rows {
		if ctx.Err() != nil {
			return time.Time{}, false, claimed
		}
		if o.send(ctx, &rows[i]) {
			claimed++
		}
	}
	if len(rows) == batchSize {
		return time.Time{}, true, claimed
	}

	var pending []dueRow
	err = db.Table("commit_statuses").
		Select("commit_statuses.next_attempt_at").
		Joins("JOIN repos ON repos.id = commit_statuses.repo_id").
		Where("commit_statuses.sent_version < commit_statuses.version").
		Order("commit_statuses.next_attempt_at").Limit(1).
		Scan(&pending).Error
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("read next due commit status", "err", err)
		}
		return time.Time{}, false, claimed
	}
	if len(pending) == 0 {
		return time.Time{}, false, claimed
	}
	return pending[0].NextAttemptAt, false, claimed
}

// send claims one row, posts it and records the outcome, and reports
// whether it claimed the row. The claim is a conditional update, so a row
// that changed since it was read, or that another sender took, is left
// alone.
func (o *Outbox) send(ctx context.Context, row *dueRow) bool {
	db := o.st.DB.WithContext(ctx)
	now := o.opts.Now().UTC()
	log := o.log.With("repo", row.RepoFullName, "sha", row.SHA, "context", row.Context,
		"run_id", row.RunID, "version", row.Version)

	claim := db.Model(&store.CommitStatus{}).
		Where("id = ? AND version = ? AND sent_version < version AND next_attempt_at <= ?", row.ID, row.Version, now).
		Update("next_attempt_at", now.Add(o.opts.PostTimeout+leaseSlack))
	if claim.Error != nil {
		if ctx.Err() == nil {
			log.Error("claim commit status", "err", claim.Error)
		}
		return false
	}
	if claim.RowsAffected == 0 {
		return false
	}

	postCtx, cancel := context.WithTimeout(ctx, o.opts.PostTimeout)
	_, err := o.client.CreateStatus(postCtx, row.RepoFullName, row.SHA, forge.StatusOptions{
		State:       forge.StatusState(row.State),
		TargetURL:   row.TargetURL,
		Description: row.Description,
		Context:     row.Context,
	})
	cancel()

	// The outcome is recorded even during shutdown, so a delivered status
	// is not posted again after the restart.
	bookCtx, cancelBook := context.WithTimeout(context.WithoutCancel(ctx), dbTimeout)
	defer cancelBook()
	if err != nil {
		o.recordFailure(bookCtx, ctx, row, err, log)
		return true
	}
	o.recordSent(bookCtx, row, log)
	return true
}

// recordSent marks the row's version delivered. When another sender
// recorded a newer version while this post was in flight, the forge may
// have received this older state last, so the row is set back to post the
// newest state once more.
func (o *Outbox) recordSent(ctx context.Context, row *dueRow, log *slog.Logger) {
	db := o.st.DB.WithContext(ctx)
	now := o.opts.Now().UTC()

	res := db.Model(&store.CommitStatus{}).Where("id = ? AND sent_version < ?", row.ID, row.Version).Updates(map[string]any{
		"sent_version": row.Version,
		"sent_at":      now,
		"attempts":     0,
		"last_error":   "",
	})
	if res.Error != nil {
		// The forge has the status; at worst it is posted once more.
		log.Error("record sent commit status", "err", res.Error)
		return
	}
	if res.RowsAffected == 1 {
		log.Debug("commit status sent", "state", row.State, "description", row.Description)
		return
	}

	err := db.Model(&store.CommitStatus{}).Where("id = ? AND sent_version > ?", row.ID, row.Version).Updates(map[string]any{
		"sent_version":    row.Version,
		"next_attempt_at": now,
	}).Error
	if err != nil {
		log.Error("re-arm overtaken commit status", "err", err)
	}
	o.Wake()
}

// recordFailure schedules the next attempt with capped exponential backoff.
// A post cut short by shutdown is not counted and is due again at once.
func (o *Outbox) recordFailure(ctx, runCtx context.Context, row *dueRow, postErr error, log *slog.Logger) {
	db := o.st.DB.WithContext(ctx)
	now := o.opts.Now().UTC()

	if runCtx.Err() != nil {
		err := db.Model(&store.CommitStatus{}).Where("id = ? AND version = ?", row.ID, row.Version).
			Update("next_attempt_at", now).Error
		if err != nil {
			log.Error("release commit status at shutdown", "err", err)
		}
		return
	}

	attempt := row.Attempts + 1
	retryIn := o.backoff(attempt)
	msg := cutBytes(postErr.Error(), maxLastError)
	err := db.Model(&store.CommitStatus{}).Where("id = ? AND version = ?", row.ID, row.Version).Updates(map[string]any{
		"attempts":        attempt,
		"next_attempt_at": now.Add(retryIn),
		"last_error":      msg,
	}).Error
	if err != nil {
		log.Error("record failed commit status post", "err", err)
	}

	// A forge that rejects the request (bad token, missing repository)
	// needs an operator; an unreachable or failing forge needs patience.
	var fe *forge.Error
	if errors.As(postErr, &fe) && !fe.Temporary() || errors.Is(postErr, forge.ErrInvalidState) {
		log.Error("forge rejected commit status, will retry", "attempt", attempt, "retry_in", retryIn, "err", postErr)
		return
	}
	log.Warn("post commit status failed, will retry", "attempt", attempt, "retry_in", retryIn, "err", postErr)
}

// backoff returns the wait after the attempt-th failed post: MinBackoff
// doubled per earlier failure, capped at MaxBackoff.
func (o *Outbox) backoff(attempt int) time.Duration {
	d := o.opts.MinBackoff
	for i := 1; i < attempt && d < o.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, o.opts.MaxBackoff)
}

// cutBytes returns at most n bytes of s, cut on a character boundary so the
// result stays valid UTF-8, which PostgreSQL requires of a text column.
func cutBytes(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
