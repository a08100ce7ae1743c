package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/store/storetest"
	"github.com/octavo-ci/octavo/plugin/workspace"
)

// TestIngestEdgeOutputWithWrongFieldTypes sends sh_output lines that are
// valid JSON but whose seq, stream or line has the wrong JSON type, which
// schema.Decode rejects, so they must not be stored.
func TestIngestEdgeOutputWithWrongFieldTypes(t *testing.T) {
	invalid := []string{
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":"1","stream":"stdout","line":"seq is a string"}`,
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1.5,"stream":"stdout","line":"seq is a fraction"}`,
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1e3,"stream":"stdout","line":"seq has an exponent"}`,
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":99999999999999999999,"stream":"stdout","line":"seq past int"}`,
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":true,"line":"stream is a boolean"}`,
		`{"type":"sh_output","job_id":"test","line":5,"at_ms":1764850000003}`,
		`{"type":"sh_output","job_id":"test","line":"x","seq":false,"at_ms":1764850000003}`,
	}
	var middle []string
	for _, line := range invalid {
		middle = append(middle, outputLine("test", 1764850000003, "stdout", "valid"), line)
	}
	var valid []string
	for i, line := range middle {
		if i%2 == 0 {
			valid = append(valid, line)
		}
	}

	h := newHarness(t, fakeRunner(t))
	h.start()
	checkIngested(t, ingestScript(t, h, printLines(`\n`, around(middle...)...)), around(valid...))
}

// TestIngestEdgeMemberNamesDifferingInCase sends events with a second
// type, job_id or at_ms member spelled in other case. encoding/json, and
// so schema.Decode, matches member names case-insensitively and keeps the
// last. Stored rows, the live view and the jobs table must agree with
// schema.Decode on the event's type, job and time.
func TestIngestEdgeMemberNamesDifferingInCase(t *testing.T) {
	middle := []string{
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"x","Job_ID":"lint"}`,
		`{"at_ms":1764850000003,"type":"log","job_id":"test","message":"a log line","AT_MS":1764850000009}`,
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"x","Type":"log","message":"m"}`,
		"{\"at_ms\":1764850000003,\"type\":\"sh_output\",\"job_id\":\"t\xffst\",\"seq\":1,\"stream\":\"stdout\",\"line\":\"invalid UTF-8 in the job\"}",
	}
	want := around(middle...)

	h := newHarness(t, fakeRunner(t))
	h.start()
	checkIngested(t, ingestScript(t, h, printLines(`\n`, want...)), want)
}

// TestIngestEdgeBadJobNameOnPostgres sends an output line whose job_id
// contains NUL as \u0000, or bytes that are not UTF-8. PostgreSQL text
// columns reject both, so the chunk's job_name must be stored as the jobs
// and steps tables store the name. The writer pauses after that line, so
// the events after it come in later transactions, which must store them
// whatever became of the first.
func TestIngestEdgeBadJobNameOnPostgres(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
	}{
		{"NUL in the job", `{"at_ms":1764850000003,"type":"sh_output","job_id":"te\u0000st","seq":1,"stream":"stdout","line":"nul in the job"}`},
		{"invalid UTF-8 in the job", "{\"at_ms\":1764850000003,\"type\":\"sh_output\",\"job_id\":\"te\xffst\",\"seq\":1,\"stream\":\"stdout\",\"line\":\"not UTF-8 in the job\"}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := storetest.Postgres(t)
			first := append(slices.Clone(happyEvents[:3]), tc.line)
			rest := slices.Concat([]string{outputLine("test", 1764850000003, "stdout", "after the bad job")}, happyEvents[4:], []string{runSuccess})
			want := slices.Concat(first, rest)

			h := newHarnessDSN(t, fakeRunner(t), dsn, t.TempDir())
			h.start()
			got := ingestScript(t, h, printLines(`\n`, first...)+"sleep 0.3\n"+printLines(`\n`, rest...))

			if got.run.State != store.RunComplete {
				t.Errorf("run = %s / %q (%s), want complete", got.run.State, got.run.FailureKind, got.run.Error)
			}
			if got.run.LastSeq != int64(len(want)) {
				t.Errorf("last_seq = %d, want %d", got.run.LastSeq, len(want))
			}
			if len(got.stored) != len(want) {
				t.Errorf("stored %d events, want %d", len(got.stored), len(want))
			}
			jobs, steps, err := store.JobsAndSteps(t.Context(), h.st.DB, got.run.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(jobs) != 1 || jobs[0].State != "succeeded" {
				t.Errorf("jobs = %+v, want job test succeeded", jobs)
			}
			if len(steps) != 1 || steps[0].ExitCode == nil {
				t.Errorf("steps = %+v, want one finished step", steps)
			}
		})
	}
}

// TestIngestEdgeLargestAtMs sends a job_started whose at_ms is the
// largest int64, a valid event, on SQLite and PostgreSQL. Neither
// database's timestamps reach that far, so the job's start time cannot be
// stored as given. Whatever is stored must not put the job's start before
// the run's.
func TestIngestEdgeLargestAtMs(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			dataDir := t.TempDir()
			dsn := filepath.Join(dataDir, "octavo.db")
			if db == "postgres" {
				dsn = storetest.Postgres(t)
			}
			want := slices.Concat(happyEvents[:1], []string{`{"at_ms":9223372036854775807,"type":"job_started","job_id":"test"}`}, happyEvents[2:], []string{runSuccess})

			h := newHarnessDSN(t, fakeRunner(t), dsn, dataDir)
			h.start()
			got := ingestScript(t, h, printLines(`\n`, want...))
			if got.run.State != store.RunComplete {
				t.Errorf("run = %s / %q (%s), want complete", got.run.State, got.run.FailureKind, got.run.Error)
			}
			if got.run.LastSeq != int64(len(want)) || len(got.stored) != len(want) {
				t.Errorf("last_seq = %d with %d events stored, want %d of both", got.run.LastSeq, len(got.stored), len(want))
			}

			jobs, _, err := store.JobsAndSteps(t.Context(), h.st.DB, got.run.ID)
			if err != nil {
				t.Fatal(err)
			}
			runStart := time.UnixMilli(1764850000000)
			if len(jobs) != 1 || jobs[0].StartedAt == nil {
				t.Fatalf("jobs = %+v, want job test with a start time", jobs)
			}
			if jobs[0].StartedAt.Before(runStart) {
				t.Errorf("job started at %v, before the run started at %v", jobs[0].StartedAt, runStart.UTC())
			}
		})
	}
}

// TestIngestEdgeNULInJobOnSQLite sends an output line whose job_id
// contains NUL as \u0000. The jobs and steps tables store the job's name
// with U+FFFD in place of the NUL, so its output must be stored under that
// name too, or the job's page never shows the line.
func TestIngestEdgeNULInJobOnSQLite(t *testing.T) {
	want := around(`{"at_ms":1764850000003,"type":"sh_output","job_id":"te\u0000st","seq":1,"stream":"stdout","line":"nul in the job"}`)

	h := newHarness(t, fakeRunner(t))
	h.start()
	got := ingestScript(t, h, printLines(`\n`, want...))
	if got.run.State != store.RunComplete || len(got.stored) != len(want) {
		t.Fatalf("run = %s with %d events stored, want complete with %d", got.run.State, len(got.stored), len(want))
	}
	// The jobs table names a job with a NUL in its id with U+FFFD in its
	// place, and the job's events are found under that name.
	for job, wantLine := range map[string]bool{"te\uFFFDst": true, "test": false} {
		page, err := h.st.PageRunEvents(t.Context(), store.EventPage{RunID: got.run.ID, Job: &job, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, ev := range page {
			lines = append(lines, ev.Data)
		}
		if slices.Contains(lines, want[3]) != wantLine {
			t.Errorf("job %q's events = %q; contain %q: %v, want %v", job, lines, want[3], !wantLine, wantLine)
		}
	}
}

// TestIngestEdgeInvalidUTF8ReachesViewers sends an output line with
// bytes that are not UTF-8, which ingestion stores as written. The live
// hub sends each event to browsers in a websocket text frame, which must
// be UTF-8, or the browser closes the connection.
func TestIngestEdgeInvalidUTF8ReachesViewers(t *testing.T) {
	hub := startLiveHub(t)

	gate := filepath.Join(t.TempDir(), "viewer-subscribed")
	want := around("{\"at_ms\":1764850000003,\"type\":\"sh_output\",\"job_id\":\"test\",\"seq\":1,\"stream\":\"stdout\",\"line\":\"caf\xe9 \xff\"}")
	script := printLines(`\n`, want[:3]...) +
		fmt.Sprintf("i=0\nwhile [ ! -e %s ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done\n", shellQuote(gate)) +
		printLines(`\n`, want[3:]...)

	h := newHarness(t, fakeRunner(t), func(o *Options) { o.Live = hub })
	h.start()
	id := h.push("main", map[string]string{workspace.PipelineFile: script}).RunID
	h.waitRun(id, func(r *store.Run) bool { return r.LastSeq >= 3 || r.State.Final() })
	sub, err := hub.Subscribe(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Unsubscribe(sub)
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	frames := 0
	for batch := range sub.Frames() {
		for _, f := range batch.Frames {
			frames++
			if !utf8.Valid(f.Data) {
				t.Errorf("frame %d = %q, which is not UTF-8", f.Seq, f.Data)
			}
		}
	}
	if frames != len(want)-3 {
		t.Errorf("viewer got %d frames, want %d", frames, len(want)-3)
	}
}
