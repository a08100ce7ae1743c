package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/schema"
)

// TestRunSelfContainingOutputsFailJob covers outputs that contain
// themselves or nest very deeply. Converting them to JSON used to recurse
// without end, so the runner hung and then crashed with no run_finished.
func TestRunSelfContainingOutputsFailJob(t *testing.T) {
	tests := []struct {
		name     string
		pipeline string
	}{
		{"a list that contains itself", `
def f(ctx):
    x = []
    x.append(x)
    return {"a": x}
`},
		{"a dict that contains itself", `
def f(ctx):
    d = {}
    d["self"] = d
    return d
`},
		{"a list nested ten thousand deep", `
def f(ctx):
    x = []
    for i in range(10000):
        x = [x]
    return {"a": x}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runPipeline(t, runSpec{pipeline: tt.pipeline + `
job("f", inputs = ["octavo/push"], run = f)
`})
			if res.exit != 0 {
				t.Fatalf("exit %d, want 0; stderr:\n%s", res.exit, truncate(res.stderr, 2000))
			}
			jf := res.job(t, "f")
			if jf.Outcome != schema.JobFailed {
				t.Errorf("job outcome %q, want failed", jf.Outcome)
			}
			if !strings.Contains(jf.Error, "nested deeper than") {
				t.Errorf("job error %q, want it to name the nesting limit", truncate(jf.Error, 300))
			}
			if rf := res.runFinished(t); rf.Outcome != schema.RunPipelineFailure {
				t.Errorf("run outcome %q, want pipeline_failure", rf.Outcome)
			}
		})
	}
}

// TestRunShInvalidCwd covers ctx.sh with a cwd that is not a directory.
// The job used to fail with "fork/exec /usr/bin/sh: no such file or
// directory", which blames the shell instead of the cwd.
func TestRunShInvalidCwd(t *testing.T) {
	tests := []struct {
		name string
		cwd  string
		want string
	}{
		{"a missing directory", "missing", `ctx.sh: cwd "missing" does not exist`},
		{"a file", "file.txt", `ctx.sh: cwd "file.txt" is not a directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runPipeline(t, runSpec{
				files: map[string]string{"file.txt": "x"},
				pipeline: `
def f(ctx):
    ctx.sh("pwd", cwd = "` + tt.cwd + `")

job("f", inputs = ["octavo/push"], run = f)
`})
			jf := res.job(t, "f")
			if jf.Outcome != schema.JobFailed {
				t.Errorf("job outcome %q, want failed", jf.Outcome)
			}
			if !strings.Contains(jf.Error, tt.want) {
				t.Errorf("job error %q, want it to contain %q", jf.Error, tt.want)
			}
		})
	}
}

// TestRunMalformedSourceFiles covers --source files that are not one JSON
// object with string fields. Data after the object used to be ignored, and
// a field of the wrong type was described with a Go type name such as
// "json.Number".
func TestRunMalformedSourceFiles(t *testing.T) {
	ws := newWorkspace(t, runSpec{pipeline: "job('a', inputs = ['octavo/push'], run = lambda ctx: None)\n"})
	tests := []struct {
		name    string
		payload string
		want    string
	}{
		{"a second object after the first", `{"sha": "abc"} {"sha": "def"}`, "want one JSON object, found more after it"},
		{"text after the object", `{"sha": "abc"} trailing`, "want one JSON object, found more after it"},
		{"a number field", `{"sha": 5}`, `field "sha" is a number, want a string or null`},
		{"an array field", `{"branch": ["main"]}`, `field "branch" is an array, want a string or null`},
		{"null instead of an object", `null`, "want a JSON object, got null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "push.json")
			writeFile(t, path, tt.payload)
			code, _, stderr := runCommandLine(t, "run", "--workspace", ws, "--source", "octavo/push="+path)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tt.want)
			}
		})
	}
}

// TestRunBoundsEventSize covers free text and outputs of any size from a
// pipeline. A cmd, log message, error or outputs of several megabytes
// used to become one event line of that size, which the sidecar drops as
// too long (4 MiB), losing for example a job_finished.
func TestRunBoundsEventSize(t *testing.T) {
	res := runPipeline(t, runSpec{pipeline: `
big = "x" * 5000000

def chatty(ctx):
    ctx.log(big)
    ctx.sh("true # " + big[:100000])

def failing(ctx):
    fail(big)

def hoarder(ctx):
    return {"data": big}

job("chatty", inputs = ["octavo/push"], run = chatty)
job("failing", inputs = ["octavo/push"], run = failing, allow_failure = True)
job("hoarder", inputs = ["octavo/push"], run = hoarder, allow_failure = True)
`})
	const maxLine = 100 << 10
	for i, line := range res.lines {
		if len(line) > maxLine {
			t.Errorf("event line %d is %d bytes, want at most %d: %s", i+1, len(line), maxLine, truncate(string(line), 200))
		}
	}
	if jf := res.job(t, "chatty"); jf.Outcome != schema.JobSucceeded {
		t.Errorf("job chatty %q (%s), want succeeded", jf.Outcome, truncate(jf.Error, 200))
	}
	if jf := res.job(t, "failing"); !strings.Contains(jf.Error, "bytes cut") {
		t.Errorf("job failing error %q, want it cut with a note", truncate(jf.Error, 200))
	}
	jf := res.job(t, "hoarder")
	if jf.Outcome != schema.JobFailed {
		t.Errorf("job hoarder %q, want failed", jf.Outcome)
	}
	if !strings.Contains(jf.Error, "outputs are too large") {
		t.Errorf("job hoarder error %q, want it to name the outputs limit", truncate(jf.Error, 200))
	}
}
