package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.starlark.net/starlark"

	"github.com/octavo-ci/octavo/runner/pipeline"
	"github.com/octavo-ci/octavo/schema"
)

// MaxOutputBytes bounds the JSON form of a job's outputs, so that its
// job_finished event stays well below the 4 MiB line limit of the
// sidecar's reader.
const MaxOutputBytes = 1 << 20

// errJobTimeout is the cause of a job stopped by its own timeout.
var errJobTimeout = errors.New("job timed out")

// runJob calls j's run function with a fresh ctx object and reports the
// job's events after job_started, which the scheduler emits. outputs holds
// the outputs of j's ancestor jobs.
func (e *engine) runJob(ctx context.Context, j *pipeline.Job, outputs map[string]*starlark.Dict) jobResult {
	began := time.Now()
	e.log.InfoContext(ctx, "job started", "job", j.ID)

	if j.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, j.Timeout, fmt.Errorf("%w after %s", errJobTimeout, j.Timeout))
		defer cancel()
	}

	jc := newJobContext(ctx, e, j, outputs)
	thread := &starlark.Thread{
		Name: "job " + j.ID,
		Print: func(_ *starlark.Thread, msg string) {
			_ = e.emit(&schema.Log{JobID: j.ID, Level: schema.LevelInfo, Message: msg})
		},
	}
	limited := pipeline.LimitSteps(thread, e.cfg.MaxSteps)
	// A timeout or a stopped run also interrupts pure Starlark code, which
	// never reaches a step that would notice the context.
	stop := context.AfterFunc(ctx, func() { thread.Cancel(context.Cause(ctx).Error()) })
	defer stop()

	ret, err := starlark.Call(thread, j.Run, starlark.Tuple{jc.value()}, nil)

	res := jobResult{id: j.ID}
	finished := &schema.JobFinished{JobID: j.ID}
	switch {
	case ctx.Err() != nil:
		res.outcome = schema.JobFailed
		finished.Error = context.Cause(ctx).Error()
	case err != nil && *limited:
		res.outcome = schema.JobFailed
		finished.Error = e.located(err, fmt.Sprintf("run function stopped: %v (%d steps); look for an endless loop", pipeline.ErrStepLimit, e.cfg.MaxSteps))
	case err != nil:
		res.outcome = schema.JobFailed
		finished.Error = e.located(err, pipeline.Message(err))
	default:
		res.outcome, res.outputs, finished.Outputs, finished.Error = e.judgeReturn(ret, jc.steps)
	}
	finished.Outcome = res.outcome

	e.log.InfoContext(ctx, "job finished", "job", j.ID, "outcome", string(res.outcome), "duration", time.Since(began))
	_ = e.emit(finished)
	return res
}

// judgeReturn turns a run function's return value into the job's outcome,
// frozen outputs, and outputs for the event.
func (e *engine) judgeReturn(ret starlark.Value, steps int) (schema.JobOutcome, *starlark.Dict, map[string]any, string) {
	switch v := ret.(type) {
	case starlark.NoneType:
		if steps == 0 {
			return schema.JobSkipped, nil, nil, ""
		}
		return schema.JobSucceeded, starlark.NewDict(0), nil, ""
	case *starlark.Dict:
		converted, err := toJSON(v, "")
		if err != nil {
			return schema.JobFailed, nil, nil, fmt.Sprintf("%s: invalid outputs: %v", e.p.File, err)
		}
		if encoded, err := json.Marshal(converted); err != nil || len(encoded) > MaxOutputBytes {
			return schema.JobFailed, nil, nil, fmt.Sprintf("%s: outputs are too large (%d bytes of JSON, limit %d); keep large data in files in the workspace and return their paths", e.p.File, len(encoded), MaxOutputBytes)
		}
		v.Freeze()
		return schema.JobSucceeded, v, converted.(map[string]any), ""
	default:
		return schema.JobFailed, nil, nil, fmt.Sprintf("%s: run function returned a %s; return a dict of outputs, or None", e.p.File, ret.Type())
	}
}

// located formats msg with the innermost pipeline file position of err.
func (e *engine) located(err error, msg string) string {
	pos := pipeline.Position(err, e.p.File)
	return fmt.Sprintf("%s:%d: %s", pos.Filename(), pos.Line, msg)
}
