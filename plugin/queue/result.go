package queue

import (
	"errors"
	"fmt"
	"os/exec"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/schema"
)

// outcome is a run's final state as the worker stores it.
type outcome struct {
	state  store.RunState
	kind   store.FailureKind
	reason string
}

// toOutcome maps the runner's exit and the last event of its stream to the
// run's result:
//
//	exit 0, run_finished success           -> complete
//	exit 0, run_finished pipeline_failure  -> failed / pipeline-failure
//	exit 0, no run_finished last           -> failed / process-crashed
//	non-zero exit or a signal              -> failed / process-crashed
//	stopped by the run timeout             -> failed / timed-out
//
// timedOut wins over everything else because the runner was killed.
func toOutcome(waitErr error, finished *schema.RunFinished, timedOut bool) outcome {
	if timedOut {
		return outcome{state: store.RunFailed, kind: store.FailureTimedOut, reason: "run timed out"}
	}
	if waitErr != nil {
		var exitErr *exec.ExitError
		reason := "runner failed: " + waitErr.Error()
		if errors.As(waitErr, &exitErr) {
			reason = "runner " + exitErr.ProcessState.String()
		}
		return outcome{state: store.RunFailed, kind: store.FailureProcessCrashed, reason: reason}
	}
	if finished == nil {
		return outcome{state: store.RunFailed, kind: store.FailureProcessCrashed, reason: "runner exited without run_finished"}
	}
	switch finished.Outcome {
	case schema.RunSuccess:
		return outcome{state: store.RunComplete}
	case schema.RunPipelineFailure:
		reason := dropNUL(finished.Error)
		if reason == "" {
			reason = "pipeline failed"
		}
		return outcome{state: store.RunFailed, kind: store.FailurePipeline, reason: reason}
	default:
		return outcome{state: store.RunFailed, kind: store.FailureProcessCrashed, reason: fmt.Sprintf("runner reported unknown outcome %q", finished.Outcome)}
	}
}
