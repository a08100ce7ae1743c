package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/octavo-ci/octavo/schema"
	"github.com/octavo-ci/octavo/schema/schematest"
)

// runnerBin is the octavo-runner binary built once by TestMain.
var runnerBin string

// eventsSchema validates every event line the tests produce.
var eventsSchema *jsonschema.Schema

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "octavo-runner-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)

	runnerBin = filepath.Join(dir, "octavo-runner")
	buildArgs := []string{"build", "-o", runnerBin}
	if raceEnabled {
		buildArgs = append(buildArgs, "-race")
	}
	build := exec.Command("go", append(buildArgs, ".")...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build octavo-runner:", err)
		return 1
	}

	eventsSchema, err = schematest.Compile("events.schema.json")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// runResult is one finished octavo-runner process.
type runResult struct {
	exit   int
	lines  [][]byte
	events []any
	stdout string
	stderr string
}

// runSpec describes a test run. Pipeline is written to
// WORKSPACE/.octavo/ci.star unless it is empty.
type runSpec struct {
	pipeline string
	files    map[string]string
	secrets  map[string]string
	push     map[string]any
	args     []string
	// terminal runs without --events, so the readable view goes to stdout.
	terminal bool
}

// newWorkspace writes the pipeline and files of spec into a fresh
// directory and returns it.
func newWorkspace(t *testing.T, spec runSpec) string {
	t.Helper()
	ws := t.TempDir()
	if spec.pipeline != "" {
		writeFile(t, filepath.Join(ws, ".octavo", "ci.star"), spec.pipeline)
	}
	for name, text := range spec.files {
		writeFile(t, filepath.Join(ws, name), text)
	}
	return ws
}

// runPipeline runs octavo-runner on spec with a deadline, checks every
// event line against the JSON Schema, and checks that a run that exited 0
// ends with run_finished.
func runPipeline(t *testing.T, spec runSpec) runResult {
	t.Helper()
	ws := newWorkspace(t, spec)
	return runIn(t, ws, spec)
}

func runIn(t *testing.T, ws string, spec runSpec) runResult {
	t.Helper()
	tmp := t.TempDir()
	eventsPath := filepath.Join(tmp, "events.jsonl")
	args := []string{"run", "--workspace", ws}
	if !spec.terminal {
		args = append(args, "--events", eventsPath)
	}
	if spec.secrets != nil {
		path := filepath.Join(tmp, "secrets.json")
		writeJSON(t, path, spec.secrets)
		args = append(args, "--secrets", path)
	}
	if spec.push != nil {
		path := filepath.Join(tmp, "push.json")
		writeJSON(t, path, spec.push)
		args = append(args, "--source", "octavo/push="+path)
	}
	args = append(args, spec.args...)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, runnerBin, args...)
	cmd.Dir = ws
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := runResult{exit: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run octavo-runner %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("octavo-runner %v did not finish within the deadline; stderr:\n%s", args, stderr.String())
	}

	if !spec.terminal {
		res.lines, res.events = readEvents(t, eventsPath)
		if res.exit == 0 {
			requireLastRunFinished(t, res.events)
		}
	}
	return res
}

// readEvents reads an events file, validating each line against the schema
// and decoding it with schema.Decode.
func readEvents(t *testing.T, path string) ([][]byte, []any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open events: %v", err)
	}
	defer f.Close()

	var lines [][]byte
	var evs []any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		line := bytes.Clone(sc.Bytes())
		if err := schematest.ValidateJSON(eventsSchema, line); err != nil {
			t.Errorf("event line %d violates events.schema.json: %v\nline: %s", len(lines)+1, err, truncate(string(line), 300))
		}
		ev, err := schema.Decode(line)
		if err != nil {
			t.Fatalf("decode event line %d: %v", len(lines)+1, err)
		}
		lines = append(lines, line)
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read events: %v", err)
	}
	return lines, evs
}

func requireLastRunFinished(t *testing.T, evs []any) {
	t.Helper()
	if len(evs) == 0 {
		t.Fatal("exit 0 with an empty event stream")
	}
	if _, ok := evs[len(evs)-1].(*schema.RunFinished); !ok {
		t.Fatalf("last event is %T, want *schema.RunFinished", evs[len(evs)-1])
	}
	if _, ok := evs[0].(*schema.RunStarted); !ok {
		t.Fatalf("first event is %T, want *schema.RunStarted", evs[0])
	}
}

// runFinished returns the last event, which must be run_finished.
func (r runResult) runFinished(t *testing.T) *schema.RunFinished {
	t.Helper()
	if len(r.events) == 0 {
		t.Fatalf("no events; exit %d, stderr:\n%s", r.exit, r.stderr)
	}
	rf, ok := r.events[len(r.events)-1].(*schema.RunFinished)
	if !ok {
		t.Fatalf("last event is %T, want *schema.RunFinished", r.events[len(r.events)-1])
	}
	return rf
}

// job returns the job_finished event of id.
func (r runResult) job(t *testing.T, id string) *schema.JobFinished {
	t.Helper()
	for _, ev := range r.events {
		if jf, ok := ev.(*schema.JobFinished); ok && jf.JobID == id {
			return jf
		}
	}
	t.Fatalf("no job_finished for job %q; stderr:\n%s", id, r.stderr)
	return nil
}

// output returns the output lines of one step.
func (r runResult) output(job string, seq int, stream schema.Stream) []string {
	var lines []string
	for _, ev := range r.events {
		if o, ok := ev.(*schema.ShOutput); ok && o.JobID == job && o.Seq == seq && o.Stream == stream {
			lines = append(lines, o.Line)
		}
	}
	return lines
}

// logs returns the messages of log events of job ("" for runner warnings).
func (r runResult) logs(job string) []string {
	var msgs []string
	for _, ev := range r.events {
		if l, ok := ev.(*schema.Log); ok && l.JobID == job {
			msgs = append(msgs, l.Message)
		}
	}
	return msgs
}

func (r runResult) stepFinished(t *testing.T, job string, seq int) *schema.ShFinished {
	t.Helper()
	for _, ev := range r.events {
		if f, ok := ev.(*schema.ShFinished); ok && f.JobID == job && f.Seq == seq {
			return f
		}
	}
	t.Fatalf("no sh_finished for job %q step %d", job, seq)
	return nil
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(data))
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// processGone polls until pid no longer exists or the deadline passes.
func processGone(t *testing.T, pid int, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if !processAlive(pid) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// readPID polls for a file holding a pid, written by a step.
func readPID(t *testing.T, path string, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(data), "\n") {
			var pid int
			if _, err := fmt.Sscan(string(data), &pid); err == nil && pid > 0 {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no pid in %s within %s", path, within)
	return 0
}

// runCommandLine runs octavo-runner with args and a deadline and returns
// its exit status and output.
func runCommandLine(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, runnerBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run octavo-runner %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// execCommand returns a command bound to the test's context.
func execCommand(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	return exec.CommandContext(t.Context(), name, args...)
}

// validateLine checks one event line against events.schema.json.
func validateLine(line string) error {
	return schematest.ValidateJSON(eventsSchema, []byte(line))
}
