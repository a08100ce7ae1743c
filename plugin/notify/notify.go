// Package notify defines how the parts of the sidecar learn about runs as
// they change: the commit status outbox inside the transaction that changes a
// run, and the live websocket hub after events are committed.
package notify

import (
	"gorm.io/gorm"

	"github.com/octavo-ci/octavo/plugin/store"
)

// RunObserver receives a run's state change inside the transaction that
// makes it, so a durable write such as the commit status outbox commits or
// rolls back together with the run. RunChanged must use only tx for database
// access and must not block on anything else. It is called for a queued run
// once its pipeline file was found, when the run becomes active, and for every
// final state except [store.RunSkipped].
type RunObserver interface {
	RunChanged(tx *gorm.DB, run *store.Run) error
}

// JobObserver receives, inside the ingesting transaction, the start and the
// end of each job of an active run.
type JobObserver interface {
	JobChanged(tx *gorm.DB, run *store.Run, job *store.Job) error
}

// LiveSink receives what was committed, in order, for viewers of a run.
// Implementations must return quickly: ingestion calls them on its own path.
type LiveSink interface {
	// Watched reports whether the run has viewers now. Ingestion calls it
	// after a commit and skips Publish when it is false: a viewer who
	// arrives later reads those events from the store.
	Watched(runID uint) bool
	// Publish hands over events of one run that were just committed, in
	// ascending Seq order. Events are left out only while the run is not
	// watched.
	Publish(runID uint, events []store.RunEvent)
	// RunChanged reports a committed change of the run's state or fields.
	// After a final state no further Publish calls for that run follow.
	RunChanged(run store.Run)
}
