package queue

import (
	"math"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/store/storetest"
	"github.com/octavo-ci/octavo/plugin/webhook"
)

// TestIntakeStoresNULOnPostgres takes a push whose commit message and
// pusher contain NUL characters, which JSON allows as \u0000. PostgreSQL
// text columns reject NUL, so intake once failed and the webhook got a
// 500 for a delivery the forge had signed.
func TestIntakeStoresNULOnPostgres(t *testing.T) {
	dsn := storetest.Postgres(t)
	h := newHarnessDSN(t, fakeRunner(t), dsn, t.TempDir())
	sha := h.repo.Commit("first", nil)
	h.cloneURL = h.srv.Publish(t, h.repo, repoName)

	res, err := h.q.Intake(t.Context(), &webhook.Delivery{
		ID: "nul-1", Event: "push", Action: webhook.ActionRun,
		Repo: webhook.Repo{Owner: "acme", Name: "app", FullName: repoName, CloneURL: h.cloneURL},
		Ref:  "refs/heads/main",
		Push: &webhook.Push{SHA: sha, Ref: "refs/heads/main", Branch: "main", Repo: repoName, CloneURL: h.cloneURL, Message: "fix\x00 it", Pusher: "al\x00ice"},
	})
	if err != nil {
		t.Fatalf("Intake: %v", err)
	}
	if res.RunID == 0 {
		t.Errorf("Intake result = %+v, want a queued run", res)
	}
}

// TestNULInEventsOnPostgres ingests a run whose step command, step and
// job errors and run error contain NUL as \u0000. PostgreSQL rejected
// those rows, so the batch of events was lost and the run stayed active
// forever.
func TestNULInEventsOnPostgres(t *testing.T) {
	dsn := storetest.Postgres(t)
	h := newHarnessDSN(t, fakeRunner(t), dsn, t.TempDir())
	h.start()
	res := h.push("main", events("",
		`{"at_ms":1764850000000,"type":"run_started","schema":1,"jobs":[{"id":"test","inputs":["octavo/push"]}]}`,
		`{"at_ms":1764850000001,"type":"job_started","job_id":"test"}`,
		`{"at_ms":1764850000002,"type":"sh_started","job_id":"test","seq":1,"cmd":"printf 'a\u0000b'"}`,
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"a\u0000b"}`,
		`{"at_ms":1764850000004,"type":"sh_finished","job_id":"test","seq":1,"exit_code":1,"error":"exit\u0000"}`,
		`{"at_ms":1764850000005,"type":"job_finished","job_id":"test","outcome":"failed","error":"step\u0000failed"}`,
		`{"at_ms":1764850000006,"type":"run_finished","outcome":"pipeline_failure","error":"job\u0000test failed"}`,
	))
	r := h.waitFinal(res.RunID)
	if r.State != store.RunFailed || r.FailureKind != store.FailurePipeline {
		t.Errorf("run = %s / %s (%s), want failed / pipeline-failure", r.State, r.FailureKind, r.Error)
	}
}

func TestAtTimeKeepsStorableTimes(t *testing.T) {
	before := time.Now().Add(-time.Second)
	for _, ms := range []int64{math.MaxInt64, math.MinInt64, maxAtMs + 1, minAtMs - 1} {
		if got := atTime(ms); got.Before(before) || got.Year() > 9999 {
			t.Errorf("atTime(%d) = %v, want the ingestion time", ms, got)
		}
	}
	for _, ms := range []int64{0, 1764850000000, maxAtMs, minAtMs} {
		if got := atTime(ms); got.UnixMilli() != ms {
			t.Errorf("atTime(%d) = %v (%d ms), want the same millisecond", ms, got, got.UnixMilli())
		}
	}
}
