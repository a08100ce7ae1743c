//go:build linux

package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/schema"
)

func TestRunJobTimeoutEndsProcessGroup(t *testing.T) {
	ws := newWorkspace(t, runSpec{pipeline: `
def hang(ctx):
    ctx.sh("sleep 60 & echo $! > child.pid; sleep 60")

job("hang", inputs = ["octavo/push"], run = hang, timeout = 1)
`})
	began := time.Now()
	res := runIn(t, ws, runSpec{})

	if took := time.Since(began); took > 15*time.Second {
		t.Errorf("run took %s, want the 1s job timeout to end it promptly", took)
	}
	jf := res.job(t, "hang")
	if jf.Outcome != schema.JobFailed || jf.Error != "job timed out after 1s" {
		t.Errorf("job finished %q with error %q, want failed with job timed out after 1s", jf.Outcome, jf.Error)
	}
	if sf := res.stepFinished(t, "hang", 1); sf.ExitCode != -1 || sf.Error != "job timed out after 1s" {
		t.Errorf("sh_finished exit %d error %q, want -1 and the job timeout", sf.ExitCode, sf.Error)
	}
	pid := readPID(t, filepath.Join(ws, "child.pid"), time.Second)
	if !processGone(t, pid, 5*time.Second) {
		t.Errorf("background child %d survived the job timeout", pid)
	}
}

func TestRunStepTimeoutEndsProcessGroup(t *testing.T) {
	ws := newWorkspace(t, runSpec{pipeline: `
def hang(ctx):
    r = ctx.sh("sleep 60 & echo $! > child.pid; sleep 60", timeout = "500ms", check = False)
    ctx.sh("sleep 60", timeout = 0.5)

job("hang", inputs = ["octavo/push"], run = hang)
`})
	res := runIn(t, ws, runSpec{})

	if sf := res.stepFinished(t, "hang", 1); sf.ExitCode != -1 || sf.Error != "timed out after 500ms" {
		t.Errorf("step 1 finished with exit %d error %q, want -1 and timed out after 500ms", sf.ExitCode, sf.Error)
	}
	jf := res.job(t, "hang")
	want := `: ctx.sh step 2 timed out after 500ms`
	if jf.Outcome != schema.JobFailed || !strings.HasSuffix(jf.Error, want) {
		t.Errorf("job finished %q with error %q, want failed ending in %q", jf.Outcome, jf.Error, want)
	}
	pid := readPID(t, filepath.Join(ws, "child.pid"), time.Second)
	if !processGone(t, pid, 5*time.Second) {
		t.Errorf("background child %d survived the step timeout", pid)
	}
}

// TestRunBackgroundChildDoesNotHang covers a step whose shell exits at once
// but leaves a background process holding the output pipe: the step must
// end with its shell, and the leftover must be killed.
func TestRunBackgroundChildDoesNotHang(t *testing.T) {
	ws := newWorkspace(t, runSpec{pipeline: `
def spawn(ctx):
    ctx.sh("sleep 60 & echo $! > child.pid; echo started")
    ctx.sh("echo next")

job("spawn", inputs = ["octavo/push"], run = spawn)
`})
	began := time.Now()
	res := runIn(t, ws, runSpec{})

	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("run took %s, want the step to end with its shell", took)
	}
	if jf := res.job(t, "spawn"); jf.Outcome != schema.JobSucceeded {
		t.Errorf("job finished %q (%s), want succeeded", jf.Outcome, jf.Error)
	}
	if got := res.output("spawn", 2, schema.Stdout); len(got) != 1 || got[0] != "next" {
		t.Errorf("step 2 output %q, want [next]", got)
	}
	pid := readPID(t, filepath.Join(ws, "child.pid"), time.Second)
	if !processGone(t, pid, 5*time.Second) {
		t.Errorf("background child %d outlived its step", pid)
	}
}

func TestRunSignalStopsEveryStep(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			ws := newWorkspace(t, runSpec{pipeline: `
def hang(ctx):
    ctx.sh("sleep 60 & echo $! > child-$OCTAVO_JOB.pid; wait")

job("one", inputs = ["octavo/push"], run = hang)
job("two", inputs = ["octavo/push"], run = hang)
`})
			eventsPath := filepath.Join(t.TempDir(), "events.jsonl")
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, runnerBin, "run", "--workspace", ws, "--events", eventsPath, "--parallel", "2")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pids := []int{
				readPID(t, filepath.Join(ws, "child-one.pid"), 10*time.Second),
				readPID(t, filepath.Join(ws, "child-two.pid"), 10*time.Second),
			}

			began := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()

			if took := time.Since(began); took > 8*time.Second {
				t.Errorf("runner took %s to stop after %s", took, sig)
			}
			if got, want := cmd.ProcessState.ExitCode(), 128+int(sig); got != want {
				t.Errorf("exit %d, want %d; stderr:\n%s", got, want, stderr.String())
			}
			for _, pid := range pids {
				if !processGone(t, pid, 5*time.Second) {
					t.Errorf("step grandchild %d survived %s", pid, sig)
				}
			}
			_, evs := readEvents(t, eventsPath)
			for _, ev := range evs {
				if _, ok := ev.(*schema.RunFinished); ok {
					t.Errorf("stream has run_finished after %s, want none", sig)
				}
			}
		})
	}
}

func TestRunTimeoutKillsStepIgnoringSIGTERM(t *testing.T) {
	ws := newWorkspace(t, runSpec{pipeline: `
def stubborn(ctx):
    ctx.sh("trap '' TERM; sleep 60 & echo $! > child.pid; wait", timeout = 1)

job("stubborn", inputs = ["octavo/push"], run = stubborn)
`})
	began := time.Now()
	res := runIn(t, ws, runSpec{})

	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("run took %s, want SIGKILL after the grace period", took)
	}
	if sf := res.stepFinished(t, "stubborn", 1); sf.ExitCode != -1 {
		t.Errorf("sh_finished exit %d, want -1", sf.ExitCode)
	}
	pid := readPID(t, filepath.Join(ws, "child.pid"), time.Second)
	if !processGone(t, pid, 5*time.Second) {
		t.Errorf("child %d that ignores SIGTERM survived", pid)
	}
}

// TestRunUnwritableEventsExitsNonZero writes events to /dev/full, where
// every write fails with ENOSPC, so the runner cannot report the run.
func TestRunUnwritableEventsExitsNonZero(t *testing.T) {
	ws := newWorkspace(t, runSpec{pipeline: `
def loud(ctx):
    ctx.sh("seq 1 100000")

job("loud", inputs = ["octavo/push"], run = loud)
`})

	code, _, stderr := runCommandLine(t, "run", "--workspace", ws, "--events", "/dev/full")
	if code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
	if !strings.Contains(stderr, "no space left on device") {
		t.Errorf("stderr %q, want the write error", stderr)
	}
}
