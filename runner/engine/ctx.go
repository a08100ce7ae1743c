package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/octavo-ci/octavo/runner/pipeline"
	"github.com/octavo-ci/octavo/runner/step"
	"github.com/octavo-ci/octavo/schema"
)

// jobContext backs the ctx object passed to one call of a run function.
// Its builtins run on that call's Starlark thread only, so steps needs no
// lock.
type jobContext struct {
	ctx     context.Context
	e       *engine
	job     *pipeline.Job
	outputs map[string]*starlark.Dict
	allowed map[string]bool
	env     []string
	// steps counts the ctx.sh calls so far; it is the seq of the last step.
	steps int
}

func newJobContext(ctx context.Context, e *engine, j *pipeline.Job, outputs map[string]*starlark.Dict) *jobContext {
	return &jobContext{
		ctx:     ctx,
		e:       e,
		job:     j,
		outputs: outputs,
		allowed: e.p.Ancestors(j.ID),
		env:     e.stepEnv(j.ID),
	}
}

// value returns the ctx struct with its builtins and plain attributes.
func (c *jobContext) value() starlark.Value {
	s := starlarkstruct.FromStringDict(starlark.String("ctx"), starlark.StringDict{
		"sh":        starlark.NewBuiltin("ctx.sh", c.sh),
		"input":     starlark.NewBuiltin("ctx.input", c.input),
		"secret":    starlark.NewBuiltin("ctx.secret", c.secret),
		"log":       starlark.NewBuiltin("ctx.log", c.logMessage),
		"env":       starlark.NewBuiltin("ctx.env", c.getenv),
		"job":       starlark.String(c.job.ID),
		"workspace": starlark.String(c.e.cfg.Workspace),
	})
	s.Freeze()
	return s
}

// sh implements ctx.sh(cmd, env=None, cwd=None, timeout=None, check=True).
// A string runs under "sh -c"; a list runs as argv. It returns
// struct(exit, stdout, stderr, cmd, truncated) unless the step failed and
// check is true, or the job was stopped, which fail the job.
func (c *jobContext) sh(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		cmdValue starlark.Value
		envValue starlark.Value = starlark.None
		cwdValue starlark.Value = starlark.None
		timeout  starlark.Value = starlark.None
		check                   = true
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs,
		"cmd", &cmdValue, "env?", &envValue, "cwd?", &cwdValue, "timeout?", &timeout, "check?", &check); err != nil {
		return nil, err
	}

	argv, text, err := commandArgv(cmdValue)
	if err != nil {
		return nil, err
	}
	env, err := c.commandEnv(envValue)
	if err != nil {
		return nil, err
	}
	dir, err := c.commandDir(cwdValue)
	if err != nil {
		return nil, err
	}
	limit, err := pipeline.ParseTimeout(timeout)
	if err != nil {
		return nil, fmt.Errorf("ctx.sh: %w", err)
	}

	c.steps++
	seq := c.steps
	if err := c.e.emit(&schema.ShStarted{JobID: c.job.ID, Seq: seq, Cmd: text}); err != nil {
		return nil, err
	}
	c.e.log.InfoContext(c.ctx, "step started", "job", c.job.ID, "step", seq)

	res := step.Run(c.ctx, step.Spec{Argv: argv, Dir: dir, Env: env, Timeout: limit}, c.e.cfg.Step,
		func(stream schema.Stream, lines [][]byte) {
			_ = c.e.emitOutput(c.job.ID, seq, stream, lines)
		})

	finished := &schema.ShFinished{JobID: c.job.ID, Seq: seq, ExitCode: res.ExitCode}
	if res.Err != nil {
		finished.Error = res.Err.Error()
	}
	if err := c.e.emit(finished); err != nil {
		return nil, err
	}
	c.e.log.InfoContext(c.ctx, "step finished", "job", c.job.ID, "step", seq, "exit_code", res.ExitCode, "duration", res.Duration)

	if c.ctx.Err() != nil {
		return nil, context.Cause(c.ctx)
	}
	if check && res.ExitCode != 0 {
		return nil, stepFailure(seq, res)
	}
	return starlarkstruct.FromStringDict(starlark.String("sh_result"), starlark.StringDict{
		"exit":      starlark.MakeInt(res.ExitCode),
		"stdout":    starlark.String(res.Stdout),
		"stderr":    starlark.String(res.Stderr),
		"cmd":       starlark.String(text),
		"truncated": starlark.Bool(res.Truncated),
	}), nil
}

// stepFailure is the job error for a failed step run with check=True. The
// command itself is in the step's sh_started event.
func stepFailure(seq int, res step.Result) error {
	switch {
	case errors.Is(res.Err, step.ErrTimeout):
		return fmt.Errorf("ctx.sh step %d %w", seq, res.Err)
	case res.Err != nil:
		return fmt.Errorf("ctx.sh step %d failed: %w", seq, res.Err)
	default:
		return fmt.Errorf("ctx.sh step %d exited with code %d; pass check = False to continue after a failure", seq, res.ExitCode)
	}
}

// commandArgv returns the argv and display text for a ctx.sh command.
func commandArgv(v starlark.Value) ([]string, string, error) {
	switch x := v.(type) {
	case starlark.String:
		if strings.TrimSpace(string(x)) == "" {
			return nil, "", errors.New("ctx.sh: empty command")
		}
		return []string{"sh", "-c", string(x)}, string(x), nil
	case *starlark.List, starlark.Tuple:
		seq := x.(starlark.Indexable)
		if seq.Len() == 0 {
			return nil, "", errors.New("ctx.sh: empty argv list; give the program and its arguments")
		}
		argv := make([]string, seq.Len())
		for i := range seq.Len() {
			s, ok := starlark.AsString(seq.Index(i))
			if !ok {
				return nil, "", fmt.Errorf("ctx.sh: argv[%d] is a %s, want a string", i, seq.Index(i).Type())
			}
			argv[i] = s
		}
		return argv, shellJoin(argv), nil
	default:
		return nil, "", fmt.Errorf("ctx.sh: cmd is a %s, want a string (run by sh -c) or a list of strings (argv)", v.Type())
	}
}

// shellJoin quotes argv for display the way a POSIX shell would read it.
func shellJoin(argv []string) string {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsFunc(a, func(r rune) bool {
			return !(r == '-' || r == '_' || r == '.' || r == '/' || r == '=' || r == ':' || r == ',' || r == '+' || r == '@' ||
				('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9'))
		}) {
			quoted[i] = a
			continue
		}
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}

// commandEnv returns the job environment with the entries of v, a dict of
// strings or None, added or replaced.
func (c *jobContext) commandEnv(v starlark.Value) ([]string, error) {
	if v == starlark.None {
		return c.env, nil
	}
	d, ok := v.(*starlark.Dict)
	if !ok {
		return nil, fmt.Errorf("ctx.sh: env is a %s, want a dict of strings", v.Type())
	}
	env := slices.Clone(c.env)
	for _, item := range d.Items() {
		key, ok := starlark.AsString(item[0])
		if !ok || key == "" || strings.ContainsAny(key, "=\x00") {
			return nil, fmt.Errorf("ctx.sh: env key %s is not a valid variable name", item[0])
		}
		val, ok := starlark.AsString(item[1])
		if !ok {
			return nil, fmt.Errorf("ctx.sh: env[%q] is a %s, want a string", key, item[1].Type())
		}
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
		env = append(env, key+"="+val)
	}
	return env, nil
}

// commandDir resolves cwd, None or a path relative to the workspace.
func (c *jobContext) commandDir(v starlark.Value) (string, error) {
	if v == starlark.None {
		return c.e.cfg.Workspace, nil
	}
	s, ok := starlark.AsString(v)
	if !ok {
		return "", fmt.Errorf("ctx.sh: cwd is a %s, want a path string", v.Type())
	}
	dir := s
	if !filepath.IsAbs(s) {
		dir = filepath.Join(c.e.cfg.Workspace, s)
	}
	// Checked here because a failed chdir in the child is reported as the
	// program not being found, which blames the shell.
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("ctx.sh: cwd %q does not exist; give a directory relative to the workspace", s)
	case err != nil:
		return "", fmt.Errorf("ctx.sh: cwd %q: %w", s, err)
	case !info.IsDir():
		return "", fmt.Errorf("ctx.sh: cwd %q is not a directory", s)
	}
	return dir, nil
}

// input implements ctx.input(name): the outputs of an ancestor job, or the
// payload of a source the job depends on.
func (c *jobContext) input(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &name); err != nil {
		return nil, err
	}
	if !c.allowed[name] {
		return nil, fmt.Errorf("ctx.input(%q): %q is not an input of job %q or of its input jobs; add it to the inputs of job %q", name, name, c.job.ID, c.job.ID)
	}
	if pipeline.IsSource(name) {
		return c.e.sources[name], nil
	}
	if d := c.outputs[name]; d != nil {
		return d, nil
	}
	return starlark.NewDict(0), nil
}

// secret implements ctx.secret(name).
func (c *jobContext) secret(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &name); err != nil {
		return nil, err
	}
	v, ok := c.e.cfg.Secrets[name]
	if !ok {
		return nil, fmt.Errorf("ctx.secret(%q): no secret with that name is set for this run", name)
	}
	return starlark.String(v), nil
}

// logMessage implements ctx.log(msg, level="info").
func (c *jobContext) logMessage(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var msg starlark.Value
	level := schema.LevelInfo
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "msg", &msg, "level?", &level); err != nil {
		return nil, err
	}
	switch level {
	case schema.LevelInfo, schema.LevelWarn, schema.LevelError:
	default:
		return nil, fmt.Errorf("ctx.log: invalid level %q; use \"info\", \"warn\" or \"error\"", level)
	}
	text, ok := starlark.AsString(msg)
	if !ok {
		text = msg.String()
	}
	if err := c.e.emit(&schema.Log{JobID: c.job.ID, Level: level, Message: text}); err != nil {
		return nil, err
	}
	return starlark.None, nil
}

// getenv implements ctx.env(name, default=None): a variable of the
// environment steps of this job get.
func (c *jobContext) getenv(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	var def starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "default?", &def); err != nil {
		return nil, err
	}
	for i := len(c.env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(c.env[i], name+"="); ok {
			return starlark.String(v), nil
		}
	}
	return def, nil
}
