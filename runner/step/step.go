// Package step runs one pipeline step (one ctx.sh call) as a subprocess
// and streams its output line by line.
//
// Each step runs in its own process group. The step ends when its first
// process exits. Any process it left behind in the group, such as a
// background job or a daemon that kept the output pipes open, is then
// killed with SIGKILL. So nothing outlives its step, and a leftover process
// cannot hang the run. A process that left the group with setsid escapes
// this. [AdoptOrphans] and [EndOrphans] end it when the run ends. A timeout or a cancelled context sends SIGTERM to the whole
// group and SIGKILL after [Config.KillGrace].
//
// Output contract, which the event stream inherits:
//   - stdout and stderr are read concurrently, each split into lines at
//     "\n"; a trailing "\r" is removed, other "\r" bytes (progress bars)
//     are kept.
//   - A line longer than [Config.MaxLine] bytes ([DefaultMaxLine], 32 KiB,
//     by default) arrives as several consecutive lines of at most that size.
//     Nothing is dropped, and a piece never splits a UTF-8 character or a
//     masked secret.
//   - Bytes that are not valid UTF-8 are replaced by U+FFFD, one replacement
//     character per maximal run of invalid bytes, so every line is valid
//     UTF-8 and valid JSON text.
//   - A final line without a terminator is still reported.
package step

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/octavo-ci/octavo/runner/mask"
	"github.com/octavo-ci/octavo/schema"
)

// Defaults for [Config].
const (
	// DefaultMaxLine is the largest line, in bytes, reported as one line.
	// 32 KiB keeps one event well below common websocket frame limits
	// while leaving ordinary log lines whole.
	DefaultMaxLine = 32 << 10
	// DefaultCaptureLimit bounds the stdout and stderr each kept in memory
	// for the caller (ctx.sh's return value); the lines still all stream.
	DefaultCaptureLimit = 1 << 20
	// DefaultKillGrace is how long a process group gets between SIGTERM and
	// SIGKILL when a step is stopped.
	DefaultKillGrace = 2 * time.Second
	// drainTimeout bounds the wait for output after the step's process
	// group was killed. It only matters when a process left the group
	// (setsid) but kept the pipes open.
	drainTimeout = 2 * time.Second
)

// Config tunes how steps run. The zero value uses the defaults.
type Config struct {
	// MaxLine is the longest line reported as one line; 0 means
	// DefaultMaxLine.
	MaxLine int
	// CaptureLimit bounds each captured stream in [Result]; 0 means
	// DefaultCaptureLimit and a negative value captures nothing.
	CaptureLimit int
	// KillGrace is the time between SIGTERM and SIGKILL; 0 means
	// DefaultKillGrace.
	KillGrace time.Duration
	// Masker keeps long lines from being split inside a secret; nil is
	// allowed.
	Masker *mask.Masker
}

// Spec describes one step.
type Spec struct {
	// Argv is the program and its arguments; Argv[0] is looked up in PATH
	// when it contains no slash. It must not be empty.
	Argv []string
	// Dir is the working directory; it must exist.
	Dir string
	// Env is the whole environment of the process, as "KEY=value".
	Env []string
	// Timeout stops the step after this long; 0 means no limit.
	Timeout time.Duration
}

// Result is the outcome of [Run].
type Result struct {
	// ExitCode is the exit status, or -1 when the step could not start,
	// was killed by a signal, timed out or was cancelled.
	ExitCode int
	// Err explains an ExitCode of -1, and is nil otherwise.
	Err error
	// Stdout and Stderr hold the first CaptureLimit bytes of each stream,
	// as raw bytes.
	Stdout, Stderr []byte
	// Truncated reports that a stream was longer than CaptureLimit.
	Truncated bool
	// Duration is the time from start to the end of the process group.
	Duration time.Duration
}

// ErrTimeout is the cause of a step stopped by its own Spec.Timeout. The
// Result.Err of such a step reads "timed out after DURATION".
var ErrTimeout = errors.New("timed out")

// Run runs spec and calls onLines with the output lines of each read from a
// stream's pipe, in order, from two goroutines (one per stream), so onLines
// must be safe for concurrent use. The line slices are valid only until
// onLines returns; onLines may overwrite the elements of lines. Run returns
// after the process group has ended and both streams were read to the end.
// When ctx is done, Run stops the group and Result.Err wraps
// context.Cause(ctx).
func Run(ctx context.Context, spec Spec, cfg Config, onLines func(stream schema.Stream, lines [][]byte)) Result {
	cfg = cfg.withDefaults()
	began := time.Now()
	if len(spec.Argv) == 0 {
		return Result{ExitCode: -1, Err: errors.New("start step: empty command")}
	}

	if spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, spec.Timeout, fmt.Errorf("%w after %s", ErrTimeout, spec.Timeout))
		defer cancel()
	}

	outR, outW, err := os.Pipe()
	if err != nil {
		return Result{ExitCode: -1, Err: fmt.Errorf("create stdout pipe: %w", err)}
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(outR, outW)
		return Result{ExitCode: -1, Err: fmt.Errorf("create stderr pipe: %w", err)}
	}

	cmd := exec.CommandContext(ctx, spec.Argv[0], spec.Argv[1:]...)
	cmd.Dir = spec.Dir
	cmd.Env = spec.Env
	// NOTE: the pipes are *os.File values, so exec starts no copying
	// goroutines and Wait does not wait for the pipes to close. That lets
	// us notice the first process exiting while a leftover process still
	// holds the pipes, and kill the leftover.
	cmd.Stdout = outW
	cmd.Stderr = errW
	group := newGroup(cmd, cfg.KillGrace)

	if err := startStep(cmd); err != nil {
		closeAll(outR, outW, errR, errW)
		return Result{ExitCode: -1, Err: fmt.Errorf("start %s: %w", spec.Argv[0], err), Duration: time.Since(began)}
	}
	closeAll(outW, errW)

	var wg sync.WaitGroup
	stdout := &boundedBuffer{limit: max(cfg.CaptureLimit, 0)}
	stderr := &boundedBuffer{limit: max(cfg.CaptureLimit, 0)}
	read := func(f *os.File, stream schema.Stream, capture *boundedBuffer) {
		defer wg.Done()
		// A read error after the drain timeout closed f is expected; the
		// lines read before it were already reported.
		_ = splitLines(&growingReader{f: f}, cfg.MaxLine, cfg.Masker, capture, func(lines [][]byte) { onLines(stream, lines) })
	}
	wg.Add(2)
	go read(outR, schema.Stdout, stdout)
	go read(errR, schema.Stderr, stderr)

	waitErr := group.wait()
	finishStep(cmd.Process.Pid)

	drained := make(chan struct{})
	go func() {
		wg.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		closeAll(outR, errR)
		<-drained
	}
	closeAll(outR, errR)

	res := Result{
		ExitCode:  cmd.ProcessState.ExitCode(),
		Stdout:    stdout.buf,
		Stderr:    stderr.buf,
		Truncated: stdout.truncated || stderr.truncated,
		Duration:  time.Since(began),
	}
	switch {
	case ctx.Err() != nil:
		res.ExitCode = -1
		res.Err = context.Cause(ctx)
	case res.ExitCode < 0:
		res.Err = describeExit(cmd.ProcessState, waitErr)
	}
	return res
}

func (c Config) withDefaults() Config {
	if c.MaxLine <= 0 {
		c.MaxLine = DefaultMaxLine
	}
	if c.CaptureLimit == 0 {
		c.CaptureLimit = DefaultCaptureLimit
	}
	if c.KillGrace <= 0 {
		c.KillGrace = DefaultKillGrace
	}
	return c
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// growAfter is how much output a stream must produce before its pipe is
// enlarged: one default Linux pipe buffer (64 KiB).
const growAfter = 64 << 10

// growingReader reads a step's pipe and enlarges it once the step has
// written growAfter bytes. A step that prints a lot then gets fewer, larger
// reads, and the many short steps of a pipeline skip the fcntl calls and the
// kernel memory of a large pipe.
type growingReader struct {
	f     *os.File
	read  int
	grown bool
}

func (g *growingReader) Read(p []byte) (int, error) {
	n, err := g.f.Read(p)
	if !g.grown {
		g.read += n
		if g.read >= growAfter {
			growPipe(g.f)
			g.grown = true
		}
	}
	return n, err
}
