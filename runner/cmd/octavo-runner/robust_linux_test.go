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
	// The failed event is named by its wire type, not by a Go type name.
	if strings.Contains(stderr.String(), "*schema.") {
		t.Errorf("stderr %q names a Go type, want the event type", stderr.String())
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

// TestRunSignalDuringLoadStopsRun covers SIGTERM while a slow top level
// of the pipeline file runs. The signal used to wait for the load to end,
// and a file that then failed to load was reported with run_finished and
// exit 0, as if the run had completed.
func TestRunSignalDuringLoadStopsRun(t *testing.T) {
	ws := newWorkspace(t, runSpec{pipeline: `
def spin():
    s = "x" * 1000000
    for i in range(100000):
        s.upper()

spin()
fail("the load was not stopped")
`})
	eventsPath := filepath.Join(t.TempDir(), "events.jsonl")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, runnerBin, "run", "--workspace", ws, "--events", eventsPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The top level is running once the runner has used some CPU time.
	waitForCPUTicks(t, cmd.Process.Pid, 20, 10*time.Second)

	began := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("runner took %s to stop after SIGTERM", took)
	}
	if got, want := cmd.ProcessState.ExitCode(), 128+int(syscall.SIGTERM); got != want {
		t.Errorf("exit %d, want %d; stderr:\n%s", got, want, stderr.String())
	}
	_, evs := readEvents(t, eventsPath)
	for _, ev := range evs {
		if _, ok := ev.(*schema.RunFinished); ok {
			t.Errorf("stream has run_finished after SIGTERM, want none")
		}
	}
}

// waitForCPUTicks polls until process pid has used at least ticks clock
// ticks of user and system time.
func waitForCPUTicks(t *testing.T, pid, ticks int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("read stat of %d: %v", pid, err)
		}
		s := string(data)
		// utime and stime are fields 14 and 15; the fields after the
		// command name start at field 3.
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		var utime, stime int
		fmt.Sscan(fields[11], &utime)
		fmt.Sscan(fields[12], &stime)
		if utime+stime >= ticks {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d used fewer than %d CPU ticks within %s", pid, ticks, within)
}

// TestRunReapsOrphansDuringLongStep covers a long step whose processes
// leave orphans that exit while the step still runs, like "(cmd &)" in a
// build script. Reaped only when a step ended, they piled up as zombies of
// the runner for the whole step, using up process ids.
func TestRunReapsOrphansDuringLongStep(t *testing.T) {
	res := runPipeline(t, runSpec{pipeline: `
def orphans(ctx):
    ctx.sh("""
count() { for c in $(cat /proc/$PPID/task/*/children); do cut -d' ' -f3 /proc/$c/stat; done | grep -c Z; }
for i in $(seq 1 30); do (sleep 0.01 &); done
sleep 0.2
for n in $(seq 1 50); do z=$(count); [ "$z" -eq 0 ] && break; sleep 0.1; done
echo $z
""")

job("orphans", inputs = ["octavo/push"], run = orphans)
`})
	got := res.output("orphans", 1, schema.Stdout)
	if len(got) != 1 || got[0] != "0" {
		t.Errorf("zombies left while the step ran: %q, want [0]", got)
	}
}
