package queue

import "errors"

// Causes with which an active run's context is canceled. The worker reads
// the cause to decide what the run's end means.
var (
	// errReplaced is the cause when a newer push to the same ref replaced
	// the run; the replacing transaction already stored the final state.
	errReplaced = errors.New("run replaced by a newer push")
	// errCanceled is the cause when the run's ref was deleted or a user
	// canceled it; the final state is already stored.
	errCanceled = errors.New("run canceled")
	// errTimedOut is the cause when the run exceeded the run timeout.
	errTimedOut = errors.New("run timed out")
	// errShutdown is the cause when the sidecar stopped before the run
	// ended; the run stays active for start-up reconciliation.
	errShutdown = errors.New("sidecar shutting down")
)
