package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang/snappy"
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
	if len(events) == 0 {
		return nil
	}
	chunks, err := chunkEvents(runID, events)
	if err != nil {
		return err
	}
	for _, c := range chunks {
		// A plain INSERT, because GORM's Create would reflect over the
		// struct for a row that is mostly one big value.
		err := tx.Exec("INSERT INTO run_event_chunks (run_id, first_seq, last_seq, job_name, data) VALUES (?, ?, ?, ?, ?)",
			c.RunID, c.FirstSeq, c.LastSeq, c.JobName, c.Data).Error
		if err != nil {
			return fmt.Errorf("insert events %d to %d of run %d: %w", c.FirstSeq, c.LastSeq, runID, err)
		}
	}
	last := events[len(events)-1].Seq
	if err := tx.Model(&Run{}).Where("id = ?", runID).Update("last_seq", last).Error; err != nil {
		return fmt.Errorf("advance last_seq of run %d: %w", runID, err)
	}
	return nil
}

// chunkEvents groups events into chunks of consecutive sequence numbers of
// one job, each at most maxChunkBytes of text unless one event alone is
// larger, and compresses each chunk's text.
func chunkEvents(runID uint, events []RunEvent) ([]RunEventChunk, error) {
	var chunks []RunEventChunk
	text := make([]byte, 0, maxChunkBytes)
	startAt := 0
	emit := func(end int) {
		chunks = append(chunks, RunEventChunk{
			RunID: runID, FirstSeq: events[startAt].Seq, LastSeq: events[end-1].Seq,
			JobName: events[startAt].JobName, Data: snappy.Encode(nil, text),
		})
		text, startAt = text[:0], end
	}
	for i, ev := range events {
		if strings.IndexByte(ev.Data, '\n') >= 0 {
			return nil, fmt.Errorf("store event %d of run %d: its data has a newline; an event is one JSON line", ev.Seq, runID)
		}
		if i > startAt {
			prev := events[i-1]
			if ev.JobName != prev.JobName || ev.Seq != prev.Seq+1 || len(text)+1+len(ev.Data) > maxChunkBytes {
				emit(i)
			}
		}
		if i > startAt {
			text = append(text, '\n')
		}
		text = append(text, ev.Data...)
	}
	emit(len(events))
	return chunks, nil
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
