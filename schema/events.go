// Package schema defines the wire types shared by octavo-runner and the
// octavo sidecar: the JSON-lines event stream a run produces and the
// outcomes it reports. The JSON Schema files in this folder describe the same
// shapes for other consumers and are embedded for tests.
package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Version is the event protocol version carried by [RunStarted]. A consumer
// that gets a newer version still reads the event types it knows.
const Version = 1

// Type names one kind of event. The values are part of the wire format.
type Type string

// Event types, in the order a run emits them. LogMessage may appear between
// JobStarted and JobFinished of the job that logged it.
const (
	TypeRunStarted  Type = "run_started"
	TypeJobStarted  Type = "job_started"
	TypeShStarted   Type = "sh_started"
	TypeShOutput    Type = "sh_output"
	TypeShFinished  Type = "sh_finished"
	TypeLog         Type = "log"
	TypeJobFinished Type = "job_finished"
	TypeRunFinished Type = "run_finished"
)

// JobOutcome is the result of one job.
type JobOutcome string

// Job outcomes. A job is skipped when its run function returned None or
// when one of its input jobs did not succeed.
const (
	JobSucceeded JobOutcome = "succeeded"
	JobFailed    JobOutcome = "failed"
	JobSkipped   JobOutcome = "skipped"
)

// RunOutcome is the result of a whole pipeline, carried by [RunFinished].
type RunOutcome string

// Run outcomes. PipelineFailure covers a job that failed without
// allow_failure as well as a pipeline that failed to load or validate.
const (
	RunSuccess         RunOutcome = "success"
	RunPipelineFailure RunOutcome = "pipeline_failure"
)

// Stream names the output stream a line was read from.
type Stream string

// Output streams of a step.
const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// Envelope is the part every event carries. AtMs is the Unix time in
// milliseconds at which the runner produced the event.
type Envelope struct {
	AtMs int64 `json:"at_ms"`
	Type Type  `json:"type"`
}

// Event is implemented by every event struct, through its embedded
// [Envelope], so code handling any event can read the common fields.
type Event interface {
	EventEnvelope() Envelope
}

// EventEnvelope returns the envelope itself.
func (e Envelope) EventEnvelope() Envelope { return e }

// JobNode is one job of the job graph announced by [RunStarted]. Inputs
// name other jobs or sources in the reserved "octavo/" namespace.
type JobNode struct {
	ID           string   `json:"id"`
	Inputs       []string `json:"inputs"`
	AllowFailure bool     `json:"allow_failure,omitempty"`
}

// RunStarted opens the stream. Jobs is empty when the pipeline failed to
// load, in which case a [RunFinished] with an error follows.
type RunStarted struct {
	Envelope
	Schema int       `json:"schema"`
	Jobs   []JobNode `json:"jobs"`
}

// JobStarted is emitted when a job's run function is called.
type JobStarted struct {
	Envelope
	JobID string `json:"job_id"`
}

// ShStarted is emitted when ctx.sh starts a step. Seq counts the steps of
// one job from 1. Cmd is the command as text, with secrets masked.
type ShStarted struct {
	Envelope
	JobID string `json:"job_id"`
	Seq   int    `json:"seq"`
	Cmd   string `json:"cmd"`
}

// ShOutput is one line of a step's output, without its line terminator.
// Lines longer than the runner's maximum line size (32 KiB) arrive as
// several events. Bytes that are not valid UTF-8 arrive as U+FFFD, one per
// run of invalid bytes.
type ShOutput struct {
	Envelope
	JobID  string `json:"job_id"`
	Seq    int    `json:"seq"`
	Stream Stream `json:"stream"`
	Line   string `json:"line"`
}

// ShFinished is emitted when a step's process group has ended. ExitCode is
// -1 when the step was ended by a signal or could not be started, and Error
// then gives the reason.
type ShFinished struct {
	Envelope
	JobID    string `json:"job_id"`
	Seq      int    `json:"seq"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`
}

// Log levels carried by [Log]. An empty level means [LevelInfo].
const (
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)

// Log carries a message a run function wrote with ctx.log or print, or a
// warning from the runner itself when JobID is empty.
type Log struct {
	Envelope
	JobID   string `json:"job_id,omitempty"`
	Level   string `json:"level,omitempty"`
	Message string `json:"message"`
}

// JobFinished closes a job. Error explains a failed or skipped job. A job
// skipped because an input job did not succeed has no [JobStarted], since
// its run function was never called. Outputs holds the dict a succeeded
// run function returned, converted to JSON with secrets masked.
type JobFinished struct {
	Envelope
	JobID   string         `json:"job_id"`
	Outcome JobOutcome     `json:"outcome"`
	Error   string         `json:"error,omitempty"`
	Outputs map[string]any `json:"outputs,omitempty"`
}

// RunFinished is always the last event of a stream that ran to completion.
// Error gives the reason of a pipeline failure, as file:line: message when
// the pipeline failed to load or validate.
type RunFinished struct {
	Envelope
	Outcome RunOutcome `json:"outcome"`
	Error   string     `json:"error,omitempty"`
}

// ErrUnknownType is returned by [Decode] for a well-formed event whose type
// this version does not know. Consumers should warn and skip such events.
var ErrUnknownType = errors.New("unknown event type")

// Decode parses one line of the event stream into a pointer to the matching
// event struct, such as *RunStarted. It returns an error wrapping
// [ErrUnknownType] for a type it does not know, and a syntax or field error
// for anything that is not one JSON object with a string "type".
func Decode(line []byte) (any, error) {
	var env Envelope
	if err := json.Unmarshal(line, &env); err != nil {
		return nil, fmt.Errorf("decode event envelope: %w", err)
	}
	if env.Type == "" {
		return nil, errors.New("decode event: missing \"type\"")
	}

	var ev any
	switch env.Type {
	case TypeRunStarted:
		ev = new(RunStarted)
	case TypeJobStarted:
		ev = new(JobStarted)
	case TypeShStarted:
		ev = new(ShStarted)
	case TypeShOutput:
		ev = new(ShOutput)
	case TypeShFinished:
		ev = new(ShFinished)
	case TypeLog:
		ev = new(Log)
	case TypeJobFinished:
		ev = new(JobFinished)
	case TypeRunFinished:
		ev = new(RunFinished)
	default:
		return nil, fmt.Errorf("decode event %q: %w", env.Type, ErrUnknownType)
	}

	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(ev); err != nil {
		return nil, fmt.Errorf("decode %s event: %w", env.Type, err)
	}
	return ev, nil
}
