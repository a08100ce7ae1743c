package main

import (
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
