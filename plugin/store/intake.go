package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// IntakeStmts are the statements webhook intake runs for every delivery,
// prepared once on the connection pool and run inside a caller's
// transaction. They bypass GORM on purpose: intake is the hottest write
// path, and there GORM's reflection and statement building cost more than
// SQLite's work, while its prepared-statement cache prepares a statement
// again in every transaction. [InsertDelivery], [CreateRun] and [StopRuns]
// do the same through GORM, and a change to one must go to both.
//
// The statements are safe for concurrent use; Close them before the store.
type IntakeStmts struct {
	insertDelivery *sql.Stmt
	setResult      *sql.Stmt
	insertRun      *sql.Stmt
	findStoppable  *sql.Stmt
	stopRun        *sql.Stmt
}

// runColumns lists every column of runs in the order [scanRun] reads.
// "before" is quoted because it is a keyword in SQLite.
const runColumns = `id, repo_id, ref, branch, tag, sha, "before", pusher, message, compare_url, payload, delivery_id,
state, failure_kind, error, replaced_by, attempt, worker, last_seq, created_at, updated_at, started_at, finished_at`

// findStoppableQuery selects the queued and active runs of a ref but one.
const findStoppableQuery = `SELECT ` + runColumns + ` FROM runs
WHERE repo_id = ? AND ref = ? AND state IN (?, ?) AND id <> ?`

// PrepareIntake prepares the intake statements for this store's database.
func (s *Store) PrepareIntake(ctx context.Context) (*IntakeStmts, error) {
	sqlDB, err := s.DB.DB()
	if err != nil {
		return nil, fmt.Errorf("prepare intake statements: %w", err)
	}
	p := &IntakeStmts{}
	for _, st := range []struct {
		dst   **sql.Stmt
		name  string
		query string
	}{
		{&p.insertDelivery, "insert delivery", `INSERT INTO deliveries (delivery_id, event, repo_full_name, result, created_at)
VALUES (?, ?, ?, '', ?) ON CONFLICT (delivery_id) DO NOTHING RETURNING id`},
		{&p.setResult, "set delivery result", `UPDATE deliveries SET result = ? WHERE id = ?`},
		{&p.insertRun, "insert run", `INSERT INTO runs (repo_id, ref, branch, tag, sha, "before", pusher, message, compare_url, payload, delivery_id,
state, failure_kind, error, attempt, worker, last_seq, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', 0, '', 0, ?, ?) RETURNING id`},
		{&p.findStoppable, "find runs to stop", findStoppableQuery},
		{&p.stopRun, "stop run", `UPDATE runs SET state = ?, replaced_by = ?, error = ?, finished_at = ?, updated_at = ?
WHERE id = ? AND state = ?`},
	} {
		q := st.query
		if s.Dialect == "postgres" {
			if st.dst == &p.findStoppable {
				// As in [StopRuns]: lock the rows read, so a worker taking
				// one of them meanwhile is seen as active, not missed.
				q += " FOR UPDATE"
			}
			q = dollarParams(q)
		}
		stmt, err := sqlDB.PrepareContext(ctx, q)
		if err != nil {
			_ = p.Close()
			return nil, fmt.Errorf("prepare intake statement %q: %w", st.name, err)
		}
		*st.dst = stmt
	}
	return p, nil
}

// dollarParams numbers the ? placeholders of q as $1, $2, … for
// PostgreSQL. The intake queries have no ? inside string literals.
func dollarParams(q string) string {
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Close closes the statements that were prepared.
func (p *IntakeStmts) Close() error {
	var errs []error
	for _, s := range []*sql.Stmt{p.insertDelivery, p.setResult, p.insertRun, p.findStoppable, p.stopRun} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// SQLTx returns the database/sql transaction under a GORM transaction
// opened without prepared statements, for [IntakeStmts].
func SQLTx(tx *gorm.DB) (*sql.Tx, error) {
	stx, ok := tx.Statement.ConnPool.(*sql.Tx)
	if !ok {
		return nil, fmt.Errorf("use intake statements: connection is a %T, not a transaction", tx.Statement.ConnPool)
	}
	return stx, nil
}

// InsertDelivery records d with an empty result inside tx and reports
// whether it is new, like [InsertDelivery]; a new row gets d.ID. Store
// its result with [IntakeStmts.SetDeliveryResult].
func (p *IntakeStmts) InsertDelivery(ctx context.Context, tx *sql.Tx, d *Delivery) (bool, error) {
	var id uint
	err := tx.StmtContext(ctx, p.insertDelivery).QueryRowContext(ctx, d.DeliveryID, d.Event, d.RepoFullName, d.CreatedAt).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("insert delivery %s: %w", d.DeliveryID, err)
	}
	d.ID = id
	return true, nil
}

// SetDeliveryResult stores the result text of the delivery row id.
func (p *IntakeStmts) SetDeliveryResult(ctx context.Context, tx *sql.Tx, id uint, result string) error {
	if _, err := tx.StmtContext(ctx, p.setResult).ExecContext(ctx, result, id); err != nil {
		return fmt.Errorf("update delivery %d: %w", id, err)
	}
	return nil
}

// CreateRun inserts r as a queued run inside tx and sets its ID, like
// [CreateRun]. r.CreatedAt and r.UpdatedAt must be set.
func (p *IntakeStmts) CreateRun(ctx context.Context, tx *sql.Tx, r *Run) error {
	r.State = RunQueued
	err := tx.StmtContext(ctx, p.insertRun).QueryRowContext(ctx,
		r.RepoID, r.Ref, r.Branch, r.Tag, r.SHA, r.Before, r.Pusher, r.Message, r.CompareURL, r.Payload, r.DeliveryID,
		r.State, r.CreatedAt, r.UpdatedAt,
	).Scan(&r.ID)
	if err != nil {
		return fmt.Errorf("insert run for %s at %s: %w", r.Ref, r.SHA, err)
	}
	return nil
}

// StopRuns ends every queued or active run of repoID and ref, except the
// run except (0 for none), inside tx. It sets the final state and reason
// given, and ReplacedBy when replacedBy is not nil. It returns the stopped
// runs oldest first, as they are now; PrevState marks the ones that were
// active and need their runner stopped.
func (p *IntakeStmts) StopRuns(ctx context.Context, tx *sql.Tx, repoID uint, ref string, except uint, state RunState, replacedBy *uint, reason string, now time.Time) ([]StoppedRun, error) {
	rows, err := tx.StmtContext(ctx, p.findStoppable).QueryContext(ctx, repoID, ref, RunQueued, RunActive, except)
	if err != nil {
		return nil, fmt.Errorf("find runs of %s to stop: %w", ref, err)
	}
	var runs []Run
	for rows.Next() {
		var r Run
		if err := scanRun(rows, &r); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("find runs of %s to stop: %w", ref, err)
		}
		runs = append(runs, r)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("find runs of %s to stop: %w", ref, err)
	}
	// The query has no ORDER BY because with one SQLite reads every run of
	// the ref through idx_runs_repo_ref instead of the few queued and active
	// ones through idx_runs_repo_ref_state.
	slices.SortFunc(runs, func(a, b Run) int { return cmp.Compare(a.ID, b.ID) })

	out := make([]StoppedRun, 0, len(runs))
	stop := tx.StmtContext(ctx, p.stopRun)
	for i := range runs {
		r := &runs[i]
		prev := r.State
		res, err := stop.ExecContext(ctx, state, replacedBy, reason, now, now, r.ID, prev)
		if err != nil {
			return nil, fmt.Errorf("stop run %d: %w", r.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			continue
		}
		r.State, r.ReplacedBy, r.Error, r.FinishedAt, r.UpdatedAt = state, replacedBy, reason, &now, now
		out = append(out, StoppedRun{Run: *r, PrevState: prev})
	}
	return out, nil
}

// scanRun reads a row of [runColumns] into r.
func scanRun(rows *sql.Rows, r *Run) error {
	var replacedBy sql.Null[int64]
	var startedAt, finishedAt sql.Null[time.Time]
	var state, kind string
	err := rows.Scan(&r.ID, &r.RepoID, &r.Ref, &r.Branch, &r.Tag, &r.SHA, &r.Before, &r.Pusher, &r.Message, &r.CompareURL, &r.Payload, &r.DeliveryID,
		&state, &kind, &r.Error, &replacedBy, &r.Attempt, &r.Worker, &r.LastSeq, &r.CreatedAt, &r.UpdatedAt, &startedAt, &finishedAt)
	if err != nil {
		return err
	}
	r.State, r.FailureKind = RunState(state), FailureKind(kind)
	if replacedBy.Valid {
		id := uint(replacedBy.V)
		r.ReplacedBy = &id
	}
	if startedAt.Valid {
		r.StartedAt = &startedAt.V
	}
	if finishedAt.Valid {
		r.FinishedAt = &finishedAt.V
	}
	return nil
}
