package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// maxChunkBytes bounds the uncompressed text of one stored chunk, so a
// reader that wants a few events of a chunk never decodes megabytes for
// them.
const maxChunkBytes = 256 << 10

// AppendEvents stores events of one run, numbered by the caller from
// runs.last_seq+1 upwards, and advances runs.last_seq to the last one.
// Consecutive events of one job become one [RunEventChunk] row. An event's
// Data must be one line without a newline.
func AppendEvents(tx *gorm.DB, runID uint, events []RunEvent) error {
	w := NewChunkWriter(tx, runID)
	for _, ev := range events {
		if strings.IndexByte(ev.Data, '\n') >= 0 {
			return fmt.Errorf("store event %d of run %d: its data has a newline; an event is one JSON line", ev.Seq, runID)
		}
		if err := w.Add(ev.Seq, ev.JobName, []byte(ev.Data), 1); err != nil {
			return err
		}
	}
	return w.Close()
}

// ChunkWriter stores a run's events inside one transaction as
// [RunEventChunk] rows: runs of consecutive events of one job, at most
// maxChunkBytes of text each unless one event alone is larger, compressed
// with S2. Callers add events in ascending Seq order, numbered from
// runs.last_seq+1 upwards, and Close the writer before the transaction
// commits.
type ChunkWriter struct {
	tx    *gorm.DB
	runID uint

	// text is the pending chunk's text: the text given to Add while the
	// chunk has one part, or own once parts are joined, so that a large
	// part is compressed where it lies rather than copied first.
	text        []byte
	joined      bool
	own, dst    []byte
	first, last int64 // the pending chunk's events; last is 0 for none
	job         string
	lastStored  int64
}

// NewChunkWriter returns a writer that inserts through tx.
func NewChunkWriter(tx *gorm.DB, runID uint) *ChunkWriter {
	return &ChunkWriter{tx: tx, runID: runID}
}

// Reset makes w insert through tx, in a transaction after an earlier
// one, keeping its buffers. Whatever the earlier transaction left pending
// is dropped: after a failed insert it was rolled back, and its text may
// lie in buffers the caller has reused since.
func (w *ChunkWriter) Reset(tx *gorm.DB) {
	w.tx, w.lastStored = tx, 0
	w.text, w.joined, w.last = nil, false, 0
}

// Add queues count events of job numbered from first: text is their
// lines joined by newlines, without a trailing one. The writer may keep
// text until Close, so the caller must not change it before then. A chunk
// is inserted once the next event cannot join it.
func (w *ChunkWriter) Add(first int64, job string, text []byte, count int) error {
	if count <= 0 {
		return nil
	}
	// Split a part larger than a chunk at its last line break that fits.
	for count > 1 && len(text) > maxChunkBytes {
		cut := bytes.LastIndexByte(text[:maxChunkBytes+1], '\n')
		if cut < 0 {
			cut = bytes.IndexByte(text, '\n')
		}
		n := bytes.Count(text[:cut], []byte{'\n'}) + 1
		if err := w.Add(first, job, text[:cut], n); err != nil {
			return err
		}
		first, text, count = first+int64(n), text[cut+1:], count-n
	}
	if w.last > 0 {
		if job == w.job && first == w.last+1 && len(w.text)+1+len(text) <= maxChunkBytes {
			if !w.joined {
				w.own, w.joined = append(w.own[:0], w.text...), true
			}
			w.own = append(append(w.own, '\n'), text...)
			w.text = w.own
			w.last = first + int64(count) - 1
			return nil
		}
		if err := w.flush(); err != nil {
			return err
		}
	}
	w.text, w.first, w.last, w.job = text, first, first+int64(count)-1, job
	return nil
}

func (w *ChunkWriter) flush() error {
	if w.last == 0 {
		return nil
	}
	w.dst = s2.Encode(w.dst[:cap(w.dst)], w.text)
	// A plain INSERT, because GORM's Create would reflect over the struct
	// for a row that is mostly one big value.
	err := w.tx.Exec("INSERT INTO run_event_chunks (run_id, first_seq, last_seq, job_name, data) VALUES (?, ?, ?, ?, ?)",
		w.runID, w.first, w.last, w.job, w.dst).Error
	if err != nil {
		return fmt.Errorf("insert events %d to %d of run %d: %w", w.first, w.last, w.runID, err)
	}
	w.lastStored = w.last
	w.text, w.joined, w.last = nil, false, 0
	return nil
}

// Close inserts the pending chunk and advances runs.last_seq to the last
// event stored.
func (w *ChunkWriter) Close() error {
	if err := w.flush(); err != nil {
		return err
	}
	if w.lastStored == 0 {
		return nil
	}
	if err := w.tx.Model(&Run{}).Where("id = ?", w.runID).Update("last_seq", w.lastStored).Error; err != nil {
		return fmt.Errorf("advance last_seq of run %d: %w", w.runID, err)
	}
	return nil
}

// CreateJobs inserts the jobs of a run's graph; a job that exists (a second
// run_started) is left as it is.
func CreateJobs(tx *gorm.DB, jobs []Job) error {
	if len(jobs) == 0 {
		return nil
	}
	err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "run_id"}, {Name: "name"}}, DoNothing: true}).Create(&jobs).Error
	if err != nil {
		return fmt.Errorf("insert jobs of run %d: %w", jobs[0].RunID, err)
	}
	return nil
}

// UpdateJob sets a job's state, error and timestamps, creating the job when
// the runner never announced it, and returns the job as stored.
func UpdateJob(tx *gorm.DB, runID uint, name, state, reason string, started, finished *time.Time) (*Job, error) {
	var j Job
	err := tx.Where("run_id = ? AND name = ?", runID, name).Take(&j).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		j = Job{RunID: runID, Name: name, Inputs: "[]", Position: -1}
	} else if err != nil {
		return nil, fmt.Errorf("find job %s of run %d: %w", name, runID, err)
	}

	j.State = state
	if reason != "" {
		j.Error = reason
	}
	if started != nil {
		j.StartedAt = started
	}
	if finished != nil {
		j.FinishedAt = finished
	}
	if err := tx.Save(&j).Error; err != nil {
		return nil, fmt.Errorf("save job %s of run %d: %w", name, runID, err)
	}
	return &j, nil
}

// StartStep inserts a step; a repeated sh_started for the same step
// replaces its command and start time.
func StartStep(tx *gorm.DB, s *Step) error {
	err := tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "run_id"}, {Name: "job_name"}, {Name: "seq"}},
		DoUpdates: clause.AssignmentColumns([]string{"cmd", "started_at"}),
	}).Create(s).Error
	if err != nil {
		return fmt.Errorf("insert step %s/%d of run %d: %w", s.JobName, s.Seq, s.RunID, err)
	}
	return nil
}

// FinishStep records a step's exit code and end time, creating the step
// when its sh_started was lost.
func FinishStep(tx *gorm.DB, s *Step) error {
	err := tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "run_id"}, {Name: "job_name"}, {Name: "seq"}},
		DoUpdates: clause.AssignmentColumns([]string{"exit_code", "error", "finished_at"}),
	}).Create(s).Error
	if err != nil {
		return fmt.Errorf("finish step %s/%d of run %d: %w", s.JobName, s.Seq, s.RunID, err)
	}
	return nil
}

// EventsAfter returns up to limit events of a run with Seq > after, in
// order.
func EventsAfter(ctx context.Context, db *gorm.DB, runID uint, after int64, limit int) ([]RunEvent, error) {
	evs, err := pageEvents(ctx, db, EventPage{RunID: runID, After: after, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("read events of run %d: %w", runID, err)
	}
	return evs, nil
}

// JobsAndSteps returns the jobs of a run in graph order and its steps in
// job and sequence order.
func JobsAndSteps(ctx context.Context, db *gorm.DB, runID uint) ([]Job, []Step, error) {
	var jobs []Job
	if err := db.WithContext(ctx).Where("run_id = ?", runID).Order("position, id").Find(&jobs).Error; err != nil {
		return nil, nil, fmt.Errorf("read jobs of run %d: %w", runID, err)
	}
	var steps []Step
	if err := db.WithContext(ctx).Where("run_id = ?", runID).Order("job_name, seq").Find(&steps).Error; err != nil {
		return nil, nil, fmt.Errorf("read steps of run %d: %w", runID, err)
	}
	return jobs, steps, nil
}
