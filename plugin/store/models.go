package store

import "time"

// RunState is the life-cycle state of a run. The values are stored and
// shown on the status page.
type RunState string

// Run states. Queued and Active are the only states a run leaves; every other
// state is final.
const (
	RunQueued   RunState = "queued"
	RunActive   RunState = "active"
	RunComplete RunState = "complete"
	RunFailed   RunState = "failed"
	RunReplaced RunState = "replaced"
	RunCanceled RunState = "canceled"
	// RunSkipped is a run whose commit has no pipeline file. It gets no
	// commit status.
	RunSkipped RunState = "skipped"
)

// Final reports whether s is a state a run never leaves.
func (s RunState) Final() bool {
	return s != RunQueued && s != RunActive
}

// FailureKind is the reason a run in state [RunFailed] failed.
type FailureKind string

// Failure kinds. Only FailurePipeline is the pipeline's own fault; the others
// are operational errors and are reported to the forge as "error".
const (
	FailureNone           FailureKind = ""
	FailurePipeline       FailureKind = "pipeline-failure"
	FailureProcessCrashed FailureKind = "process-crashed"
	FailureTimedOut       FailureKind = "timed-out"
	FailureOrphaned       FailureKind = "orphaned"
	FailureCloneFailed    FailureKind = "clone-failed"
)

// Repo is a forge repository that sent us at least one delivery. FullName is
// "owner/name" as the forge spells it.
type Repo struct {
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

// Delivery records one webhook delivery by the forge's delivery id, so a
// redelivery creates nothing new. Result is a short text such as
// "queued run 12" or "ignored: status event".
type Delivery struct {
	ID           uint   `gorm:"primaryKey"`
	DeliveryID   string `gorm:"uniqueIndex;not null"`
	Event        string `gorm:"not null"`
	RepoFullName string
	Result       string
	CreatedAt    time.Time
}

// Run is one execution of a repository's pipeline for one pushed ref. The
// runs table is also the queue: workers take the oldest queued run.
type Run struct {
	ID     uint `gorm:"primaryKey"`
	RepoID uint `gorm:"not null;index"`
	Repo   Repo `gorm:"constraint:OnDelete:CASCADE"`

	// Ref is the full git ref ("refs/heads/main", "refs/tags/v1"). Exactly one
	// of Branch and Tag is set.
	Ref        string `gorm:"not null;index:idx_runs_repo_ref,priority:2"`
	Branch     string `gorm:"index"`
	Tag        string
	SHA        string `gorm:"not null"`
	Before     string
	Pusher     string
	Message    string
	CompareURL string
	// Payload is the JSON object the pipeline reads as ctx.input("octavo/push").
	Payload    string
	DeliveryID string

	State       RunState    `gorm:"not null;index"`
	FailureKind FailureKind `gorm:"not null;default:''"`
	// Error is a one-line reason for a failed, canceled or skipped run.
	Error      string
	ReplacedBy *uint
	// Attempt counts how often a worker took this run; start-up
	// reconciliation re-queues an unfinished run only once.
	Attempt int    `gorm:"not null;default:0"`
	Worker  string // the worker (and replica) that took the run
	// LastSeq is the highest event sequence number stored for this run.
	LastSeq int64 `gorm:"not null;default:0"`

	CreatedAt  time.Time `gorm:"index"`
	UpdatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// Job is one job of a run, created from the runner's run_started event.
// State is "pending" until job_started, then "running", then the job's
// outcome (succeeded, failed, skipped).
type Job struct {
	ID           uint   `gorm:"primaryKey"`
	RunID        uint   `gorm:"not null;uniqueIndex:idx_jobs_run_name"`
	Name         string `gorm:"not null;uniqueIndex:idx_jobs_run_name"`
	Position     int    `gorm:"not null"`
	Inputs       string `gorm:"not null"` // JSON array of input names
	AllowFailure bool   `gorm:"not null;default:false"`
	State        string `gorm:"not null"`
	Error        string
	StartedAt    *time.Time
	FinishedAt   *time.Time
}

// Step is one ctx.sh call of a job. Seq counts from 1 within the job.
// ExitCode is nil while the step runs.
type Step struct {
	ID         uint   `gorm:"primaryKey"`
	RunID      uint   `gorm:"not null;uniqueIndex:idx_steps_run_job_seq"`
	JobName    string `gorm:"not null;uniqueIndex:idx_steps_run_job_seq"`
	Seq        int    `gorm:"not null;uniqueIndex:idx_steps_run_job_seq"`
	Cmd        string `gorm:"not null"`
	ExitCode   *int
	Error      string
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// RunEvent is one event of a run's stream as the runner wrote it. Seq is the
// run's own sequence number, starting at 1; the log API and the live
// websocket page by it. Data is the event's JSON line; the other fields
// repeat what readers filter and render by. Events are stored in
// [RunEventChunk] rows, not one row each.
type RunEvent struct {
	RunID   uint
	Seq     int64
	Type    string
	JobName string
	AtMs    int64
	Data    string
}

// RunEventChunk stores consecutive events FirstSeq..LastSeq of one run that
// all belong to job JobName ("" for the run's own events). Data is their
// JSON lines exactly as the runner wrote them, joined by newlines and
// compressed in S2's block format, so line i (from 0) of the decompressed
// text is event FirstSeq+i. Rows written before S2 contain Snappy
// blocks, which S2's decoder reads as well. Chunks of a run never overlap.
// Storing a batch of lines as one compressed row is what lets ingestion
// keep up with a step that prints millions of lines: the JSON of output
// lines repeats itself, and writing it uncompressed cost SQLite more time
// than the runner took to produce it.
type RunEventChunk struct {
	RunID    uint   `gorm:"primaryKey;autoIncrement:false;index:idx_run_event_chunks_job,priority:1"`
	FirstSeq int64  `gorm:"primaryKey;autoIncrement:false;index:idx_run_event_chunks_job,priority:3"`
	LastSeq  int64  `gorm:"not null"`
	JobName  string `gorm:"not null;index:idx_run_event_chunks_job,priority:2"`
	Data     []byte `gorm:"not null"`
}

// CommitStatus is the outbox row for one (repository, commit, context): the
// newest status we want the forge to show. Writers bump Version with every
// change; the sender posts a row while SentVersion < Version and then records
// the version it delivered, so an older state never overwrites a newer one.
type CommitStatus struct {
	ID            uint      `gorm:"primaryKey"`
	RepoID        uint      `gorm:"not null;uniqueIndex:idx_commit_statuses_key,priority:1"`
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
