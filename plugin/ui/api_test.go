package ui

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/ui/uitest"
)

func TestRunJSON(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	run := uitest.AddRun(t, e.store, repo, "main", store.RunComplete, "", time.Minute)
	exit0 := 0
	for _, row := range []any{
		&store.Job{RunID: run.ID, Name: "test", Inputs: `["octavo/push"]`, State: "succeeded"},
		&store.Step{RunID: run.ID, JobName: "test", Seq: 1, Cmd: "go test ./...", ExitCode: &exit0},
	} {
		if err := e.store.DB.Create(row).Error; err != nil {
			t.Fatal(err)
		}
	}

	resp, body := e.get(t, "/api/v1/runs/"+uitoa(run.ID))
	wantStatus(t, resp, body, http.StatusOK)
	var got runJSON
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if got.ID != run.ID || got.Repo != "alice/app" || got.State != "complete" || got.StateClass != "passing" {
		t.Errorf("run = %+v, want run %d of alice/app, complete and passing", got, run.ID)
	}
	if len(got.Jobs) != 1 || len(got.Jobs[0].Steps) != 1 || got.Jobs[0].Steps[0].Cmd != "go test ./..." || *got.Jobs[0].Steps[0].ExitCode != 0 {
		t.Errorf("jobs = %+v, want job test with step go test ./... exiting 0", got.Jobs)
	}
}

func TestEventsAPI(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	run := uitest.AddRun(t, e.store, repo, "main", store.RunActive, "", 0)
	var events []store.RunEvent
	for i := 0; i < 10; i++ {
		job := "a"
		if i%2 == 1 {
			job = "b"
		}
		events = append(events, uitest.Line(job, "line"))
	}
	uitest.AddEvents(t, e.store, run.ID, events...)
	id := uitoa(run.ID)

	tests := []struct {
		name  string
		query string
		want  []int64
	}{
		{"first page", "?limit=3", []int64{1, 2, 3}},
		{"page after a seq", "?after=3&limit=3", []int64{4, 5, 6}},
		{"after the end", "?after=10", nil},
		{"last page before a seq", "?before=8&limit=3", []int64{5, 6, 7}},
		{"between after and before", "?after=2&before=6", []int64{3, 4, 5}},
		{"one job only", "?job=b&limit=3", []int64{2, 4, 6}},
		{"one job before a seq", "?job=a&before=9&limit=2", []int64{5, 7}},
		{"run events without a job", "?job=", nil},
	}
	// The log API serves the same listing as the events API.
	for _, tt := range tests {
		for _, path := range []string{"/events", "/log"} {
			t.Run(tt.name+" at "+path, func(t *testing.T) {
				resp, body := e.get(t, "/api/v1/runs/"+id+path+tt.query)
				wantStatus(t, resp, body, http.StatusOK)
				var got struct {
					State   string `json:"state"`
					LastSeq int64  `json:"last_seq"`
					Events  []struct {
						Seq   int64 `json:"seq"`
						Event struct {
							Type string `json:"type"`
						} `json:"event"`
						HTML *string `json:"html"`
					} `json:"events"`
				}
				if err := json.Unmarshal([]byte(body), &got); err != nil {
					t.Fatalf("decode %s: %v", body, err)
				}
				var seqs []int64
				for _, ev := range got.Events {
					seqs = append(seqs, ev.Seq)
					if ev.Event.Type != "sh_output" || ev.HTML == nil || *ev.HTML != "line" {
						t.Errorf("event %d = %+v, want an sh_output with html \"line\"", ev.Seq, ev)
					}
				}
				if !equalSeqs(seqs, tt.want) {
					t.Errorf("seqs = %v, want %v", seqs, tt.want)
				}
				if got.LastSeq != 10 {
					t.Errorf("last_seq = %d, want 10", got.LastSeq)
				}
				if got.State != string(store.RunActive) {
					t.Errorf("state = %q, want %q", got.State, store.RunActive)
				}
			})
		}
	}

	for _, q := range []string{"?after=-1", "?after=x", "?limit=0", "?limit=5001", "?before=0"} {
		t.Run("invalid "+q, func(t *testing.T) {
			resp, body := e.get(t, "/api/v1/runs/"+id+"/events"+q)
			wantStatus(t, resp, body, http.StatusBadRequest)
			wantContains(t, body, "invalid ")
		})
	}
}

func equalSeqs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRunJSONFields checks that the served run JSON carries every field
// the run API promises, null when unset. The status page's handler serves
// this path, and it once left out event, dispatched_at, resolved_at and
// attempts and dropped an empty failure_kind or replaced_by, so clients
// reading those fields got nothing.
func TestRunJSONFields(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	queued := uitest.AddRun(t, e.store, repo, "main", store.RunQueued, "", 0)
	done := uitest.AddRun(t, e.store, repo, "main", store.RunFailed, store.FailurePipeline, time.Minute)
	if err := e.store.DB.Model(&store.Run{}).Where("id = ?", done.ID).Update("attempt", 2).Error; err != nil {
		t.Fatal(err)
	}

	required := []string{"id", "repo", "ref", "sha", "event", "state", "failure_kind", "created_at", "dispatched_at", "resolved_at", "replaced_by", "attempts", "jobs"}
	for _, tt := range []struct {
		name string
		id   uint
		want map[string]any
	}{
		{"queued run has null times", queued.ID, map[string]any{"event": "push", "state": "queued", "failure_kind": "", "dispatched_at": nil, "resolved_at": nil, "replaced_by": nil, "attempts": 0.0}},
		{"failed run has its times and attempts", done.ID, map[string]any{"event": "push", "state": "failed", "failure_kind": "pipeline-failure", "replaced_by": nil, "attempts": 2.0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.get(t, "/api/v1/runs/"+uitoa(tt.id))
			wantStatus(t, resp, body, http.StatusOK)
			var got map[string]any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			for _, k := range required {
				if _, ok := got[k]; !ok {
					t.Errorf("run JSON has no %q field; body:\n%s", k, body)
				}
			}
			for k, want := range tt.want {
				if got[k] != want {
					t.Errorf("%s = %#v, want %#v", k, got[k], want)
				}
			}
			if tt.id == done.ID && (got["dispatched_at"] == nil || got["resolved_at"] == nil) {
				t.Errorf("dispatched_at = %v, resolved_at = %v, want both set", got["dispatched_at"], got["resolved_at"])
			}
		})
	}
}
