package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	starjson "go.starlark.net/lib/json"
	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// DefaultMaxSteps is the default execution step limit for the top level of
// a pipeline file and, separately, for each run function. Ten million steps
// take about a second and are far more than a pipeline needs, so reaching
// the limit almost always means an endless loop.
//
// NOTE: the limit counts Starlark steps, not the work of one builtin call
// or its memory. str() or json.encode() of a list nested a million levels
// deep recurses inside go.starlark.net until the Go stack limit, so such a
// pipeline can still hang the runner or crash it.
const DefaultMaxSteps = 10_000_000

// Options tunes [Load].
type Options struct {
	// MaxSteps limits the execution steps of the top level; 0 means
	// DefaultMaxSteps.
	MaxSteps uint64
}

// FileOptions are the Starlark dialect of pipeline files: while loops,
// top-level if/for and sets are allowed; recursion is not.
var FileOptions = &syntax.FileOptions{
	Set:             true,
	While:           true,
	TopLevelControl: true,
}

// loadingKey marks the thread that executes a file's top level, the only
// place where job() may be called.
const loadingKey = "octavo.loading"

// LoadFile reads path and loads it as [Load] does, with name as the file
// name in positions and messages.
func LoadFile(path, name string, opts Options) (*Pipeline, error) {
	return LoadFileContext(context.Background(), path, name, opts)
}

// LoadFileContext is [LoadFile] stopped when ctx is done.
func LoadFileContext(ctx context.Context, path, name string, opts Options) (*Pipeline, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Pos: syntax.MakePosition(&name, 1, 1), Msg: fmt.Sprintf("read pipeline file: %v", err)}
	}
	return LoadContext(ctx, name, src, opts)
}

// Load executes src as the pipeline file name and validates the jobs it
// declares. On failure it returns a [*Error], or several joined with
// errors.Join when validation finds more than one problem, each with
// Error text "file:line: message".
func Load(name string, src []byte, opts Options) (*Pipeline, error) {
	return LoadContext(context.Background(), name, src, opts)
}

// LoadContext is [Load] stopped when ctx is done: the top level is
// cancelled, and the error wraps context.Cause(ctx).
func LoadContext(ctx context.Context, name string, src []byte, opts Options) (*Pipeline, error) {
	if opts.MaxSteps == 0 {
		opts.MaxSteps = DefaultMaxSteps
	}
	p := &Pipeline{File: name, byID: map[string]*Job{}}

	thread := &starlark.Thread{
		Name:  "load " + name,
		Print: func(_ *starlark.Thread, msg string) { p.Prints = append(p.Prints, msg) },
		Load: func(*starlark.Thread, string) (starlark.StringDict, error) {
			return nil, errors.New("load() is not supported; keep the pipeline in one file")
		},
	}
	thread.SetLocal(loadingKey, p)
	limited := LimitSteps(thread, opts.MaxSteps)

	predeclared := starlark.StringDict{
		"job":    starlark.NewBuiltin("job", declareJob),
		"struct": starlark.NewBuiltin("struct", starlarkstruct.Make),
		"json":   starjson.Module,
	}
	stop := context.AfterFunc(ctx, func() { thread.Cancel(context.Cause(ctx).Error()) })
	defer stop()
	_, err := starlark.ExecFileOptions(FileOptions, thread, name, src, predeclared)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("load %s stopped: %w", name, context.Cause(ctx))
	}
	if err != nil {
		if *limited {
			return nil, &Error{Pos: Position(err, name), Msg: fmt.Sprintf("top level of the pipeline file stopped: %v (%d steps); look for an endless loop", ErrStepLimit, opts.MaxSteps)}
		}
		return nil, toError(err, name)
	}

	if errs := validate(p); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// LimitSteps sets the execution step limit of thread and returns a flag
// that becomes true when the limit stops the thread.
//
// NOTE: the position go.starlark.net reports for the stopped frame is
// sometimes the first line of the function rather than the looping line.
func LimitSteps(thread *starlark.Thread, maxSteps uint64) *bool {
	limited := new(bool)
	thread.SetMaxExecutionSteps(maxSteps)
	thread.OnMaxSteps = func(t *starlark.Thread) {
		*limited = true
		t.Cancel(ErrStepLimit.Error())
	}
	return limited
}

// declareJob implements job(id, inputs, run, allow_failure=False,
// timeout=None). It checks argument types; graph rules are checked after
// the file has loaded, so that every problem names its job.
func declareJob(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	p, ok := thread.Local(loadingKey).(*Pipeline)
	if !ok {
		return nil, errors.New("job() can only be called while the pipeline file loads, not from a run function")
	}

	var (
		id           string
		inputs       starlark.Value
		run          starlark.Callable
		allowFailure bool
		timeout      starlark.Value = starlark.None
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs,
		"id", &id, "inputs", &inputs, "run", &run,
		"allow_failure?", &allowFailure, "timeout?", &timeout); err != nil {
		if id, ok := jobIDArg(args, kwargs); ok {
			return nil, fmt.Errorf("job %q: %s", id, strings.TrimPrefix(err.Error(), b.Name()+": "))
		}
		return nil, err
	}

	var seq starlark.Indexable
	switch x := inputs.(type) {
	case *starlark.List:
		seq = x
	case starlark.Tuple:
		seq = x
	default:
		return nil, fmt.Errorf("job %q: inputs is a %s, want a list of job ids and sources such as [\"octavo/push\"]", id, inputs.Type())
	}
	names := make([]string, 0, seq.Len())
	for i := range seq.Len() {
		s, ok := starlark.AsString(seq.Index(i))
		if !ok {
			return nil, fmt.Errorf("job %q: inputs[%d] is a %s, want a string naming a job or source", id, i, seq.Index(i).Type())
		}
		names = append(names, s)
	}

	d, err := ParseTimeout(timeout)
	if err != nil {
		return nil, fmt.Errorf("job %q: %w", id, err)
	}

	p.Jobs = append(p.Jobs, &Job{
		ID:           id,
		Inputs:       names,
		Run:          run,
		AllowFailure: allowFailure,
		Timeout:      d,
		Pos:          callerPosition(thread),
	})
	return starlark.None, nil
}

// jobIDArg returns the id argument of a job() call whose other arguments
// are invalid, so that the message can name the job.
func jobIDArg(args starlark.Tuple, kwargs []starlark.Tuple) (string, bool) {
	if len(args) > 0 {
		return starlark.AsString(args[0])
	}
	for _, kv := range kwargs {
		if name, ok := starlark.AsString(kv[0]); ok && name == "id" {
			return starlark.AsString(kv[1])
		}
	}
	return "", false
}

// callerPosition returns the position of the Starlark call to the current
// builtin.
func callerPosition(thread *starlark.Thread) syntax.Position {
	return thread.CallFrame(1).Pos
}

// Position returns the innermost position in file name that err, a
// Starlark error, points at, or line 1 of name when it has none.
func Position(err error, name string) syntax.Position {
	var evalErr *starlark.EvalError
	if errors.As(err, &evalErr) {
		for i := len(evalErr.CallStack) - 1; i >= 0; i-- {
			pos := evalErr.CallStack[i].Pos
			if pos.Filename() != "<builtin>" && pos.Line > 0 {
				return pos
			}
		}
	}
	var synErr syntax.Error
	if errors.As(err, &synErr) {
		return synErr.Pos
	}
	var resErrs resolve.ErrorList
	if errors.As(err, &resErrs) && len(resErrs) > 0 {
		return resErrs[0].Pos
	}
	return syntax.MakePosition(&name, 1, 1)
}

// Message returns the text of err, a Starlark error, without position or
// backtrace.
func Message(err error) string {
	var evalErr *starlark.EvalError
	if errors.As(err, &evalErr) {
		return evalErr.Msg
	}
	var synErr syntax.Error
	if errors.As(err, &synErr) {
		return synErr.Msg
	}
	var resErrs resolve.ErrorList
	if errors.As(err, &resErrs) && len(resErrs) > 0 {
		msgs := make([]string, 0, len(resErrs))
		for _, e := range resErrs {
			msgs = append(msgs, e.Msg)
		}
		return strings.Join(msgs, "; ")
	}
	return err.Error()
}

// toError converts a Starlark error from loading into an [*Error].
func toError(err error, name string) *Error {
	return &Error{Pos: Position(err, name), Msg: Message(err)}
}
