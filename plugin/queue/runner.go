package queue

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/workspace"
)

// drainTimeout bounds how long reading continues after the runner exited,
// for a left-over step process that still holds a pipe open.
const drainTimeout = 5 * time.Second

// runRunner starts octavo-runner for r in dir, ingests its event stream
// while it runs and returns the run's outcome. ctx ending stops the runner
// and its whole process tree. An error means the runner could not start.
func (q *Queue) runRunner(ctx context.Context, r *store.Run, dir, src string, log *slog.Logger) (outcome, error) {
	push, secrets, err := q.writeRunFiles(r, dir)
	if err != nil {
		return outcome{}, err
	}

	cmd := exec.Command(q.opts.RunnerPath, "run",
		"--workspace", src,
		"--pipeline", src+"/"+workspace.PipelineFile,
		"--events", "-",
		"--source", "octavo/push="+push,
		"--secrets", secrets,
		"--parallel", strconv.Itoa(q.opts.Parallel),
	)
	cmd.Dir = dir
	cmd.Env = runnerEnv(os.Environ())
	setProcessGroup(cmd)

	// The runner writes to our own pipes rather than exec's, so Wait does
	// not block on a grandchild that keeps a pipe open. Reading gets a
	// deadline after the runner exits instead.
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return outcome{}, fmt.Errorf("create event pipe: %w", err)
	}
	defer stdoutR.Close()
	growPipe(stdoutR)
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutW.Close()
		return outcome{}, fmt.Errorf("create stderr pipe: %w", err)
	}
	defer stderrR.Close()
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW

	err = cmd.Start()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		return outcome{}, fmt.Errorf("start %s: %w", q.opts.RunnerPath, err)
	}
	log.Debug("runner started", "pid", cmd.Process.Pid)

	stopped := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			stopTree(cmd.Process.Pid, q.opts.KillGrace, exited)
		case <-exited:
		}
		close(stopped)
	}()

	ing := newIngester(q, r, log)
	lines := make(chan *lineBatch, readAhead)
	written := make(chan struct{})
	stdoutPipe, stderrPipe := &watchedPipe{f: stdoutR}, &watchedPipe{f: stderrR}
	go ing.readLines(stdoutPipe, lines)
	go func() {
		ing.writeLoop(ctx, lines)
		close(written)
	}()
	stderrDone := make(chan struct{})
	var stderrTail []string
	go func() {
		stderrTail = logStderr(stderrPipe, log)
		close(stderrDone)
	}()

	waitErr := cmd.Wait()
	close(exited)
	<-stopped

	drained := make(chan struct{})
	go func() {
		<-written
		<-stderrDone
		close(drained)
	}()
	stopStalledReads(drained, stdoutPipe, stderrPipe)
	if ing.invalid+ing.unknown > 0 {
		log.Warn("event stream had skipped lines", "invalid", ing.invalid, "unknown", ing.unknown)
	}

	if ctx.Err() != nil && !isCause(ctx, errTimedOut) {
		return outcome{}, nil
	}
	out := toOutcome(waitErr, ing.finished, isCause(ctx, errTimedOut))
	if out.kind == store.FailureProcessCrashed {
		log.Error("runner crashed", "err", waitErr, "stderr_tail", stderrTail)
	}
	return out, nil
}

// watchedPipe is the read end of a pipe that records whether a Read call
// is blocked in it, which distinguishes a stalled pipe from a slow reader.
type watchedPipe struct {
	f      *os.File
	calls  atomic.Int64
	inRead atomic.Bool
}

func (w *watchedPipe) Read(p []byte) (int, error) {
	w.calls.Add(1)
	w.inRead.Store(true)
	n, err := w.f.Read(p)
	w.inRead.Store(false)
	return n, err
}

// stopStalledReads waits until drained is closed. A pipe whose one Read
// call has been blocked for a whole drainTimeout has no data and a writer
// that keeps it open, such as a left-over step process, so its read is
// ended with a deadline. A reader that waits for the database is not
// blocked in Read at that time, so it keeps all its data.
func stopStalledReads(drained <-chan struct{}, pipes ...*watchedPipe) {
	ticker := time.NewTicker(drainTimeout)
	defer ticker.Stop()
	last := make([]int64, len(pipes))
	for {
		select {
		case <-drained:
			return
		case <-ticker.C:
		}
		for i, p := range pipes {
			calls := p.calls.Load()
			if p.inRead.Load() && calls == last[i] {
				_ = p.f.SetReadDeadline(time.Now())
			}
			last[i] = calls
		}
	}
}

// stderrTailLines is how many of the runner's last stderr lines are kept
// for the log line of a crash.
const stderrTailLines = 10

// logStderr logs the runner's own diagnostics at debug level until EOF and
// returns the last stderrTailLines lines.
func logStderr(r io.Reader, log *slog.Logger) []string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var tail []string
	for sc.Scan() {
		line := sc.Text()
		log.Debug("runner stderr", "line", line)
		if len(tail) == stderrTailLines {
			tail = tail[1:]
		}
		tail = append(tail, line)
	}
	return tail
}

// runnerEnv returns env without the sidecar's own OCTAVO_* settings. Pipeline
// steps inherit the runner's environment, so passing them on would hand the
// forge token, the webhook secret and the database DSN to every pipeline.
func runnerEnv(env []string) []string {
	kept := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "OCTAVO_") {
			continue
		}
		kept = append(kept, kv)
	}
	return kept
}
