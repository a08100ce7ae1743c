package step

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/schema"
)

type collected struct {
	mu    sync.Mutex
	lines map[schema.Stream][]string
}

func (c *collected) add(s schema.Stream, lines [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lines == nil {
		c.lines = map[schema.Stream][]string{}
	}
	for _, l := range lines {
		c.lines[s] = append(c.lines[s], string(l))
	}
}

func TestRunReportsOutputAndExitCode(t *testing.T) {
	var out collected
	res := Run(t.Context(), Spec{Argv: []string{"sh", "-c", "echo one; echo two >&2; exit 3"}, Dir: t.TempDir(), Env: os.Environ()}, Config{}, out.add)

	if res.ExitCode != 3 || res.Err != nil {
		t.Errorf("exit %d err %v, want 3 and no error", res.ExitCode, res.Err)
	}
	if got := out.lines[schema.Stdout]; len(got) != 1 || got[0] != "one" {
		t.Errorf("stdout %q, want [one]", got)
	}
	if got := out.lines[schema.Stderr]; len(got) != 1 || got[0] != "two" {
		t.Errorf("stderr %q, want [two]", got)
	}
	if string(res.Stdout) != "one\n" || string(res.Stderr) != "two\n" {
		t.Errorf("captured %q and %q, want the raw output", res.Stdout, res.Stderr)
	}
}

func TestRunStartFailure(t *testing.T) {
	res := Run(t.Context(), Spec{Argv: []string{"/nonexistent/program"}, Dir: t.TempDir()}, Config{}, func(schema.Stream, [][]byte) {})

	if res.ExitCode != -1 || res.Err == nil || !strings.Contains(res.Err.Error(), "start /nonexistent/program") {
		t.Errorf("exit %d err %v, want -1 and a start error", res.ExitCode, res.Err)
	}
}

func TestRunEmptyArgv(t *testing.T) {
	res := Run(t.Context(), Spec{}, Config{}, func(schema.Stream, [][]byte) {})
	if res.ExitCode != -1 || res.Err == nil {
		t.Errorf("exit %d err %v, want -1 and an error", res.ExitCode, res.Err)
	}
}

func TestRunTimeout(t *testing.T) {
	began := time.Now()
	res := Run(t.Context(), Spec{Argv: []string{"sleep", "30"}, Dir: t.TempDir(), Timeout: 200 * time.Millisecond}, Config{}, func(schema.Stream, [][]byte) {})

	if !errors.Is(res.Err, ErrTimeout) || res.Err.Error() != "timed out after 200ms" {
		t.Errorf("err %v, want timed out after 200ms", res.Err)
	}
	if res.ExitCode != -1 {
		t.Errorf("exit %d, want -1", res.ExitCode)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("took %s to stop the step", took)
	}
}

func TestRunCancelledContextCause(t *testing.T) {
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := errors.New("run stopped by test")
	time.AfterFunc(100*time.Millisecond, func() { cancel(cause) })

	res := Run(ctx, Spec{Argv: []string{"sleep", "30"}, Dir: t.TempDir()}, Config{}, func(schema.Stream, [][]byte) {})
	if !errors.Is(res.Err, cause) {
		t.Errorf("err %v, want the context cause", res.Err)
	}
}

func TestRunSignalledStep(t *testing.T) {
	res := Run(t.Context(), Spec{Argv: []string{"sh", "-c", "kill -KILL $$"}, Dir: t.TempDir()}, Config{}, func(schema.Stream, [][]byte) {})
	if res.ExitCode != -1 || res.Err == nil || res.Err.Error() != "terminated by signal SIGKILL" {
		t.Errorf("exit %d err %v, want -1 and terminated by signal SIGKILL", res.ExitCode, res.Err)
	}
}
