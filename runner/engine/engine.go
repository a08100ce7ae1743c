// Package engine runs a loaded pipeline: it schedules jobs in dependency
// order, calls each run function on its own Starlark thread, runs the
// steps that ctx.sh starts, and reports everything through an
// [events.Sink].
//
// Scheduling: a job starts once all its input jobs succeeded, at most
// Config.Parallel jobs at a time, in declaration order among the jobs that
// are ready. A job whose input job failed or was skipped is skipped without
// being started. The run fails when a job without allow_failure fails.
//
// A run function's return value decides the job's outcome. A dict means
// succeeded with those outputs. None means succeeded without outputs when
// the job ran at least one step, and skipped when it ran none, which is how
// a conditional job returns None before doing anything.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"

	"go.starlark.net/starlark"

	"github.com/octavo-ci/octavo/runner/events"
	"github.com/octavo-ci/octavo/runner/pipeline"
	"github.com/octavo-ci/octavo/runner/step"
	"github.com/octavo-ci/octavo/schema"
)

// Config describes one run.
type Config struct {
	// Workspace is the absolute path of the checked-out repository; steps
	// run there unless ctx.sh sets cwd.
	Workspace string
	// Parallel is the maximum number of jobs running at once; 0 or less
	// means the number of CPUs.
	Parallel int
	// Sources maps source names such as "octavo/push" to their payloads. A
	// known source without a payload reads as a struct of None fields.
	Sources map[string]Payload
	// Secrets maps secret names to values for ctx.secret.
	Secrets map[string]string
	// Env is the base environment of every step and of ctx.env, as
	// "KEY=value". The engine adds CI=true, OCTAVO=true,
	// OCTAVO_WORKSPACE and OCTAVO_JOB.
	Env []string
	// Step tunes step execution.
	Step step.Config
	// MaxSteps limits the Starlark execution steps of each run function
	// call; 0 means pipeline.DefaultMaxSteps.
	MaxSteps uint64
	// Warnings are emitted as runner warnings right after run_started,
	// such as a secret too short to mask.
	Warnings []string
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
}

// ErrEvents is returned, wrapped, when the event stream cannot be written,
// which ends the run without a run_finished event.
var ErrEvents = errors.New("write event stream")

// engine is the state of one run.
type engine struct {
	cfg     Config
	p       *pipeline.Pipeline
	sink    *events.Sink
	log     *slog.Logger
	sources map[string]starlark.Value
	// abort cancels the run when the event stream fails.
	abort context.CancelCauseFunc
}

// jobResult is the outcome a finished or skipped job reports to the
// scheduler.
type jobResult struct {
	id      string
	outcome schema.JobOutcome
	// outputs is the frozen dict of a succeeded job, empty when it returned
	// None.
	outputs *starlark.Dict
}

// Run emits run_started, runs every job of p, and emits run_finished with
// the run's outcome, which it also returns. When ctx is cancelled, Run
// stops every step, emits no run_finished and returns an error wrapping
// context.Cause(ctx). When the sink fails it returns an error wrapping
// [ErrEvents].
func Run(ctx context.Context, p *pipeline.Pipeline, sink *events.Sink, cfg Config) (schema.RunOutcome, error) {
	if cfg.Parallel <= 0 {
		cfg.Parallel = runtime.NumCPU()
	}
	if cfg.MaxSteps == 0 {
		cfg.MaxSteps = pipeline.DefaultMaxSteps
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)

	e := &engine{cfg: cfg, p: p, sink: sink, log: log, abort: abort, sources: map[string]starlark.Value{}}
	for _, name := range pipeline.KnownSources() {
		v, err := sourceValue(name, cfg.Sources[name], sourceFields(name))
		if err != nil {
			return "", err
		}
		e.sources[name] = v
	}

	if err := e.emit(&schema.RunStarted{Jobs: p.Graph()}); err != nil {
		return "", err
	}
	for _, msg := range cfg.Warnings {
		if err := e.emit(&schema.Log{Level: schema.LevelWarn, Message: msg}); err != nil {
			return "", err
		}
	}
	for _, msg := range p.Prints {
		if err := e.emit(&schema.Log{Level: schema.LevelInfo, Message: msg}); err != nil {
			return "", err
		}
	}

	results := e.schedule(ctx)
	if err := sink.Err(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrEvents, err)
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("run stopped: %w", context.Cause(ctx))
	}

	outcome, reason := schema.RunSuccess, ""
	var failed []string
	for _, j := range p.Jobs {
		if r := results[j.ID]; r.outcome == schema.JobFailed && !j.AllowFailure {
			failed = append(failed, fmt.Sprintf("%q", j.ID))
		}
	}
	switch len(failed) {
	case 0:
	case 1:
		outcome, reason = schema.RunPipelineFailure, "job "+failed[0]+" failed"
	default:
		outcome, reason = schema.RunPipelineFailure, "jobs "+strings.Join(failed, ", ")+" failed"
	}
	if err := e.emit(&schema.RunFinished{Outcome: outcome, Error: reason}); err != nil {
		return "", err
	}
	return outcome, nil
}

// schedule runs jobs until every job has a result or ctx is done, and
// returns the results by job id. Only this goroutine reads and writes the
// job states; workers report through done.
func (e *engine) schedule(ctx context.Context) map[string]jobResult {
	results := map[string]jobResult{}
	started := map[string]bool{}
	done := make(chan jobResult)
	running := 0

	for {
		// Skipping a job can make its dependents skippable, so repeat
		// until a pass changes nothing.
		for changed := true; changed && ctx.Err() == nil; {
			changed = false
			for _, j := range e.p.Jobs {
				if started[j.ID] {
					continue
				}
				ready, blocker := e.readiness(j, results)
				switch {
				case blocker != "":
					started[j.ID] = true
					results[j.ID] = jobResult{id: j.ID, outcome: schema.JobSkipped}
					_ = e.emit(&schema.JobFinished{JobID: j.ID, Outcome: schema.JobSkipped, Error: blocker})
					changed = true
				case ready && running < e.cfg.Parallel:
					started[j.ID] = true
					running++
					outputs := e.ancestorOutputs(j, results)
					// Emitted here, not in the worker, so job_started events
					// follow declaration order among jobs that start together.
					_ = e.emit(&schema.JobStarted{JobID: j.ID})
					go func() { done <- e.runJob(ctx, j, outputs) }()
				}
			}
		}

		if running == 0 {
			return results
		}
		r := <-done
		running--
		results[r.id] = r
	}
}

// readiness reports whether all input jobs of j succeeded, or why j must be
// skipped. results is only read here, on the scheduler goroutine.
func (e *engine) readiness(j *pipeline.Job, results map[string]jobResult) (ready bool, blocker string) {
	ready = true
	for _, in := range j.Inputs {
		if pipeline.IsSource(in) {
			continue
		}
		r, ok := results[in]
		switch {
		case !ok:
			ready = false
		case r.outcome == schema.JobFailed:
			return false, fmt.Sprintf("input job %q failed", in)
		case r.outcome == schema.JobSkipped:
			return false, fmt.Sprintf("input job %q was skipped", in)
		}
	}
	return ready, ""
}

// ancestorOutputs collects the outputs of every job j depends on, directly
// or not, for ctx.input. All of them have finished when j is ready.
func (e *engine) ancestorOutputs(j *pipeline.Job, results map[string]jobResult) map[string]*starlark.Dict {
	outputs := map[string]*starlark.Dict{}
	for name := range e.p.Ancestors(j.ID) {
		if r, ok := results[name]; ok {
			outputs[name] = r.outputs
		}
	}
	return outputs
}

// emit writes ev and aborts the run on the first sink error.
func (e *engine) emit(ev any) error {
	if err := e.sink.Emit(ev); err != nil {
		e.abort(fmt.Errorf("%w: %w", ErrEvents, err))
		return fmt.Errorf("%w: %w", ErrEvents, err)
	}
	return nil
}

// emitOutput writes a batch of output lines of one step and, like emit,
// aborts the run on the first sink error.
func (e *engine) emitOutput(jobID string, seq int, stream schema.Stream, lines [][]byte) error {
	if err := e.sink.EmitOutput(jobID, seq, stream, lines); err != nil {
		e.abort(fmt.Errorf("%w: %w", ErrEvents, err))
		return fmt.Errorf("%w: %w", ErrEvents, err)
	}
	return nil
}

// sourceFields returns the attributes a source struct always has.
func sourceFields(name string) []string {
	if name == pipeline.SourcePush {
		return PushFields
	}
	return nil
}

// stepEnv returns the environment of steps and ctx.env for job id.
func (e *engine) stepEnv(id string) []string {
	env := append([]string(nil), e.cfg.Env...)
	return append(env,
		"CI=true",
		"OCTAVO=true",
		"OCTAVO_WORKSPACE="+e.cfg.Workspace,
		"OCTAVO_JOB="+id,
	)
}
