package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/plugin/internal/giteatest"
)

const passingPipeline = `
def build(ctx):
    ctx.sh("echo building; test -f README.md")
    return {"answer": "42"}

def check(ctx):
    got = ctx.input("build")["answer"]
    ctx.sh(["test", got, "=", "42"])

job("build", inputs = ["octavo/push"], run = build)
job("check", inputs = ["build"], run = check)
`

// TestE2EPushEndsAsSuccess pushes a passing pipeline and follows the run
// from Gitea's combined status to the run page and the read API.
func TestE2EPushEndsAsSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "push-success")

	sha := e.push(map[string]string{".octavo/ci.star": passingPipeline}, "Add a passing pipeline")
	st := e.waitStatus(sha)

	if st.State != "success" {
		t.Errorf("octavo status is %q (%s), want success", st.State, st.Description)
	}
	cs, err := e.gitea.CombinedStatus(t.Context(), e.repo.FullName, sha)
	if err != nil {
		t.Fatal(err)
	}
	if cs.State != "success" {
		t.Errorf("combined status is %q, want success", cs.State)
	}
	if !strings.HasPrefix(st.TargetURL, e.sidecar.URL+"/runs/") {
		t.Fatalf("target_url is %q, want a run page under %s/runs/", st.TargetURL, e.sidecar.URL)
	}

	page, code, err := e.get(st.TargetURL)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK {
		t.Fatalf("GET %s returned HTTP %d, want 200", st.TargetURL, code)
	}
	if !strings.Contains(string(page), sha[:7]) {
		t.Errorf("run page %s does not show the commit %s", st.TargetURL, sha[:7])
	}

	run := e.run(runIDFromURL(t, st.TargetURL))
	if run.State != "complete" {
		t.Errorf("run state is %q, want complete", run.State)
	}
	if run.SHA != sha {
		t.Errorf("run sha is %q, want %q", run.SHA, sha)
	}

	badge, code, err := e.get("/badge/" + e.repo.FullName + ".svg")
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || !strings.Contains(string(badge), "passing") {
		t.Errorf("badge returned HTTP %d and %.300q, want 200 and a passing badge", code, badge)
	}
}

// TestE2EFailedPipelineEndsAsFailure covers the pipeline's own failures: a
// job that exits non-zero and a ci.star that does not parse. Both are
// "failure" on the forge, and the run page explains the syntax error.
func TestE2EFailedPipelineEndsAsFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		pipeline string
		// pageShows is text the run page must contain.
		pageShows []string
	}{
		{
			name: "a job that exits 3 fails the run",
			pipeline: `
def build(ctx):
    ctx.sh("echo about to fail; exit 3")

job("build", inputs = ["octavo/push"], run = build)
`,
			pageShows: []string{"build", "exited with code 3"},
		},
		{
			name: "a syntax error fails the run and is shown",
			pipeline: `
def build(ctx)
    ctx.sh("true")

job("build", inputs = ["octavo/push"], run = build)
`,
			pageShows: []string{".octavo/ci.star:", "got newline"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, fmt.Sprintf("failing-%d", i))

			sha := e.push(map[string]string{".octavo/ci.star": tt.pipeline}, "Add a failing pipeline")
			st := e.waitStatus(sha)

			if st.State != "failure" {
				t.Errorf("octavo status is %q (%s), want failure", st.State, st.Description)
			}
			run := e.run(runIDFromURL(t, st.TargetURL))
			if run.State != "failed" || run.FailureKind != "pipeline-failure" {
				t.Errorf("run is %s/%s, want failed/pipeline-failure", run.State, run.FailureKind)
			}
			page, code, err := e.get(st.TargetURL)
			if err != nil {
				t.Fatal(err)
			}
			if code != http.StatusOK {
				t.Fatalf("GET %s returned HTTP %d, want 200", st.TargetURL, code)
			}
			for _, want := range tt.pageShows {
				if !strings.Contains(string(page), want) {
					t.Errorf("run page does not contain %q:\n%.3000s", want, page)
				}
			}
		})
	}
}

// TestE2ESecondPushReplacesActiveRun pushes twice to main while the first
// run waits at a gate: the first run ends replaced with a warning naming
// the second, and the second succeeds.
func TestE2ESecondPushReplacesActiveRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "replace")
	g := newGate(t)
	pipeline := fmt.Sprintf(`
def build(ctx):
    ctx.sh("if [ -f slow ]; then %s; fi")

job("build", inputs = ["octavo/push"], run = build)
`, strings.ReplaceAll(g.step(), `"`, `\"`))

	first := e.push(map[string]string{".octavo/ci.star": pipeline, "slow": "wait at the gate\n"}, "Add a slow pipeline")
	g.waitStarted(e)
	if err := e.clone.Remove("slow"); err != nil {
		t.Fatal(err)
	}
	second := e.push(nil, "Make the pipeline fast")

	secondStatus := e.waitStatus(second)
	if secondStatus.State != "success" {
		t.Errorf("second push's status is %q (%s), want success", secondStatus.State, secondStatus.Description)
	}
	secondID := runIDFromURL(t, secondStatus.TargetURL)

	firstStatus := e.waitStatus(first)
	if firstStatus.State != "warning" {
		t.Errorf("first push's status is %q (%s), want warning", firstStatus.State, firstStatus.Description)
	}
	if want := fmt.Sprintf("Replaced by run %d", secondID); !strings.Contains(firstStatus.Description, want) {
		t.Errorf("first push's status description is %q, want it to contain %q", firstStatus.Description, want)
	}
	if got := runIDFromURL(t, firstStatus.TargetURL); got != secondID {
		t.Errorf("first push's target_url points at run %d, want the new run %d", got, secondID)
	}

	firstRun := e.waitRun("refs/heads/main", first, "replaced", func(r apiRun) bool { return r.final() })
	if firstRun.State != "replaced" {
		t.Errorf("first run state is %q, want replaced", firstRun.State)
	}
	if firstRun.ReplacedBy == nil || *firstRun.ReplacedBy != secondID {
		t.Errorf("first run replaced_by is %v, want %d", firstRun.ReplacedBy, secondID)
	}
}

// TestE2EBranchDeletionCancelsQueuedRun holds the only worker busy on main,
// pushes a branch whose run therefore stays queued, and deletes the branch:
// the queued run is canceled.
func TestE2EBranchDeletionCancelsQueuedRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "delete-branch", "OCTAVO_MAX_RUNS=1")
	g := newGate(t)
	pipeline := fmt.Sprintf(`
def build(ctx):
    ctx.sh("if [ -f slow ]; then %s; fi")

job("build", inputs = ["octavo/push"], run = build)
`, strings.ReplaceAll(g.step(), `"`, `\"`))

	busy := e.push(map[string]string{".octavo/ci.star": pipeline, "slow": "hold the worker\n"}, "Hold the only worker")
	g.waitStarted(e)

	e.git("checkout", "--quiet", "-b", "feature")
	if err := e.clone.Remove("slow"); err != nil {
		t.Fatal(err)
	}
	feature := e.push(nil, "Work on a feature")
	queued := e.waitRun("refs/heads/feature", feature, "queued", func(r apiRun) bool { return true })
	if queued.State != "queued" {
		t.Fatalf("feature run is %q while the only worker is busy, want queued", queued.State)
	}

	e.git("push", "--quiet", "origin", "--delete", "feature")
	canceled := e.waitRun("refs/heads/feature", feature, "final", func(r apiRun) bool { return r.final() })
	if canceled.State != "canceled" {
		t.Errorf("feature run is %q after the branch was deleted, want canceled", canceled.State)
	}
	if st := e.waitStatus(feature); st.State != "error" || !strings.Contains(st.Description, "Canceled") {
		t.Errorf("feature commit's status is %q (%s), want error with Canceled", st.State, st.Description)
	}

	g.open(t)
	if st := e.waitStatus(busy); st.State != "success" {
		t.Errorf("main's run ended %q (%s), want success: deleting another branch must not touch it", st.State, st.Description)
	}
}

// TestE2ETagPushRunsWithTag pushes a tag: its push delivery adds one run
// whose push source has the tag set, and the create delivery that follows
// adds none.
func TestE2ETagPushRunsWithTag(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "tag")
	pipeline := `
def build(ctx):
    push = ctx.input("octavo/push")
    if push.ref.startswith("refs/tags/"):
        ctx.sh(["test", push.tag, "=", "v1.0.0"])
    else:
        ctx.sh(["test", push.branch, "=", "main"])

job("build", inputs = ["octavo/push"], run = build)
`
	sha := e.push(map[string]string{".octavo/ci.star": pipeline}, "Add a pipeline that checks the tag")
	if st := e.waitStatus(sha); st.State != "success" {
		t.Fatalf("main's run ended %q (%s), want success", st.State, st.Description)
	}
	hook := e.hook()

	e.git("tag", "v1.0.0")
	e.git("push", "--quiet", "origin", "v1.0.0")

	tagRun := e.waitRun("refs/tags/v1.0.0", sha, "final", func(r apiRun) bool { return r.final() })
	if tagRun.State != "complete" {
		t.Errorf("tag run is %s/%s (%s), want complete: the pipeline checks push.tag", tagRun.State, tagRun.FailureKind, tagRun.Error)
	}
	if tagRun.Tag != "v1.0.0" || tagRun.Branch != "" {
		t.Errorf("tag run has tag %q and branch %q, want tag v1.0.0 and no branch", tagRun.Tag, tagRun.Branch)
	}

	// Wait until octavo responded to the tag's create delivery, then count.
	e.waitDelivery(hook.ID, "of the tag's create event", func(d giteatest.Delivery) bool {
		return d.Event == "create" && strings.Contains(d.Request.Body, "v1.0.0") && d.Response.Status != 0
	})
	if runs := e.runs(e.repo.FullName, "refs/tags/v1.0.0"); len(runs) != 1 {
		t.Errorf("tag has %d runs, want 1 (the create delivery must add none): %+v", len(runs), runs)
	}
	if runs := e.runs(e.repo.FullName, ""); len(runs) != 2 {
		t.Errorf("repository has %d runs, want 2 (main and the tag): %+v", len(runs), runs)
	}
}
