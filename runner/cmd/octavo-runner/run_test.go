package main

import (
	"encoding/base64"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/schema"
)

func TestRunDemoPipeline(t *testing.T) {
	res := runPipeline(t, runSpec{pipeline: readTestdata(t, "demo.star")})

	if res.exit != 0 {
		t.Fatalf("exit %d, want 0; stderr:\n%s", res.exit, res.stderr)
	}
	if got := res.runFinished(t).Outcome; got != schema.RunSuccess {
		t.Errorf("run outcome %q, want %q", got, schema.RunSuccess)
	}
	if got := res.job(t, "build").Outcome; got != schema.JobSucceeded {
		t.Errorf("build outcome %q, want succeeded", got)
	}
	if got := res.job(t, "lint").Outcome; got != schema.JobFailed {
		t.Errorf("lint outcome %q, want failed", got)
	}
	pkg := res.job(t, "package")
	if pkg.Outcome != schema.JobSucceeded {
		t.Errorf("package outcome %q, want succeeded: %s", pkg.Outcome, pkg.Error)
	}
	if got := pkg.Outputs["package"]; got != "out/app.txt.tar" {
		t.Errorf("package outputs[package] = %v, want out/app.txt.tar", got)
	}
	if got := res.output("package", 1, schema.Stdout); !slices.Equal(got, []string{"hello"}) {
		t.Errorf("package step 1 stdout %q, want [hello]", got)
	}
}

func TestRunExitContract(t *testing.T) {
	tests := []struct {
		name        string
		pipeline    string
		wantOutcome schema.RunOutcome
		wantError   string
		wantJobs    int
	}{
		{
			name:        "passing pipeline succeeds",
			pipeline:    "def ok(ctx):\n    ctx.sh('true')\njob('ok', inputs = ['octavo/push'], run = ok)\n",
			wantOutcome: schema.RunSuccess,
			wantJobs:    1,
		},
		{
			name:        "failed job fails the run",
			pipeline:    "def bad(ctx):\n    ctx.sh('exit 3')\njob('bad', inputs = ['octavo/push'], run = bad)\n",
			wantOutcome: schema.RunPipelineFailure,
			wantError:   `job "bad" failed`,
			wantJobs:    1,
		},
		{
			name:        "syntax error is a pipeline failure with position",
			pipeline:    "def broken(ctx)\n    pass\n",
			wantOutcome: schema.RunPipelineFailure,
			wantError:   ".octavo/ci.star:2: got newline, want ':'",
		},
		{
			name:        "runtime error at top level is a pipeline failure",
			pipeline:    "x = 1\ny = x + 'a'\n",
			wantOutcome: schema.RunPipelineFailure,
			wantError:   ".octavo/ci.star:2: ",
		},
		{
			name:        "validation error is a pipeline failure naming the job",
			pipeline:    "def f(ctx):\n    pass\njob('a', inputs = ['nope'], run = f)\n",
			wantOutcome: schema.RunPipelineFailure,
			wantError:   `.octavo/ci.star:3: job "a": unknown input "nope"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runPipeline(t, runSpec{pipeline: tt.pipeline})
			if res.exit != 0 {
				t.Fatalf("exit %d, want 0; stderr:\n%s", res.exit, res.stderr)
			}
			rs := res.events[0].(*schema.RunStarted)
			if len(rs.Jobs) != tt.wantJobs {
				t.Errorf("run_started has %d jobs, want %d", len(rs.Jobs), tt.wantJobs)
			}
			rf := res.runFinished(t)
			if rf.Outcome != tt.wantOutcome {
				t.Errorf("run outcome %q, want %q", rf.Outcome, tt.wantOutcome)
			}
			if !strings.Contains(rf.Error, tt.wantError) {
				t.Errorf("run error %q, want it to contain %q", rf.Error, tt.wantError)
			}
		})
	}
}

func TestRunMissingPipelineFile(t *testing.T) {
	res := runPipeline(t, runSpec{})

	if res.exit != 0 {
		t.Fatalf("exit %d, want 0", res.exit)
	}
	rf := res.runFinished(t)
	if rf.Outcome != schema.RunPipelineFailure || !strings.Contains(rf.Error, ".octavo/ci.star:1: read pipeline file") {
		t.Errorf("run_finished %+v, want a pipeline failure about reading .octavo/ci.star", rf)
	}
}

func TestRunUsageErrors(t *testing.T) {
	ws := newWorkspace(t, runSpec{pipeline: "job('a', inputs = ['octavo/push'], run = lambda ctx: None)\n"})
	notJSON := filepath.Join(t.TempDir(), "bad.json")
	writeFile(t, notJSON, "{not json")
	numberSecret := filepath.Join(t.TempDir(), "secrets.json")
	writeFile(t, numberSecret, `{"token": 12345}`)

	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"missing command", nil, "missing command"},
		{"unknown command", []string{"launch"}, `unknown command "launch"`},
		{"unknown flag", []string{"run", "--workspace", ws, "--fast"}, "flag provided but not defined: -fast"},
		{"source without file", []string{"run", "--workspace", ws, "--source", "octavo/push"}, "want NAME=FILE.json"},
		{"unknown source", []string{"run", "--workspace", ws, "--source", "octavo/tag=x.json"}, `unknown source "octavo/tag"`},
		{"negative parallel", []string{"run", "--workspace", ws, "--parallel", "-1"}, "invalid --parallel -1"},
		{"zero parallel", []string{"run", "--workspace", ws, "--parallel", "0"}, "invalid --parallel 0"},
		{"missing workspace", []string{"run", "--workspace", filepath.Join(ws, "nope")}, "is not a directory"},
		{"unreadable secrets", []string{"run", "--workspace", ws, "--secrets", filepath.Join(ws, "nope.json")}, "read secrets file"},
		{"secrets not JSON", []string{"run", "--workspace", ws, "--secrets", notJSON}, "parse secrets file"},
		{"secret not a string", []string{"run", "--workspace", ws, "--secrets", numberSecret}, `secret "token" is a number, want a string`},
		{"source not JSON", []string{"run", "--workspace", ws, "--source", "octavo/push=" + notJSON}, "parse source payload"},
		{"extra argument", []string{"run", "--workspace", ws, "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCommandLine(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tt.wantStderr)
			}
			if strings.Contains(stderr, "12345") {
				t.Errorf("stderr %q shows a secret value", stderr)
			}
		})
	}
}

func TestRunSkipsTransitiveDependentsOfFailedJob(t *testing.T) {
	res := runPipeline(t, runSpec{pipeline: `
def ok(ctx):
    ctx.sh("true")

def bad(ctx):
    ctx.sh("exit 1")

job("a", inputs = ["octavo/push"], run = bad)
job("b", inputs = ["a"], run = ok)
job("c", inputs = ["b"], run = ok)
job("d", inputs = ["octavo/push"], run = ok)
`})

	if got := res.job(t, "a").Outcome; got != schema.JobFailed {
		t.Errorf("a outcome %q, want failed", got)
	}
	b := res.job(t, "b")
	if b.Outcome != schema.JobSkipped || b.Error != `input job "a" failed` {
		t.Errorf("b finished %q with error %q, want skipped with input job \"a\" failed", b.Outcome, b.Error)
	}
	c := res.job(t, "c")
	if c.Outcome != schema.JobSkipped || c.Error != `input job "b" was skipped` {
		t.Errorf("c finished %q with error %q, want skipped because b was skipped", c.Outcome, c.Error)
	}
	if got := res.job(t, "d").Outcome; got != schema.JobSucceeded {
		t.Errorf("independent job d outcome %q, want succeeded", got)
	}
	for _, ev := range res.events {
		if js, ok := ev.(*schema.JobStarted); ok && (js.JobID == "b" || js.JobID == "c") {
			t.Errorf("skipped job %q has a job_started event", js.JobID)
		}
	}
	if rf := res.runFinished(t); rf.Outcome != schema.RunPipelineFailure || rf.Error != `job "a" failed` {
		t.Errorf("run_finished %+v, want pipeline_failure naming job a", rf)
	}
}

func TestRunAllowFailureKeepsRunSuccessful(t *testing.T) {
	res := runPipeline(t, runSpec{pipeline: `
def bad(ctx):
    ctx.sh("exit 2")

def ok(ctx):
    ctx.sh("true")

job("flaky", inputs = ["octavo/push"], run = bad, allow_failure = True)
job("after", inputs = ["flaky"], run = ok)
job("main", inputs = ["octavo/push"], run = ok)
`})

	if got := res.job(t, "flaky").Outcome; got != schema.JobFailed {
		t.Errorf("flaky outcome %q, want failed", got)
	}
	if got := res.job(t, "after").Outcome; got != schema.JobSkipped {
		t.Errorf("dependent of an allowed failure: outcome %q, want skipped", got)
	}
	if rf := res.runFinished(t); rf.Outcome != schema.RunSuccess {
		t.Errorf("run outcome %q (%s), want success", rf.Outcome, rf.Error)
	}
	rs := res.events[0].(*schema.RunStarted)
	if !rs.Jobs[0].AllowFailure {
		t.Errorf("run_started job graph %+v, want allow_failure on flaky", rs.Jobs)
	}
}

func TestRunReturnNoneBeforeStepsSkipsJob(t *testing.T) {
	res := runPipeline(t, runSpec{
		push: map[string]any{"sha": "abc123", "ref": "refs/heads/dev", "branch": "dev"},
		pipeline: `
def test(ctx):
    ctx.sh("true")

def deploy(ctx):
    if ctx.input("octavo/push").branch != "main":
        return None
    ctx.sh("true")

def notify(ctx):
    ctx.sh("true")

job("test", inputs = ["octavo/push"], run = test)
job("deploy", inputs = ["test", "octavo/push"], run = deploy)
job("notify", inputs = ["deploy"], run = notify)
`})

	if got := res.job(t, "test").Outcome; got != schema.JobSucceeded {
		t.Errorf("test (no return, ran steps) outcome %q, want succeeded", got)
	}
	if got := res.job(t, "deploy").Outcome; got != schema.JobSkipped {
		t.Errorf("deploy (returned None first) outcome %q, want skipped", got)
	}
	if got := res.job(t, "notify").Outcome; got != schema.JobSkipped {
		t.Errorf("notify outcome %q, want skipped", got)
	}
	if rf := res.runFinished(t); rf.Outcome != schema.RunSuccess {
		t.Errorf("run outcome %q, want success", rf.Outcome)
	}
}

func TestRunParallelLimit(t *testing.T) {
	pipeline := `
def work(ctx):
    ctx.sh("sleep 0.3")

job("a", inputs = ["octavo/push"], run = work)
job("b", inputs = ["octavo/push"], run = work)
job("c", inputs = ["octavo/push"], run = work)
job("d", inputs = ["octavo/push"], run = work)
job("e", inputs = ["octavo/push"], run = work)
`
	for _, limit := range []int{1, 2, 3} {
		res := runPipeline(t, runSpec{pipeline: pipeline, args: []string{"--parallel", strconv.Itoa(limit)}})

		running, most := 0, 0
		for _, ev := range res.events {
			switch ev.(type) {
			case *schema.JobStarted:
				running++
				most = max(most, running)
			case *schema.JobFinished:
				running--
			}
		}
		if most != limit {
			t.Errorf("--parallel %d: at most %d jobs ran at once, want exactly %d", limit, most, limit)
		}
	}
}

func TestRunSplitsLongLines(t *testing.T) {
	// 70000 ASCII bytes, then a 3-byte character placed across the first
	// 32 KiB boundary, then a short line.
	res := runPipeline(t, runSpec{pipeline: `
def long(ctx):
    ctx.sh("head -c 32767 /dev/zero | tr '\\0' a; printf '\\342\\202\\254'; head -c 40000 /dev/zero | tr '\\0' b; printf '\\nshort\\n'")

job("long", inputs = ["octavo/push"], run = long)
`})

	lines := res.output("long", 1, schema.Stdout)
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 3 pieces and one short line", len(lines))
	}
	if len(lines[0]) != 32767 {
		t.Errorf("first piece has %d bytes, want 32767 (cut before the euro sign)", len(lines[0]))
	}
	if !strings.HasPrefix(lines[1], "€") {
		t.Errorf("second piece starts with %q, want the whole euro sign", truncate(lines[1], 8))
	}
	whole := strings.Join(lines[:3], "")
	want := strings.Repeat("a", 32767) + "€" + strings.Repeat("b", 40000)
	if whole != want {
		t.Errorf("joined pieces differ from the printed line (len %d, want %d)", len(whole), len(want))
	}
	for i, l := range lines[:3] {
		if len(l) > 32<<10 {
			t.Errorf("piece %d has %d bytes, over the 32 KiB maximum", i, len(l))
		}
	}
	if lines[3] != "short" {
		t.Errorf("line after the long one is %q, want short", lines[3])
	}
}

func TestRunInvalidUTF8(t *testing.T) {
	res := runPipeline(t, runSpec{pipeline: `
def bytes(ctx):
    ctx.sh("printf 'ok\\377\\376end\\n\\300\\n'")
    ctx.sh("printf 'no newline at the end'")

job("bytes", inputs = ["octavo/push"], run = bytes)
`})

	got := res.output("bytes", 1, schema.Stdout)
	want := []string{"ok\uFFFDend", "\uFFFD"}
	if !slices.Equal(got, want) {
		t.Errorf("lines %q, want %q", got, want)
	}
	if got := res.output("bytes", 2, schema.Stdout); !slices.Equal(got, []string{"no newline at the end"}) {
		t.Errorf("unterminated last line: got %q", got)
	}
	if rf := res.runFinished(t); rf.Outcome != schema.RunSuccess {
		t.Errorf("run outcome %q (%s), want success", rf.Outcome, rf.Error)
	}
}

func TestRunMasksSecrets(t *testing.T) {
	const token = "s3cr3t-t0ken/with+chars&more"
	const key = "line-one-abc\nline-two-xyz"
	b64 := base64.StdEncoding.EncodeToString([]byte(token))
	b64url := base64.URLEncoding.EncodeToString([]byte(token))
	query := url.QueryEscape(token)
	path := url.PathEscape(token)

	res := runPipeline(t, runSpec{
		secrets: map[string]string{"TOKEN": token, "KEY": key, "PIN": "123", "QUOTE": `say "hi" \ bye`},
		pipeline: `
def leak(ctx):
    t = ctx.secret("TOKEN")
    ctx.log("log: " + t)
    print("print: " + t)
    ctx.sh("echo raw '" + t + "'")
    ctx.sh("echo b64 ` + b64 + `; echo url ` + b64url + `; echo query '` + query + `'; echo path '` + path + `'")
    ctx.sh(["printf", "%s\n", ctx.secret("KEY")])
    ctx.sh(["echo", json.encode(ctx.secret("QUOTE"))])
    ctx.sh("echo pin " + ctx.secret("PIN"))
    return {"token": t, t: "as key", "nested": [t]}

def reject(ctx):
    ctx.sh("exit 0 # " + ctx.secret("TOKEN"))
    fail("rejected token " + ctx.secret("TOKEN"))

job("leak", inputs = ["octavo/push"], run = leak)
job("fail", inputs = ["octavo/push"], run = reject)
`})

	secretForms := []string{token, b64, strings.TrimRight(b64, "="), b64url, query, path, "line-one-abc", "line-two-xyz", `say \"hi\" \\ bye`}
	for i, line := range res.lines {
		for _, form := range secretForms {
			if strings.Contains(string(line), form) {
				t.Errorf("event line %d contains secret form %q: %s", i+1, form, truncate(string(line), 300))
			}
		}
	}

	joined := string(bytesJoin(res.lines))
	for _, want := range []string{
		`"log: ***TOKEN***"`,
		`"print: ***TOKEN***"`,
		`"raw ***TOKEN***"`,
		`"b64 ***TOKEN***"`,
		`"url ***TOKEN***"`,
		`"query ***TOKEN***"`,
		`"path ***TOKEN***"`,
		`"line":"***KEY***"`,
		`"line":"\"***QUOTE***\""`,
		`"cmd":"echo raw '***TOKEN***'"`,
		`"token":"***TOKEN***"`,
		`"***TOKEN***":"as key"`,
		`"nested":["***TOKEN***"]`,
		`# ***TOKEN***`,
		`"pin 123"`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("events do not contain %s", want)
		}
	}
	if got := res.job(t, "fail").Error; !strings.Contains(got, "rejected token ***TOKEN***") {
		t.Errorf("job error %q, want the masked placeholder", got)
	}

	warnings := res.logs("")
	if len(warnings) != 1 || !strings.Contains(warnings[0], `secret "PIN" is shorter than 4 bytes`) {
		t.Errorf("runner warnings %q, want one about the short secret PIN", warnings)
	}
}

func TestRunStepLimit(t *testing.T) {
	t.Run("top level endless loop", func(t *testing.T) {
		res := runPipeline(t, runSpec{pipeline: "def spin():\n    n = 0\n    while True:\n        n += 1\n\nspin()\n"})
		rf := res.runFinished(t)
		if rf.Outcome != schema.RunPipelineFailure || !strings.Contains(rf.Error, "execution step limit reached") || !strings.HasPrefix(rf.Error, ".octavo/ci.star:") {
			t.Errorf("run_finished %+v, want a step-limit pipeline failure with its position", rf)
		}
	})
	t.Run("run function endless loop", func(t *testing.T) {
		res := runPipeline(t, runSpec{pipeline: `
def spin(ctx):
    n = 0
    while True:
        n += 1

job("spin", inputs = ["octavo/push"], run = spin)
`})
		jf := res.job(t, "spin")
		if jf.Outcome != schema.JobFailed || !strings.Contains(jf.Error, "execution step limit reached") || !strings.HasPrefix(jf.Error, ".octavo/ci.star:") {
			t.Errorf("job_finished %+v, want a step-limit failure with its position", jf)
		}
	})
}

func TestRunShStringAndList(t *testing.T) {
	res := runPipeline(t, runSpec{pipeline: `
def both(ctx):
    ctx.sh("echo $((1 + 2)) 'quoted arg'")
    ctx.sh(["printf", "%s|", "a b", "$HOME", "it's"])

job("both", inputs = ["octavo/push"], run = both)
`})

	if got := res.output("both", 1, schema.Stdout); !slices.Equal(got, []string{"3 quoted arg"}) {
		t.Errorf("string command output %q, want shell expansion [3 quoted arg]", got)
	}
	if got := res.output("both", 2, schema.Stdout); !slices.Equal(got, []string{"a b|$HOME|it's|"}) {
		t.Errorf("argv command output %q, want arguments passed verbatim", got)
	}
	var cmds []string
	for _, ev := range res.events {
		if s, ok := ev.(*schema.ShStarted); ok {
			cmds = append(cmds, s.Cmd)
		}
	}
	want := []string{"echo $((1 + 2)) 'quoted arg'", `printf '%s|' 'a b' '$HOME' 'it'\''s'`}
	if !slices.Equal(cmds, want) {
		t.Errorf("sh_started cmds %q, want %q", cmds, want)
	}
}

func TestRunCheckFalseReturnsStruct(t *testing.T) {
	res := runPipeline(t, runSpec{pipeline: `
def probe(ctx):
    r = ctx.sh("echo out; echo err >&2; exit 7", check = False)
    ok = ctx.sh(["echo", "fine"])
    return {"exit": r.exit, "stdout": r.stdout, "stderr": r.stderr, "cmd": r.cmd, "truncated": r.truncated, "ok": ok.stdout}

job("probe", inputs = ["octavo/push"], run = probe)
`})

	jf := res.job(t, "probe")
	if jf.Outcome != schema.JobSucceeded {
		t.Fatalf("probe outcome %q (%s), want succeeded despite exit 7", jf.Outcome, jf.Error)
	}
	want := map[string]any{"exit": float64(7), "stdout": "out\n", "stderr": "err\n", "cmd": "echo out; echo err >&2; exit 7", "truncated": false, "ok": "fine\n"}
	for k, v := range want {
		if jf.Outputs[k] != v {
			t.Errorf("outputs[%q] = %#v, want %#v", k, jf.Outputs[k], v)
		}
	}
	if got := res.stepFinished(t, "probe", 1).ExitCode; got != 7 {
		t.Errorf("sh_finished exit_code %d, want 7", got)
	}
}

func TestRunCapturedOutputIsBounded(t *testing.T) {
	res := runPipeline(t, runSpec{pipeline: `
def big(ctx):
    r = ctx.sh("head -c 1500000 /dev/zero | tr '\\0' x; echo")
    return {"len": len(r.stdout), "truncated": r.truncated}

job("big", inputs = ["octavo/push"], run = big)
`})

	jf := res.job(t, "big")
	if jf.Outputs["len"] != float64(1<<20) || jf.Outputs["truncated"] != true {
		t.Errorf("outputs %v, want len 1048576 and truncated", jf.Outputs)
	}
	total := 0
	for _, l := range res.output("big", 1, schema.Stdout) {
		total += len(l)
	}
	if total != 1500000 {
		t.Errorf("streamed %d bytes of output, want all 1500000", total)
	}
}

func TestRunEnvAndCwd(t *testing.T) {
	res := runPipeline(t, runSpec{
		files: map[string]string{"sub/marker.txt": "here\n"},
		pipeline: `
def where(ctx):
    ctx.sh("echo $GREETING $OCTAVO_JOB $CI; cat marker.txt; pwd", env = {"GREETING": "hello"}, cwd = "sub")
    return {"env": ctx.env("OCTAVO_JOB"), "missing": ctx.env("NOT_SET_ANYWHERE", "fallback")}

job("where", inputs = ["octavo/push"], run = where)
`})

	got := res.output("where", 1, schema.Stdout)
	if len(got) != 3 || got[0] != "hello where true" || got[1] != "here" || !strings.HasSuffix(got[2], "/sub") {
		t.Errorf("output %q, want env values, the file from sub and a cwd ending in /sub", got)
	}
	jf := res.job(t, "where")
	if jf.Outputs["env"] != "where" || jf.Outputs["missing"] != "fallback" {
		t.Errorf("outputs %v, want ctx.env values", jf.Outputs)
	}
}

func TestRunInputOfAncestor(t *testing.T) {
	res := runPipeline(t, runSpec{pipeline: `
def a(ctx):
    ctx.sh("true")
    return {"version": "1.2.3", "files": ["x", "y"]}

def b(ctx):
    return {"from_a": ctx.input("a")["version"]}

def c(ctx):
    ctx.sh("true")
    return {"via_b": ctx.input("b")["from_a"], "direct": ctx.input("a")["files"][1]}

job("a", inputs = ["octavo/push"], run = a)
job("b", inputs = ["a"], run = b)
job("c", inputs = ["b"], run = c)
`})

	jf := res.job(t, "c")
	if jf.Outcome != schema.JobSucceeded || jf.Outputs["via_b"] != "1.2.3" || jf.Outputs["direct"] != "y" {
		t.Errorf("c finished %q with outputs %v (%s), want values read from a and b", jf.Outcome, jf.Outputs, jf.Error)
	}
}

func TestRunInputOfNonInputFails(t *testing.T) {
	res := runPipeline(t, runSpec{pipeline: `
def a(ctx):
    ctx.sh("true")
    return {"x": 1}

def b(ctx):
    return ctx.input("a")

job("a", inputs = ["octavo/push"], run = a)
job("b", inputs = ["octavo/push"], run = b)
`})

	jf := res.job(t, "b")
	want := `.octavo/ci.star:7: ctx.input("a"): "a" is not an input of job "b" or of its input jobs; add it to the inputs of job "b"`
	if jf.Outcome != schema.JobFailed || jf.Error != want {
		t.Errorf("b finished %q with error %q, want failed with %q", jf.Outcome, jf.Error, want)
	}
}

func TestRunPushPayload(t *testing.T) {
	res := runPipeline(t, runSpec{
		push: map[string]any{
			"sha": "0123abcd", "ref": "refs/heads/main", "branch": "main", "before": "fedc3210",
			"pusher": "alice", "repo": "alice/app", "clone_url": "http://127.0.0.1:3000/alice/app.git",
			"compare_url": "http://127.0.0.1:3000/alice/app/compare/a...b", "message": "Fix it\n",
		},
		pipeline: `
def show(ctx):
    p = ctx.input("octavo/push")
    return {"sha": p.sha, "branch": p.branch, "tag": p.tag, "repo": p.repo, "message": p.message, "pusher": p.pusher}

job("show", inputs = ["octavo/push"], run = show)
`})

	jf := res.job(t, "show")
	want := map[string]any{"sha": "0123abcd", "branch": "main", "tag": nil, "repo": "alice/app", "message": "Fix it\n", "pusher": "alice"}
	for k, v := range want {
		if jf.Outputs[k] != v {
			t.Errorf("outputs[%q] = %#v, want %#v", k, jf.Outputs[k], v)
		}
	}
}

func TestRunPushPayloadFromGitHead(t *testing.T) {
	ws := newWorkspace(t, runSpec{pipeline: `
def show(ctx):
    p = ctx.input("octavo/push")
    return {"sha": p.sha, "branch": p.branch, "ref": p.ref, "message": p.message, "repo": p.repo, "clone_url": p.clone_url}

job("show", inputs = ["octavo/push"], run = show)
`})
	git := func(args ...string) string {
		t.Helper()
		cmd := execCommand(t, "git", append([]string{"-C", ws}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "trunk")
	git("-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "first commit")
	git("remote", "add", "origin", "http://user:pass@127.0.0.1:3000/owner/proj.git")
	sha := git("rev-parse", "HEAD")

	res := runIn(t, ws, runSpec{})

	jf := res.job(t, "show")
	want := map[string]any{"sha": sha, "branch": "trunk", "ref": "refs/heads/trunk", "message": "first commit", "repo": "owner/proj", "clone_url": "http://127.0.0.1:3000/owner/proj.git"}
	for k, v := range want {
		if jf.Outputs[k] != v {
			t.Errorf("outputs[%q] = %#v, want %#v", k, jf.Outputs[k], v)
		}
	}
}

func TestRunTerminalView(t *testing.T) {
	res := runPipeline(t, runSpec{terminal: true, pipeline: readTestdata(t, "demo.star")})

	if res.exit != 0 {
		t.Fatalf("exit %d; stderr:\n%s", res.exit, res.stderr)
	}
	for _, want := range []string{
		"Running 3 jobs\n",
		"[build  ] ▶ started\n",
		"[build  ] $ echo compiling; mkdir -p out && echo hello > out/app.txt\n",
		"[build  ]   compiling\n",
		"[lint   ]   style: line too long\n",
		"[package] ✓ succeeded (",
		"\nSummary\n",
		"  ✗ lint     failed",
		"(failure allowed)",
		"Run succeeded in ",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("terminal output lacks %q; got:\n%s", want, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "\x1b[") {
		t.Errorf("terminal output to a pipe contains ANSI colour codes")
	}
	if strings.Contains(res.stdout, `"type":`) {
		t.Errorf("terminal output contains JSON events")
	}
}

func TestRunEventsToStdout(t *testing.T) {
	ws := newWorkspace(t, runSpec{pipeline: "def f(ctx):\n    ctx.sh('echo hi')\njob('f', inputs = ['octavo/push'], run = f)\n"})

	code, stdout, stderr := runCommandLine(t, "run", "--workspace", ws, "--events", "-")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 7 {
		t.Fatalf("got %d event lines on stdout, want 7:\n%s", len(lines), stdout)
	}
	for i, line := range lines {
		if err := validateLine(line); err != nil {
			t.Errorf("line %d: %v", i+1, err)
		}
	}
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	valid := filepath.Join(dir, "valid.star")
	writeFile(t, valid, readTestdata(t, "demo.star"))
	invalid := filepath.Join(dir, "invalid.star")
	writeFile(t, invalid, "def f(ctx):\n    pass\njob('a', inputs = ['b'], run = f)\njob('b', inputs = ['a'], run = f)\n")

	code, stdout, stderr := runCommandLine(t, "check", "--pipeline", valid)
	if code != 0 {
		t.Errorf("valid pipeline: exit %d, want 0; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"3 jobs, valid", "build    <- octavo/push", "lint     <- octavo/push  (allow_failure)", "package  <- build"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("check output lacks %q; got:\n%s", want, stdout)
		}
	}

	code, _, stderr = runCommandLine(t, "check", "--pipeline", invalid)
	if code != 1 {
		t.Errorf("invalid pipeline: exit %d, want 1", code)
	}
	if want := invalid + `:3: job "a": dependency cycle a -> b -> a`; !strings.Contains(stderr, want) {
		t.Errorf("stderr %q, want it to contain %q", stderr, want)
	}
}

func TestVersionCommand(t *testing.T) {
	code, stdout, _ := runCommandLine(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "octavo-runner ") {
		t.Errorf("version: exit %d, output %q, want exit 0 and octavo-runner VERSION", code, stdout)
	}
}

func bytesJoin(lines [][]byte) []byte {
	var out []byte
	for _, l := range lines {
		out = append(out, l...)
		out = append(out, '\n')
	}
	return out
}

func TestRunFunctionErrors(t *testing.T) {
	res := runPipeline(t, runSpec{
		secrets: map[string]string{"SET": "value-1234"},
		pipeline: `
def late(ctx):
    job("late", inputs = ["octavo/push"], run = late)

def missing_secret(ctx):
    ctx.secret("UNSET")

def bad_outputs(ctx):
    ctx.sh("true")
    return {"fn": late}

def bad_return(ctx):
    return "done"

def bad_cmd(ctx):
    ctx.sh(42)

def bad_level(ctx):
    ctx.log("x", level = "debug")

job("late", inputs = ["octavo/push"], run = late)
job("missing-secret", inputs = ["octavo/push"], run = missing_secret)
job("bad-outputs", inputs = ["octavo/push"], run = bad_outputs)
job("bad-return", inputs = ["octavo/push"], run = bad_return)
job("bad-cmd", inputs = ["octavo/push"], run = bad_cmd)
job("bad-level", inputs = ["octavo/push"], run = bad_level)
`})

	tests := []struct {
		job  string
		want string
	}{
		{"late", ".octavo/ci.star:3: job() can only be called while the pipeline file loads, not from a run function"},
		{"missing-secret", `.octavo/ci.star:6: ctx.secret("UNSET"): no secret with that name is set for this run`},
		{"bad-outputs", `.octavo/ci.star: invalid outputs: output ["fn"]: a function has no JSON form; return strings, numbers, bools, None, lists and dicts`},
		{"bad-return", ".octavo/ci.star: run function returned a string; return a dict of outputs, or None"},
		{"bad-cmd", ".octavo/ci.star:16: ctx.sh: cmd is a int, want a string (run by sh -c) or a list of strings (argv)"},
		{"bad-level", `.octavo/ci.star:19: ctx.log: invalid level "debug"; use "info", "warn" or "error"`},
	}
	for _, tt := range tests {
		t.Run(tt.job, func(t *testing.T) {
			jf := res.job(t, tt.job)
			if jf.Outcome != schema.JobFailed || jf.Error != tt.want {
				t.Errorf("job %s finished %q with error %q, want failed with %q", tt.job, jf.Outcome, jf.Error, tt.want)
			}
		})
	}
}
