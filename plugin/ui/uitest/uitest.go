// Package uitest builds real SQLite stores with repositories, runs and run
// events for the tests of the status page and the live hub.
package uitest

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/schema"
)

// OpenStore opens a migrated SQLite store in a temporary folder, closed when
// the test ends.
func OpenStore(t testing.TB) *store.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "octavo.db")
	st, err := store.Open(t.Context(), store.Options{DSN: path})
	if err != nil {
		t.Fatalf("open store %s: %v", path, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// AddRepo inserts a repository owner/name with default branch main.
func AddRepo(t testing.TB, st *store.Store, fullName string, private bool) store.Repo {
	t.Helper()
	owner, name := splitName(fullName)
	repo := store.Repo{
		FullName: fullName, Owner: owner, Name: name, Private: private, DefaultBranch: "main",
		HTMLURL: "https://forge.example/" + fullName,
	}
	if err := st.DB.Create(&repo).Error; err != nil {
		t.Fatalf("insert repo %s: %v", fullName, err)
	}
	return repo
}

func splitName(fullName string) (string, string) {
	for i := 0; i < len(fullName); i++ {
		if fullName[i] == '/' {
			return fullName[:i], fullName[i+1:]
		}
	}
	return fullName, ""
}

// AddRun inserts a run of branch in state. Final runs get a start and
// finish time d apart; kind is the failure kind of a failed run.
func AddRun(t testing.TB, st *store.Store, repo store.Repo, branch string, state store.RunState, kind store.FailureKind, d time.Duration) store.Run {
	t.Helper()
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	run := store.Run{
		RepoID: repo.ID, Ref: "refs/heads/" + branch, Branch: branch,
		SHA: "0123456789abcdef0123456789abcdef01234567", Pusher: "alice", Message: "Fix the build\n\nLonger text.",
		State: state, FailureKind: kind,
	}
	if state != store.RunQueued {
		run.StartedAt = &start
	}
	if state.Final() {
		end := start.Add(d)
		run.FinishedAt = &end
	}
	if err := st.DB.Create(&run).Error; err != nil {
		t.Fatalf("insert run: %v", err)
	}
	run.Repo = repo
	return run
}

// SetRunState updates a run's state and returns the run as stored.
func SetRunState(t testing.TB, st *store.Store, run store.Run, state store.RunState) store.Run {
	t.Helper()
	now := time.Now().UTC()
	run.State = state
	if state.Final() {
		run.FinishedAt = &now
	}
	if err := st.DB.Model(&store.Run{}).Where("id = ?", run.ID).
		Updates(map[string]any{"state": state, "finished_at": run.FinishedAt}).Error; err != nil {
		t.Fatalf("update run %d: %v", run.ID, err)
	}
	return run
}

// AddEvents stores events after the run's last stored one, numbering them
// from there, and returns them with their sequence numbers as a hub expects
// them in Publish.
func AddEvents(t testing.TB, st *store.Store, runID uint, events ...store.RunEvent) []store.RunEvent {
	t.Helper()
	var last int64
	if err := st.DB.Model(&store.Run{}).Where("id = ?", runID).Pluck("last_seq", &last).Error; err != nil {
		t.Fatalf("read last_seq of run %d: %v", runID, err)
	}
	out := make([]store.RunEvent, len(events))
	for i, ev := range events {
		ev.RunID = runID
		ev.Seq = last + int64(i) + 1
		out[i] = ev
	}
	if len(out) == 0 {
		return out
	}
	if err := store.AppendEvents(st.DB, runID, out); err != nil {
		t.Fatalf("insert events of run %d: %v", runID, err)
	}
	return out
}

// Event returns a run event for ev, one of the schema event structs, with
// its type, job and JSON filled in. Seq and RunID are set by [AddEvents].
func Event(ev any) store.RunEvent {
	data, err := json.Marshal(ev)
	if err != nil {
		panic(err) // the schema structs always marshal
	}
	var head struct {
		Type  string `json:"type"`
		JobID string `json:"job_id"`
		AtMs  int64  `json:"at_ms"`
	}
	_ = json.Unmarshal(data, &head)
	return store.RunEvent{Type: head.Type, JobName: head.JobID, AtMs: head.AtMs, Data: string(data)}
}

// Line returns an sh_output event of step 1 of job.
func Line(job, text string) store.RunEvent {
	return Event(schema.ShOutput{
		Envelope: schema.Envelope{AtMs: time.Now().UnixMilli(), Type: schema.TypeShOutput},
		JobID:    job, Seq: 1, Stream: schema.Stdout, Line: text,
	})
}

// Lines returns n sh_output events of job whose text is prefix and a number.
func Lines(job, prefix string, n int) []store.RunEvent {
	out := make([]store.RunEvent, n)
	for i := range out {
		out[i] = Line(job, prefix+strconv.Itoa(i))
	}
	return out
}
