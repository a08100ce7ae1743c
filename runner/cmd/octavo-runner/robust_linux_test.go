//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/schema"
)

// TestRunStdoutReaderGoneStopsSteps covers --events - when the reader of
// standard output goes away mid-run. The runner used to die of SIGPIPE
// (exit 141) without a word on stderr, and the steps of other jobs kept
// running. It must report the write error, stop every step and exit 1.
func TestRunStdoutReaderGoneStopsSteps(t *testing.T) {
	ws := newWorkspace(t, runSpec{pipeline: `
def slow(ctx):
    ctx.sh("sleep 60 & echo $! > child.pid; wait")

def loud(ctx):
    ctx.sh("while [ ! -s child.pid ]; do sleep 0.05; done; seq 1 200000")

job("slow", inputs = ["octavo/push"], run = slow)
job("loud", inputs = ["octavo/push"], run = loud)
`})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, runnerBin, "run", "--workspace", ws, "--events", "-", "--parallel", "2")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	if _, err := bufio.NewReader(r).ReadString('\n'); err != nil {
		t.Fatalf("read first event: %v", err)
	}
	pid := readPID(t, filepath.Join(ws, "child.pid"), 10*time.Second)
	_ = r.Close()
	_ = cmd.Wait()

	if got := cmd.ProcessState.ExitCode(); got != exitFailure {
		t.Errorf("exit %d (%s), want %d; stderr:\n%s", got, cmd.ProcessState, exitFailure, stderr.String())
	}
	if !strings.Contains(stderr.String(), "broken pipe") {
		t.Errorf("stderr %q, want the broken pipe reported", stderr.String())
	}
	if !processGone(t, pid, 5*time.Second) {
		t.Errorf("step child %d survived the runner", pid)
	}
}

// TestRunEndsDaemonsThatLeftTheirGroup covers a step that starts a daemon
// with setsid, which leaves the step's process group and session. Killing
// the group missed it, so it kept running after the run had finished or
// had been stopped by a signal.
func TestRunEndsDaemonsThatLeftTheirGroup(t *testing.T) {
	const pipeline = `
def daemon(ctx):
    ctx.sh("setsid sh -c 'echo $$ > daemon.pid; exec sleep 60' </dev/null >/dev/null 2>&1 & while [ ! -s daemon.pid ]; do sleep 0.05; done")
    ctx.sh("touch ready; sleep $HOLD")

job("daemon", inputs = ["octavo/push"], run = daemon)
`
	tests := []struct {
		name   string
		hold   string
		signal syscall.Signal
	}{
		{"the run completes", "0", 0},
		{"the runner gets SIGTERM", "60", syscall.SIGTERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := newWorkspace(t, runSpec{pipeline: pipeline})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, runnerBin, "run", "--workspace", ws, "--events", filepath.Join(t.TempDir(), "events.jsonl"))
			cmd.Env = append(os.Environ(), "HOLD="+tt.hold)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := readPID(t, filepath.Join(ws, "daemon.pid"), 10*time.Second)
			if tt.signal != 0 {
				waitForFile(t, filepath.Join(ws, "ready"), 10*time.Second)
				if err := cmd.Process.Signal(tt.signal); err != nil {
					t.Fatal(err)
				}
			}
			_ = cmd.Wait()
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

			want := 0
			if tt.signal != 0 {
				want = 128 + int(tt.signal)
			}
			if got := cmd.ProcessState.ExitCode(); got != want {
				t.Errorf("exit %d, want %d; stderr:\n%s", got, want, stderr.String())
			}
			if !processGone(t, pid, 5*time.Second) {
				t.Errorf("daemon %d outlived the runner", pid)
			}
		})
	}
}

// waitForFile polls until path exists.
func waitForFile(t *testing.T, path string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not appear within %s", path, within)
}

// TestRunReapsLeftoverProcessesEachStep covers background processes that
// steps leave behind. Once the runner adopts orphans, each one killed with
// its step's group becomes the runner's zombie, and they must be reaped
// step by step instead of piling up until the run ends.
func TestRunReapsLeftoverProcessesEachStep(t *testing.T) {
	res := runPipeline(t, runSpec{pipeline: `
def litter(ctx):
    for i in range(40):
        ctx.sh("sleep 60 & true")
    ctx.sh("for c in $(cat /proc/$PPID/task/*/children); do cut -d' ' -f3 /proc/$c/stat; done | grep -c Z || true")

job("litter", inputs = ["octavo/push"], run = litter)
`})
	got := res.output("litter", 41, schema.Stdout)
	if len(got) != 1 {
		t.Fatalf("zombie count output %q, want one line", got)
	}
	var zombies int
	if _, err := fmt.Sscan(got[0], &zombies); err != nil {
		t.Fatalf("zombie count %q: %v", got[0], err)
	}
	if zombies > 5 {
		t.Errorf("the runner has %d zombie children after 40 steps, want at most 5", zombies)
	}
}
