package queue

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/store/storetest"
	"github.com/octavo-ci/octavo/plugin/webhook"
	"github.com/octavo-ci/octavo/plugin/workspace"
)

// events returns a fake-runner pipeline that prints lines as its event
// stream and then runs tail as shell code.
func events(tail string, lines ...string) map[string]string {
	script := "cat <<'EV'\n" + strings.Join(lines, "\n") + "\nEV\n" + tail + "\n"
	return map[string]string{workspace.PipelineFile: script}
}

var happyEvents = []string{
	`{"at_ms":1764850000000,"type":"run_started","schema":1,"jobs":[{"id":"test","inputs":["octavo/push"]}]}`,
	`{"at_ms":1764850000001,"type":"job_started","job_id":"test"}`,
	`{"at_ms":1764850000002,"type":"sh_started","job_id":"test","seq":1,"cmd":"go test ./..."}`,
	`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"ok"}`,
	`{"at_ms":1764850000004,"type":"sh_finished","job_id":"test","seq":1,"exit_code":0}`,
	`{"at_ms":1764850000005,"type":"job_finished","job_id":"test","outcome":"succeeded"}`,
}

const (
	runSuccess = `{"at_ms":1764850000006,"type":"run_finished","outcome":"success"}`
	runFailure = `{"at_ms":1764850000006,"type":"run_finished","outcome":"pipeline_failure","error":"job test failed"}`
)

func TestRunResults(t *testing.T) {
	tests := []struct {
		name    string
		lines   []string
		tail    string
		timeout time.Duration
		state   store.RunState
		kind    store.FailureKind
		stored  int64
	}{
		{"success is complete", append(happyEvents, runSuccess), "", 0, store.RunComplete, store.FailureNone, 7},
		{"pipeline failure is failed", append(happyEvents, runFailure), "", 0, store.RunFailed, store.FailurePipeline, 7},
		{"exit 0 without run_finished crashed", happyEvents, "", 0, store.RunFailed, store.FailureProcessCrashed, 6},
		{"non-zero exit after run_finished crashed", append(happyEvents, runSuccess), "exit 3", 0, store.RunFailed, store.FailureProcessCrashed, 7},
		{"run_finished not last crashed", append(append([]string{}, happyEvents...), runSuccess, happyEvents[1]), "", 0, store.RunFailed, store.FailureProcessCrashed, 8},
		{"unknown and invalid lines are skipped", append(append([]string{`{"at_ms":1,"type":"future_thing"}`, `not json`, `{"type":""}`}, happyEvents...), runSuccess), "", 0, store.RunComplete, store.FailureNone, 7},
		{"partial last line is no event", append(happyEvents, runSuccess), `printf '{"at_ms":1,"type":"log","message":"cut'`, 0, store.RunComplete, store.FailureNone, 7},
		{"runner killed mid-run crashed", happyEvents, "kill -KILL $$", 0, store.RunFailed, store.FailureProcessCrashed, 6},
		{"run timeout is timed out", happyEvents, "sleep 30", 500 * time.Millisecond, store.RunFailed, store.FailureTimedOut, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, fakeRunner(t), func(o *Options) { o.RunTimeout = tt.timeout })
			h.start()
			res := h.push("main", events(tt.tail, tt.lines...))
			r := h.waitFinal(res.RunID)

			if r.State != tt.state || r.FailureKind != tt.kind {
				t.Errorf("run = %s / %q (%s), want %s / %q", r.State, r.FailureKind, r.Error, tt.state, tt.kind)
			}
			if r.LastSeq != tt.stored {
				t.Errorf("last_seq = %d, want %d", r.LastSeq, tt.stored)
			}
			evs, err := store.EventsAfter(t.Context(), h.st.DB, r.ID, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range evs {
				if e.Seq != int64(i+1) {
					t.Errorf("event %d has seq %d, want %d", i, e.Seq, i+1)
				}
			}
			waitFor(t, "run folder removal", func() bool { return !fileExists(h.q.opts.Workspaces.RunDir(r.ID)) })
			waitFor(t, "live final state", func() bool {
				h.rec.mu.Lock()
				defer h.rec.mu.Unlock()
				return h.rec.final[r.ID] == tt.state
			})
		})
	}
}

func TestHappyRunStoresJobsStepsAndStatuses(t *testing.T) {
	h := newHarness(t, fakeRunner(t))
	h.start()
	res := h.push("main", events("", append(happyEvents, runSuccess)...))
	r := h.waitFinal(res.RunID)
	if r.State != store.RunComplete {
		t.Fatalf("run = %s (%s), want complete", r.State, r.Error)
	}

	jobs, steps, err := store.JobsAndSteps(t.Context(), h.st.DB, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].Name != "test" || jobs[0].State != "succeeded" || jobs[0].StartedAt == nil || jobs[0].FinishedAt == nil {
		t.Errorf("jobs = %+v, want test succeeded with timestamps", jobs)
	}
	if len(steps) != 1 || steps[0].Cmd != "go test ./..." || steps[0].ExitCode == nil || *steps[0].ExitCode != 0 {
		t.Errorf("steps = %+v, want one step with exit code 0", steps)
	}

	states := h.rec.states(r.ID)
	if len(states) == 0 || states[len(states)-1] != store.RunComplete {
		t.Errorf("observer saw %v, want it to end with complete", states)
	}
	for _, s := range states {
		if s == store.RunSkipped {
			t.Errorf("observer saw skipped in %v", states)
		}
	}
	h.rec.mu.Lock()
	jobsSeen := strings.Join(h.rec.jobs, ",")
	live := h.rec.live[r.ID]
	h.rec.mu.Unlock()
	if jobsSeen != "test:running,test:succeeded" {
		t.Errorf("job observer saw %s, want test:running,test:succeeded", jobsSeen)
	}
	if len(live) != 7 || live[0] != 1 || live[6] != 7 {
		t.Errorf("live sink got seqs %v, want 1..7", live)
	}
	if r.Attempt != 1 || r.StartedAt == nil || r.FinishedAt == nil {
		t.Errorf("run attempt %d started %v finished %v, want 1 and both times", r.Attempt, r.StartedAt, r.FinishedAt)
	}
}

func TestSecretsAndPushPayloadReachTheRunner(t *testing.T) {
	h := newHarness(t, fakeRunner(t))
	h.secrets = map[string]string{"DEPLOY_KEY": "k-123"}
	h.start()
	out := t.TempDir()
	tail := `cp "$secrets" ` + out + `/secrets.json; stat -c %a "$secrets" > ` + out + `/mode; cp "$source" ` + out + `/push.json`
	res := h.push("main", events(tail, append(happyEvents, runSuccess)...))
	r := h.waitFinal(res.RunID)
	if r.State != store.RunComplete {
		t.Fatalf("run = %s (%s), want complete", r.State, r.Error)
	}

	secrets, _ := os.ReadFile(filepath.Join(out, "secrets.json"))
	if string(secrets) != `{"DEPLOY_KEY":"k-123"}` {
		t.Errorf("secrets file = %s, want the repository's secrets", secrets)
	}
	mode, _ := os.ReadFile(filepath.Join(out, "mode"))
	if strings.TrimSpace(string(mode)) != "600" {
		t.Errorf("secrets file mode = %s, want 600", mode)
	}
	push, _ := os.ReadFile(filepath.Join(out, "push.json"))
	if !strings.Contains(string(push), `"sha":"`+r.SHA+`"`) || !strings.Contains(string(push), `"branch":"main"`) {
		t.Errorf("push payload = %s, want sha %s and branch main", push, r.SHA)
	}
}

func TestCommitWithoutPipelineIsSkipped(t *testing.T) {
	h := newHarness(t, fakeRunner(t))
	h.start()
	res := h.push("main", map[string]string{"README": "no pipeline\n"})
	r := h.waitFinal(res.RunID)
	if r.State != store.RunSkipped {
		t.Errorf("run = %s, want skipped", r.State)
	}
	if states := h.rec.states(r.ID); len(states) != 0 {
		t.Errorf("observer saw %v for a commit without pipeline, want nothing", states)
	}
}

func TestCloneFailureFailsTheRun(t *testing.T) {
	h := newHarness(t, fakeRunner(t))
	h.start()
	sha := h.repo.Commit("x", events("", runSuccess))
	res := h.intake(&webhook.Delivery{
		ID: "d-clone", Event: "push", Action: webhook.ActionRun, Ref: "refs/heads/main",
		Repo: webhook.Repo{Owner: "acme", Name: "gone", FullName: "acme/gone", CloneURL: h.srv.URL + "/acme/gone.git"},
		Push: &webhook.Push{SHA: sha, Ref: "refs/heads/main", Branch: "main", Repo: "acme/gone"},
	})
	r := h.waitFinal(res.RunID)
	if r.State != store.RunFailed || r.FailureKind != store.FailureCloneFailed {
		t.Errorf("run = %s / %q, want failed / clone-failed", r.State, r.FailureKind)
	}
	if strings.Contains(r.Error, testToken) {
		t.Errorf("run error %q contains the token", r.Error)
	}
}

func TestRedeliveryCreatesNothing(t *testing.T) {
	h := newHarness(t, fakeRunner(t))
	first := h.push("main", events("", runSuccess))
	d := &webhook.Delivery{ID: "delivery-1", Event: "push", Action: webhook.ActionRun, Ref: "refs/heads/main",
		Repo: webhook.Repo{Owner: "acme", Name: "app", FullName: repoName},
		Push: &webhook.Push{SHA: "abc", Ref: "refs/heads/main"}}
	again := h.intake(d)
	if !again.Duplicate || again.RunID != 0 || again.Result != first.Result {
		t.Errorf("redelivery = %+v, want duplicate with result %q", again, first.Result)
	}
	var n int64
	h.st.DB.Model(&store.Run{}).Count(&n)
	if n != 1 {
		t.Errorf("%d runs after a redelivery, want 1", n)
	}
}

// pidPipeline starts a step in its own session, as the real runner puts
// steps in their own process groups, records its pid and waits.
func pidPipeline(pidFile string) map[string]string {
	return events(`setsid sleep 300 & echo $! > `+pidFile+`; wait`, happyEvents[:3]...)
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || !strings.Contains(string(stat), ") Z ")
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, "step pid file", func() bool {
		raw, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(raw)))
		return err == nil
	})
	return pid
}

func TestReplaceKillsProcessTree(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	h := newHarness(t, fakeRunner(t))
	h.start()
	pidFile := filepath.Join(t.TempDir(), "pid")
	first := h.push("main", pidPipeline(pidFile))
	h.waitRun(first.RunID, func(r *store.Run) bool { return r.State == store.RunActive })
	pid := readPid(t, pidFile)

	other := h.push("dev", pidPipeline(filepath.Join(t.TempDir(), "pid-dev")))
	second := h.push("main", events("", append(happyEvents, runSuccess)...))

	r := h.waitFinal(first.RunID)
	if r.State != store.RunReplaced || r.ReplacedBy == nil || *r.ReplacedBy != second.RunID {
		t.Errorf("first run = %s replaced_by %v, want replaced by %d", r.State, r.ReplacedBy, second.RunID)
	}
	waitFor(t, "step process of the replaced run to end", func() bool { return !alive(pid) })

	if got := h.waitFinal(second.RunID); got.State != store.RunComplete {
		t.Errorf("second run = %s (%s), want complete", got.State, got.Error)
	}
	o, _ := store.GetRun(t.Context(), h.st.DB, other.RunID)
	if o.State != store.RunActive && o.State != store.RunQueued {
		t.Errorf("run of another ref = %s, want still queued or active", o.State)
	}
}

func TestDeleteCancelsRunsOfTheRef(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	h := newHarness(t, fakeRunner(t))
	h.start()
	pidFile := filepath.Join(t.TempDir(), "pid")
	res := h.push("feature", pidPipeline(pidFile))
	h.waitRun(res.RunID, func(r *store.Run) bool { return r.State == store.RunActive })
	pid := readPid(t, pidFile)

	del := h.intake(&webhook.Delivery{ID: "d-del", Event: "delete", Action: webhook.ActionCancel, Ref: "refs/heads/feature",
		Repo: webhook.Repo{Owner: "acme", Name: "app", FullName: repoName}})
	if del.Result != "canceled 1 runs" {
		t.Errorf("delete result = %q, want canceled 1 runs", del.Result)
	}
	r := h.waitFinal(res.RunID)
	if r.State != store.RunCanceled {
		t.Errorf("run = %s, want canceled", r.State)
	}
	waitFor(t, "step process of the canceled run to end", func() bool { return !alive(pid) })
	states := h.rec.states(r.ID)
	if states[len(states)-1] != store.RunCanceled {
		t.Errorf("observer saw %v, want it to end with canceled", states)
	}
}

func TestReconcileRequeuesOnceThenOrphans(t *testing.T) {
	h := newHarness(t, fakeRunner(t))
	res := h.push("main", events("", append(happyEvents, runSuccess)...))

	take := func() *store.Run {
		t.Helper()
		r, err := store.TakeRun(h.st.DB, h.st.Dialect, "test/1/0", time.Now())
		if err != nil || r == nil {
			t.Fatalf("TakeRun = %v, %v", r, err)
		}
		return r
	}
	take()
	left := filepath.Join(h.q.opts.Workspaces.RunDir(res.RunID), "src")
	if err := os.MkdirAll(left, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := h.q.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fileExists(left) {
		t.Error("reconcile left the run folder of the unfinished run")
	}
	r, _ := store.GetRun(t.Context(), h.st.DB, res.RunID)
	if r.State != store.RunQueued || r.Attempt != 1 {
		t.Errorf("after first reconcile run = %s attempt %d, want queued 1", r.State, r.Attempt)
	}

	take()
	if err := h.q.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	r, _ = store.GetRun(t.Context(), h.st.DB, res.RunID)
	if r.State != store.RunFailed || r.FailureKind != store.FailureOrphaned {
		t.Errorf("after second reconcile run = %s / %q, want failed / orphaned", r.State, r.FailureKind)
	}
}

func TestReconcileLeavesOtherReplicasAlone(t *testing.T) {
	h := newHarness(t, fakeRunner(t))
	res := h.push("main", events("", runSuccess))
	if _, err := store.TakeRun(h.st.DB, h.st.Dialect, "elsewhere/1/0", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.q.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	r, _ := store.GetRun(t.Context(), h.st.DB, res.RunID)
	if r.State != store.RunActive {
		t.Errorf("run of another replica = %s, want active", r.State)
	}
}

// TestShutdownLeavesRunForReconciliation stops the queue while a step runs:
// after the grace period the step is killed and the run stays active, so
// the next start re-queues it.
func TestShutdownLeavesRunForReconciliation(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	h := newHarness(t, fakeRunner(t), func(o *Options) { o.ShutdownGrace = 300 * time.Millisecond })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.q.Run(ctx) }()

	pidFile := filepath.Join(t.TempDir(), "pid")
	res := h.push("main", pidPipeline(pidFile))
	pid := readPid(t, pidFile)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30s after cancel")
	}
	waitFor(t, "step process to end after the grace period", func() bool { return !alive(pid) })

	r, err := store.GetRun(t.Context(), h.st.DB, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != store.RunActive {
		t.Errorf("run after shutdown = %s, want active for reconciliation", r.State)
	}

	if err := h.q.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	r, _ = store.GetRun(t.Context(), h.st.DB, res.RunID)
	if r.State != store.RunQueued || r.LastSeq != 0 {
		t.Errorf("run after reconcile = %s last_seq %d, want queued with its events cleared", r.State, r.LastSeq)
	}
}

// TestQueueOnPostgres runs intake, replacement and a run to completion on
// PostgreSQL, whose locking, RETURNING and upserts differ from SQLite's.
func TestQueueOnPostgres(t *testing.T) {
	dsn := storetest.Postgres(t)
	h := newHarnessDSN(t, fakeRunner(t), dsn, t.TempDir())
	first := h.push("main", events("sleep 30", happyEvents...))
	h.start()
	second := h.push("main", events("", append(happyEvents, runSuccess)...))

	r := h.waitFinal(first.RunID)
	if r.State != store.RunReplaced || r.ReplacedBy == nil || *r.ReplacedBy != second.RunID {
		t.Errorf("first run = %s replaced_by %v, want replaced by %d", r.State, r.ReplacedBy, second.RunID)
	}
	r = h.waitFinal(second.RunID)
	if r.State != store.RunComplete || r.LastSeq != 7 {
		t.Errorf("second run = %s with last_seq %d (%s), want complete with 7", r.State, r.LastSeq, r.Error)
	}
	again := h.intake(&webhook.Delivery{ID: "delivery-2", Event: "push", Action: webhook.ActionRun, Ref: "refs/heads/main",
		Repo: webhook.Repo{Owner: "acme", Name: "app", FullName: repoName}, Push: &webhook.Push{SHA: "x"}})
	if !again.Duplicate {
		t.Errorf("redelivery = %+v, want duplicate", again)
	}
}

// TestLeftoverProcessDoesNotHangTheRun checks that a step process that
// outlives the runner and keeps the event pipe open delays the run's end
// by at most the drain timeout.
func TestLeftoverProcessDoesNotHangTheRun(t *testing.T) {
	h := newHarness(t, fakeRunner(t))
	h.start()
	pidFile := filepath.Join(t.TempDir(), "pid")
	tail := "sleep 60 & echo $! > " + pidFile
	res := h.push("main", events(tail, append(happyEvents, runSuccess)...))
	pid := readPid(t, pidFile)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	start := time.Now()
	r := h.waitFinal(res.RunID)
	if r.State != store.RunComplete {
		t.Errorf("run = %s / %q (%s), want complete", r.State, r.FailureKind, r.Error)
	}
	if took := time.Since(start); took > 3*drainTimeout {
		t.Errorf("run took %s to end after its runner, want at most %s", took, 3*drainTimeout)
	}
	if !alive(pid) {
		t.Log("left-over process already gone; the pipe was not held open")
	}
}

// TestRunnerEnvDropsSidecarSettings guards against pipelines reading the
// sidecar's settings: steps inherited octavo serve's whole environment, so
// `echo $OCTAVO_FORGE_TOKEN` printed the forge token into the run log.
func TestRunnerEnvDropsSidecarSettings(t *testing.T) {
	t.Setenv("OCTAVO_FORGE_TOKEN", "token-must-not-leak")
	t.Setenv("OCTAVO_WEBHOOK_SECRET", "secret-must-not-leak")
	t.Setenv("OCTAVO_TEST_KEPT_OUT", "x")
	t.Setenv("PIPELINE_VISIBLE", "yes")

	h := newHarness(t, fakeRunner(t))
	h.start()
	out := t.TempDir()
	res := h.push("main", events(`env > `+out+`/env`, append(happyEvents, runSuccess)...))
	if r := h.waitFinal(res.RunID); r.State != store.RunComplete {
		t.Fatalf("run = %s (%s), want complete", r.State, r.Error)
	}

	env, err := os.ReadFile(filepath.Join(out, "env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(env), "\n") {
		if strings.HasPrefix(line, "OCTAVO_") {
			t.Errorf("runner environment has %q, want no OCTAVO_* setting", line)
		}
	}
	if !strings.Contains(string(env), "PIPELINE_VISIBLE=yes") {
		t.Error("runner environment lost PIPELINE_VISIBLE, want other variables passed on")
	}
}
