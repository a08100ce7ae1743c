package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// pollUntil calls done every few milliseconds until it returns true, and
// returns how long that took, or false after within.
func pollUntil(within time.Duration, done func() bool) (time.Duration, bool) {
	began := time.Now()
	for time.Since(began) < within {
		if done() {
			return time.Since(began), true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, false
}

// TestRunFlushesOutputWhileStepRuns checks the flush guarantee of
// --events: output is written in large buffers, and a line must still
// reach the file while its step is running, not when a buffer fills or
// the step ends.
func TestRunFlushesOutputWhileStepRuns(t *testing.T) {
	ws := newWorkspace(t, runSpec{pipeline: `
def quiet(ctx):
    ctx.sh("echo first-line; touch printed; while [ ! -e release ]; do sleep 0.02; done; echo last-line")

job("quiet", inputs = ["octavo/push"], run = quiet)
`})
	eventsPath := filepath.Join(t.TempDir(), "events.jsonl")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, runnerBin, "run", "--workspace", ws, "--events", eventsPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		writeFile(t, filepath.Join(ws, "release"), "")
		_ = cmd.Wait()
	}()

	printed := func() bool {
		_, err := os.Stat(filepath.Join(ws, "printed"))
		return err == nil
	}
	if _, ok := pollUntil(10*time.Second, printed); !ok {
		t.Fatalf("the step did not start within 10s; stderr:\n%s", stderr.Bytes())
	}
	// The runner flushes every 100 ms. The bound is ten times that, for a
	// loaded machine and the race detector.
	flushed := func() bool {
		data, err := os.ReadFile(eventsPath)
		return err == nil && bytes.Contains(data, []byte(`"line":"first-line"`))
	}
	took, ok := pollUntil(2*time.Second, flushed)
	if !ok {
		t.Fatalf("first-line was not in the events file within 2s while the step ran")
	}
	if took > time.Second {
		t.Errorf("first-line reached the events file %s after the step printed it, want at most 1s", took)
	}

	writeFile(t, filepath.Join(ws, "release"), "")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("octavo-runner: %v\n%s", err, stderr.Bytes())
	}
	lines, _ := readEvents(t, eventsPath)
	var last bool
	for _, line := range lines {
		last = last || bytes.Contains(line, []byte(`"line":"last-line"`))
	}
	if !last {
		t.Errorf("last-line is missing from the events after the run")
	}
}
