package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/octavo-ci/octavo/runner/engine"
	"github.com/octavo-ci/octavo/runner/events"
	"github.com/octavo-ci/octavo/runner/mask"
	"github.com/octavo-ci/octavo/runner/pipeline"
	"github.com/octavo-ci/octavo/runner/step"
	"github.com/octavo-ci/octavo/runner/view"
	"github.com/octavo-ci/octavo/schema"
)

// flushInterval bounds how far a reader of the event file lags behind the
// run: events are buffered and flushed at least this often.
const flushInterval = 100 * time.Millisecond

// stopDeadline bounds the time from a SIGINT or SIGTERM to exiting, even if
// a step's process group is slow to go: it covers the SIGTERM-to-SIGKILL
// grace of steps plus the output drain timeout, with room to spare.
const stopDeadline = 10 * time.Second

// runOptions are the flags of the run command.
type runOptions struct {
	workspace string
	pipeline  string
	events    string
	sources   map[string]string
	secrets   string
	parallel  int
}

func runCommand(args []string, stdout, stderr io.Writer) int {
	opts := runOptions{sources: map[string]string{}}
	fs := flag.NewFlagSet("octavo-runner run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opts.workspace, "workspace", ".", "`DIR` of the checked-out repository; steps run there")
	fs.StringVar(&opts.pipeline, "pipeline", "", "pipeline `FILE` (default WORKSPACE/.octavo/ci.star)")
	fs.StringVar(&opts.events, "events", "", "write JSON-lines events to `PATH`, or to standard output for \"-\"; without it a readable log goes to standard output")
	fs.Func("source", "source payload as `NAME=FILE.json`, such as octavo/push=push.json; repeatable (default for octavo/push: derived from the workspace's git HEAD)", func(v string) error {
		name, file, ok := strings.Cut(v, "=")
		if !ok || name == "" || file == "" {
			return fmt.Errorf("invalid source %q; want NAME=FILE.json such as octavo/push=push.json", v)
		}
		if !isKnownSource(name) {
			return fmt.Errorf("unknown source %q; known sources: %s", name, strings.Join(pipeline.KnownSources(), ", "))
		}
		if _, dup := opts.sources[name]; dup {
			return fmt.Errorf("source %q given twice", name)
		}
		opts.sources[name] = file
		return nil
	})
	fs.StringVar(&opts.secrets, "secrets", "", "JSON `FILE` with an object mapping secret names to string values")
	fs.IntVar(&opts.parallel, "parallel", 0, "maximum number of jobs running at once, `N` >= 1 (default: number of CPUs)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "octavo-runner run: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	// An explicit --parallel 0 is rejected rather than read as the CPU-count
	// default, because the help promises N >= 1.
	parallelGiven := false
	fs.Visit(func(f *flag.Flag) { parallelGiven = parallelGiven || f.Name == "parallel" })
	if opts.parallel < 0 || (parallelGiven && opts.parallel == 0) {
		fmt.Fprintf(stderr, "octavo-runner run: invalid --parallel %d; use 1 or more, or omit it for the number of CPUs\n", opts.parallel)
		return exitUsage
	}

	inv, err := prepareRun(opts)
	if err != nil {
		fmt.Fprintf(stderr, "octavo-runner run: %v\n", err)
		return exitUsage
	}
	return executeRun(inv, stdout, stderr)
}

// invocation is a run command whose inputs have all been read.
type invocation struct {
	opts         runOptions
	workspace    string
	pipelinePath string
	pipelineName string
	secrets      map[string]string
	payloads     map[string]engine.Payload
}

// prepareRun resolves paths and reads the secrets and source files. Its
// errors are usage errors: the run never started.
func prepareRun(opts runOptions) (*invocation, error) {
	ws, err := filepath.Abs(opts.workspace)
	if err != nil {
		return nil, fmt.Errorf("resolve workspace %q: %w", opts.workspace, err)
	}
	if info, err := os.Stat(ws); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("workspace %q is not a directory; pass --workspace DIR", opts.workspace)
	}
	inv := &invocation{opts: opts, workspace: ws, payloads: map[string]engine.Payload{}}

	inv.pipelinePath = opts.pipeline
	if inv.pipelinePath == "" {
		inv.pipelinePath = filepath.Join(ws, ".octavo", "ci.star")
	}
	inv.pipelineName = displayName(ws, inv.pipelinePath)

	if opts.secrets != "" {
		inv.secrets, err = readSecrets(opts.secrets)
		if err != nil {
			return nil, err
		}
	}
	for name, file := range opts.sources {
		p, err := engine.ReadPayload(file)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", name, err)
		}
		inv.payloads[name] = p
	}
	return inv, nil
}

// executeRun runs the pipeline and returns the exit status.
func executeRun(inv *invocation, stdout, stderr io.Writer) int {
	logLevel := new(slog.LevelVar)
	logLevel.Set(slog.LevelWarn)
	if inv.opts.events != "" {
		logLevel.Set(slog.LevelInfo)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel})).With("component", "runner")

	ctx, stopSignals, exitCode := withSignals(context.Background(), logger)
	defer stopSignals()
	defer reportBrokenPipes()()

	if _, hasPush := inv.payloads[pipeline.SourcePush]; !hasPush {
		inv.payloads[pipeline.SourcePush] = engine.GitPushPayload(ctx, inv.workspace)
	}

	// From here on the runner starts no process but steps, which the
	// reaper of adopted orphans knows apart from the orphans.
	if err := step.AdoptOrphans(); err != nil {
		logger.Warn("processes that steps detach with setsid may outlive the run", "err", err)
	}
	// Deferred so that it also runs after a signal or a write error, once
	// every step has ended.
	defer endOrphans(logger)

	writer, closeWriter, err := openWriter(inv.opts.events, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "octavo-runner run: %v\n", err)
		return exitFailure
	}
	defer closeWriter()

	masker, warnings := mask.New(inv.secrets)
	sink := events.NewSink(writer, masker, nil)
	flushCtx, stopFlush := context.WithCancel(ctx)
	flushDone := make(chan struct{})
	go func() {
		defer close(flushDone)
		sink.FlushEvery(flushCtx, flushInterval)
	}()
	finish := func(code int) int {
		stopFlush()
		<-flushDone
		if err := sink.Flush(); err != nil {
			logger.Error("write events failed", "err", err)
			fmt.Fprintf(stderr, "octavo-runner run: %v\n", err)
			return exitFailure
		}
		return code
	}

	p, err := pipeline.LoadFileContext(ctx, inv.pipelinePath, inv.pipelineName, pipeline.Options{})
	if err != nil && ctx.Err() != nil {
		logger.Warn("run stopped by signal while the pipeline loaded", "err", context.Cause(ctx))
		finish(0)
		return exitCode()
	}
	if err != nil {
		logger.Warn("pipeline failed to load", "pipeline", inv.pipelineName, "err", sink.Mask(err.Error()))
		_ = sink.Emit(&schema.RunStarted{})
		for _, w := range warnings {
			_ = sink.Emit(&schema.Log{Level: schema.LevelWarn, Message: w})
		}
		_ = sink.Emit(&schema.RunFinished{Outcome: schema.RunPipelineFailure, Error: err.Error()})
		return finish(0)
	}

	outcome, err := engine.Run(ctx, p, sink, engine.Config{
		Workspace: inv.workspace,
		Parallel:  inv.opts.parallel,
		Sources:   inv.payloads,
		Secrets:   inv.secrets,
		Env:       os.Environ(),
		Step:      stepConfig(masker),
		Warnings:  warnings,
		Logger:    logger,
	})
	switch {
	case err != nil && ctx.Err() != nil:
		logger.Warn("run stopped by signal", "err", context.Cause(ctx))
		finish(0)
		return exitCode()
	case err != nil:
		logger.Error("run failed", "err", err)
		fmt.Fprintf(stderr, "octavo-runner run: %v\n", err)
		finish(0)
		return exitFailure
	}
	logger.Info("run finished", "outcome", string(outcome), "peak_rss_kb", peakRSSKB())
	return finish(0)
}

// withSignals returns a context cancelled by SIGINT or SIGTERM, a stop
// function, and a function returning the exit status for the signal
// received (128 + its number). After a signal it also arms a deadline that
// exits the process if the run has not wound down within stopDeadline.
func withSignals(parent context.Context, logger *slog.Logger) (context.Context, func(), func() int) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	code := make(chan int, 1)
	done := make(chan struct{})

	go func() {
		select {
		case sig := <-sigs:
			n := 128 + int(sig.(syscall.Signal))
			code <- n
			logger.Warn("stopping run", "signal", sig.String())
			cancel(fmt.Errorf("received %s", sig))
			time.AfterFunc(stopDeadline, func() {
				logger.Error("run did not stop in time; exiting", "deadline", stopDeadline)
				os.Exit(n)
			})
		case <-done:
		}
	}()

	stop := func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
	exitCode := func() int {
		select {
		case n := <-code:
			return n
		default:
			return exitFailure
		}
	}
	return ctx, stop, exitCode
}

// endOrphans kills what steps left running outside their process groups,
// such as daemons started with setsid, so nothing outlives the run.
func endOrphans(logger *slog.Logger) {
	n, err := step.EndOrphans()
	if n > 0 {
		logger.Warn("killed processes that steps left running outside their process groups", "count", n)
	}
	if err != nil {
		logger.Error("end processes left by steps failed", "err", err)
	}
}

// reportBrokenPipes makes a write to a closed pipe on standard output or
// standard error fail with EPIPE, as it does on any other descriptor,
// instead of killing the runner with SIGPIPE. A reader of --events - or of
// the terminal view going away is then an ordinary write error: the run is
// stopped, every step's process group ended, and the runner exits 1. It
// returns a function that restores the default.
func reportBrokenPipes() func() {
	// NOTE: the channel is never read; being registered is what turns the
	// signal into an error. Steps still start with SIGPIPE at its default.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGPIPE)
	return func() { signal.Stop(sigs) }
}

// openWriter returns the events.Writer for --events and a function that
// closes its file.
func openWriter(path string, stdout io.Writer) (events.Writer, func(), error) {
	switch path {
	case "":
		color := false
		if f, ok := stdout.(*os.File); ok {
			color = term.IsTerminal(int(f.Fd())) && os.Getenv("NO_COLOR") == ""
		}
		return view.NewTerminal(stdout, color), func() {}, nil
	case "-":
		return events.NewJSONWriter(stdout), func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open events file: %w", err)
	}
	return events.NewJSONWriter(f), func() { _ = f.Close() }, nil
}

// stepConfig returns the step settings: the defaults, plus the masker so
// long lines are never split inside a secret.
func stepConfig(masker *mask.Masker) step.Config {
	return step.Config{Masker: masker}
}

// readSecrets reads a JSON object of secret names to string values.
func readSecrets(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secrets file: %w", err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse secrets file %s: want a JSON object of names to strings: %w", path, err)
	}
	secrets := make(map[string]string, len(raw))
	for name, v := range raw {
		s, ok := v.(string)
		if !ok {
			// The value is not echoed: it is a secret even when mistyped.
			return nil, fmt.Errorf("parse secrets file %s: secret %q is %s, want a string", path, name, engine.JSONKind(v))
		}
		secrets[name] = s
	}
	return secrets, nil
}

// displayName returns path relative to the workspace when it lies inside,
// so messages read ".octavo/ci.star:3: …" wherever the checkout is.
func displayName(workspace, path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(workspace, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return path
	}
	return rel
}

func isKnownSource(name string) bool {
	for _, s := range pipeline.KnownSources() {
		if s == name {
			return true
		}
	}
	return false
}
