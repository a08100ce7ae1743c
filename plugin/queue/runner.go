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
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/workspace"
)

// drainTimeout is how long the event stream may stay open after the runner
// exited, because a left-over step process still holds it, before reading
// stops.
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
	setProcessGroup(cmd)

	// The runner writes to our own pipe rather than exec's, so Wait does
	// not block on a grandchild that keeps the pipe open. Reading gets a
	// deadline after the runner exits instead.
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return outcome{}, fmt.Errorf("create event pipe: %w", err)
	}
	defer stdoutR.Close()
	cmd.Stdout = stdoutW
	stderr, err := cmd.StderrPipe()
	if err != nil {
		stdoutW.Close()
		return outcome{}, fmt.Errorf("create stderr pipe: %w", err)
	}

	if err := cmd.Start(); err != nil {
		stdoutW.Close()
		return outcome{}, fmt.Errorf("start %s: %w", q.opts.RunnerPath, err)
	}
	stdoutW.Close()
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
	lines := make(chan streamLine, 4096)
	written := make(chan struct{})
	go ing.readLines(stdoutR, lines)
	go func() {
		ing.writeLoop(ctx, lines)
		close(written)
	}()
	stderrDone := make(chan struct{})
	var stderrTail []string
	go func() {
		stderrTail = logStderr(stderr, log)
		close(stderrDone)
	}()

	<-stderrDone
	waitErr := cmd.Wait()
	close(exited)
	<-stopped

	_ = stdoutR.SetReadDeadline(time.Now().Add(drainTimeout))
	<-written
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
