//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
