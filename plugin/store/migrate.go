package store

import (
	"context"
	"fmt"
	"time"

	"github.com/klauspost/compress/s2"
	"gorm.io/gorm"
)

// migration is one versioned schema change. A migration that has shipped is
// never edited: a change to the schema is a new migration appended to
// [migrations]. Each one declares the tables it touches with its own frozen
// struct types, so later edits to the models in models.go cannot change
// what an old migration does.
type migration struct {
	ID      string
	Migrate func(tx *gorm.DB) error
}

// schemaMigration records an applied migration.
type schemaMigration struct {
	ID        string `gorm:"primaryKey"`
	AppliedAt time.Time
}

func (schemaMigration) TableName() string { return "schema_migrations" }

// migrations lists every migration in the order it is applied.
var migrations = []migration{
	{ID: "0001_initial", Migrate: migrateInitial},
	{ID: "0002_pending_status_index", Migrate: migratePendingStatusIndex},
	{ID: "0003_run_event_chunks", Migrate: migrateEventChunks},
	{ID: "0004_run_ref_state_index", Migrate: migrateRunRefStateIndex},
}

// migrate applies the pending migrations, each in its own transaction.
func (s *Store) migrate(ctx context.Context) error {
	db := s.DB.WithContext(ctx)
	if err := db.AutoMigrate(&schemaMigration{}); err != nil {
		return fmt.Errorf("create schema_migrations table: %w", err)
	}

	var applied []schemaMigration
	if err := db.Find(&applied).Error; err != nil {
		return fmt.Errorf("read applied migrations: %w", err)
	}
	done := make(map[string]bool, len(applied))
	for _, m := range applied {
		done[m.ID] = true
	}

	known := make(map[string]bool, len(migrations))
	for _, m := range migrations {
		known[m.ID] = true
	}
	for id := range done {
		if !known[id] {
			return fmt.Errorf("database has migration %q that this octavo does not know: it was written by a newer version; upgrade octavo", id)
		}
	}

	for _, m := range migrations {
		if done[m.ID] {
			continue
		}
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := m.Migrate(tx); err != nil {
				return err
			}
			return tx.Create(&schemaMigration{ID: m.ID, AppliedAt: time.Now().UTC()}).Error
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.ID, err)
		}
	}
	return nil
}

// migrateInitial creates the first schema.
func migrateInitial(tx *gorm.DB) error {
	type repo struct {
		ID            uint   `gorm:"primaryKey"`
		FullName      string `gorm:"uniqueIndex;not null"`
		Owner         string `gorm:"not null"`
		Name          string `gorm:"not null"`
		Private       bool   `gorm:"not null;default:false"`
		DefaultBranch string
		CloneURL      string
		HTMLURL       string
		CreatedAt     time.Time
		UpdatedAt     time.Time
	}
	type delivery struct {
		ID           uint   `gorm:"primaryKey"`
		DeliveryID   string `gorm:"uniqueIndex;not null"`
		Event        string `gorm:"not null"`
		RepoFullName string
		Result       string
		CreatedAt    time.Time
	}
	type run struct {
		ID          uint   `gorm:"primaryKey"`
		RepoID      uint   `gorm:"not null;index;index:idx_runs_repo_ref,priority:1"`
		Repo        repo   `gorm:"constraint:OnDelete:CASCADE"`
		Ref         string `gorm:"not null;index:idx_runs_repo_ref,priority:2"`
		Branch      string `gorm:"index"`
		Tag         string
		SHA         string `gorm:"not null"`
		Before      string
		Pusher      string
		Message     string
		CompareURL  string
		Payload     string
		DeliveryID  string
		State       string `gorm:"not null;index"`
		FailureKind string `gorm:"not null;default:''"`
		Error       string
		ReplacedBy  *uint
		Attempt     int `gorm:"not null;default:0"`
		Worker      string
		LastSeq     int64     `gorm:"not null;default:0"`
		CreatedAt   time.Time `gorm:"index"`
		UpdatedAt   time.Time
		StartedAt   *time.Time
		FinishedAt  *time.Time
	}
	type job struct {
		ID           uint   `gorm:"primaryKey"`
		RunID        uint   `gorm:"not null;uniqueIndex:idx_jobs_run_name"`
		Run          run    `gorm:"constraint:OnDelete:CASCADE"`
		Name         string `gorm:"not null;uniqueIndex:idx_jobs_run_name"`
		Position     int    `gorm:"not null"`
		Inputs       string `gorm:"not null"`
		AllowFailure bool   `gorm:"not null;default:false"`
		State        string `gorm:"not null"`
		Error        string
		StartedAt    *time.Time
		FinishedAt   *time.Time
	}
	type step struct {
		ID         uint   `gorm:"primaryKey"`
		RunID      uint   `gorm:"not null;uniqueIndex:idx_steps_run_job_seq"`
		Run        run    `gorm:"constraint:OnDelete:CASCADE"`
		JobName    string `gorm:"not null;uniqueIndex:idx_steps_run_job_seq"`
		Seq        int    `gorm:"not null;uniqueIndex:idx_steps_run_job_seq"`
		Cmd        string `gorm:"not null"`
		ExitCode   *int
		Error      string
		StartedAt  *time.Time
		FinishedAt *time.Time
	}
	type runEvent struct {
		RunID   uint   `gorm:"primaryKey;autoIncrement:false"`
		Run     run    `gorm:"constraint:OnDelete:CASCADE"`
		Seq     int64  `gorm:"primaryKey;autoIncrement:false"`
		Type    string `gorm:"not null"`
		JobName string `gorm:"index:idx_run_events_job,priority:2"`
		AtMs    int64  `gorm:"not null"`
		Data    string `gorm:"not null"`
	}
	type commitStatus struct {
		ID            uint      `gorm:"primaryKey"`
		RepoID        uint      `gorm:"not null;uniqueIndex:idx_commit_statuses_key,priority:1"`
		Repo          repo      `gorm:"constraint:OnDelete:CASCADE"`
		SHA           string    `gorm:"not null;uniqueIndex:idx_commit_statuses_key,priority:2"`
		Context       string    `gorm:"not null;uniqueIndex:idx_commit_statuses_key,priority:3"`
		RunID         uint      `gorm:"not null"`
		State         string    `gorm:"not null"`
		Description   string    `gorm:"not null"`
		TargetURL     string    `gorm:"not null"`
		Version       int64     `gorm:"not null"`
		SentVersion   int64     `gorm:"not null;default:0"`
		Attempts      int       `gorm:"not null;default:0"`
		NextAttemptAt time.Time `gorm:"not null;index"`
		LastError     string
		SentAt        *time.Time
		CreatedAt     time.Time
		UpdatedAt     time.Time
	}

	// GORM derives each table name from the type name (repo -> repos), and
	// the foreign keys from the embedded parent structs.
	tables := []struct {
		name  string
		model any
	}{
		{"repos", &repo{}},
		{"deliveries", &delivery{}},
		{"runs", &run{}},
		{"jobs", &job{}},
		{"steps", &step{}},
		{"run_events", &runEvent{}},
		{"commit_statuses", &commitStatus{}},
	}
	for _, t := range tables {
		if err := tx.AutoMigrate(t.model); err != nil {
			return fmt.Errorf("create table %s: %w", t.name, err)
		}
	}
	return nil
}

// migrateEventChunks replaces the run_events table, one row per event, with
// run_event_chunks, one row per batch of consecutive events of one job
// (see [RunEventChunk]). Existing events move over as chunks of one event
// each, which readers handle like any other chunk.
func migrateEventChunks(tx *gorm.DB) error {
	type run struct {
		ID uint `gorm:"primaryKey"`
	}
	type runEventChunk struct {
		RunID    uint   `gorm:"primaryKey;autoIncrement:false;index:idx_run_event_chunks_job,priority:1"`
		Run      run    `gorm:"constraint:OnDelete:CASCADE"`
		FirstSeq int64  `gorm:"primaryKey;autoIncrement:false;index:idx_run_event_chunks_job,priority:3"`
		LastSeq  int64  `gorm:"not null"`
		JobName  string `gorm:"not null;index:idx_run_event_chunks_job,priority:2"`
		Data     []byte `gorm:"not null"`
	}
	type runEvent struct {
		RunID   uint
		Seq     int64
		JobName string
		Data    string
	}
	if err := tx.AutoMigrate(&runEventChunk{}); err != nil {
		return fmt.Errorf("create table run_event_chunks: %w", err)
	}
	if !tx.Migrator().HasTable("run_events") {
		return nil
	}
	// Page by primary key; the loop ends when a page comes back short.
	var lastRun uint
	var lastSeq int64
	for {
		var page []runEvent
		err := tx.Table("run_events").Select("run_id, seq, job_name, data").
			Where("run_id > ? OR (run_id = ? AND seq > ?)", lastRun, lastRun, lastSeq).
			Order("run_id, seq").Limit(1000).Find(&page).Error
		if err != nil {
			return fmt.Errorf("read run_events: %w", err)
		}
		if len(page) == 0 {
			break
		}
		chunks := make([]runEventChunk, len(page))
		for i, ev := range page {
			chunks[i] = runEventChunk{RunID: ev.RunID, FirstSeq: ev.Seq, LastSeq: ev.Seq, JobName: ev.JobName, Data: s2.Encode(nil, []byte(ev.Data))}
		}
		if err := tx.Omit("Run").Create(&chunks).Error; err != nil {
			return fmt.Errorf("move run_events into run_event_chunks: %w", err)
		}
		lastRun, lastSeq = page[len(page)-1].RunID, page[len(page)-1].Seq
		if len(page) < 1000 {
			break
		}
	}
	if err := tx.Migrator().DropTable("run_events"); err != nil {
		return fmt.Errorf("drop table run_events: %w", err)
	}
	return nil
}
