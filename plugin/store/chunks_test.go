package store

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"

	"github.com/octavo-ci/octavo/plugin/store/storetest"
)

// chunkedRun stores a run whose events span many chunks: job changes
// inside one AppendEvents call, separate calls, and a call larger than
// maxChunkBytes. It returns every stored event in order.
func chunkedRun(t *testing.T, s *Store) (uint, []RunEvent) {
	t.Helper()
	repo := Repo{FullName: "alice/app", Owner: "alice", Name: "app"}
	if err := s.DB.Create(&repo).Error; err != nil {
		t.Fatal(err)
	}
	run := Run{RepoID: repo.ID, Ref: "refs/heads/main", Branch: "main", SHA: "a", State: RunActive}
	if err := s.DB.Create(&run).Error; err != nil {
		t.Fatal(err)
	}

	var all []RunEvent
	add := func(jobs ...string) {
		t.Helper()
		batch := make([]RunEvent, len(jobs))
		for i, job := range jobs {
			seq := int64(len(all) + i + 1)
			typ, data := "sh_output", fmt.Sprintf(`{"at_ms":%d,"type":"sh_output","job_id":%q,"seq":1,"stream":"stdout","line":"line %d %s"}`, 1000+seq, job, seq, strings.Repeat("x", 80))
			if job == "" {
				typ, data = "run_started", fmt.Sprintf(`{"at_ms":%d,"type":"run_started","schema":1,"jobs":[{"id":"a"},{"id":"b"}]}`, 1000+seq)
			}
			batch[i] = RunEvent{RunID: run.ID, Seq: seq, Type: typ, JobName: job, AtMs: 1000 + seq, Data: data}
		}
		if err := AppendEvents(s.DB, run.ID, batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
	repeat := func(job string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = job
		}
		return out
	}
	add(slices.Concat([]string{""}, repeat("a", 5), repeat("b", 3), repeat("a", 4))...)
	add(repeat("a", 3000)...)
	add("b", "a", "b", "")

	var chunks int64
	if err := s.DB.Model(&RunEventChunk{}).Where("run_id = ?", run.ID).Count(&chunks).Error; err != nil {
		t.Fatal(err)
	}
	if chunks < 9 {
		t.Fatalf("the run has %d chunks, want at least 9 for the test to cross chunk boundaries", chunks)
	}
	return run.ID, all
}

// wantPage is what p selects from all, computed the slow way.
func wantPage(all []RunEvent, p EventPage) []RunEvent {
	var match []RunEvent
	for _, ev := range all {
		if ev.Seq <= p.After || (p.Before > 0 && ev.Seq >= p.Before) || (p.Job != nil && ev.JobName != *p.Job) {
			continue
		}
		match = append(match, ev)
	}
	if len(match) > p.Limit {
		if p.Tail {
			match = match[len(match)-p.Limit:]
		} else {
			match = match[:p.Limit]
		}
	}
	return match
}

func TestPageRunEventsAcrossChunks(t *testing.T) {
	for _, db := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "octavo.db") }},
		{"postgres", func(t *testing.T) string { return storetest.Postgres(t) }},
	} {
		t.Run(db.name, func(t *testing.T) {
			s := openTestStore(t, db.dsn(t))
			runID, all := chunkedRun(t, s)
			a, b, none := "a", "b", ""

			pages := []struct {
				name string
				page EventPage
			}{
				{"the first page spans job changes", EventPage{Limit: 20}},
				{"a page from inside a chunk ends inside the next", EventPage{After: 3, Limit: 7}},
				{"a page starts right after a chunk's last event", EventPage{After: 13, Limit: 5}},
				{"a page crosses a size boundary of one job's lines", EventPage{After: 2000, Limit: 1500}},
				{"the last page is short", EventPage{After: 3010, Limit: 100}},
				{"nothing after the last event", EventPage{After: 3016, Limit: 100}},
				{"the tail crosses chunks", EventPage{Limit: 10, Tail: true}},
				{"a tail before a seq inside a chunk", EventPage{Before: 11, Limit: 6, Tail: true}},
				{"a window between after and before", EventPage{After: 4, Before: 12, Limit: 100}},
				{"job a skips job b's chunks", EventPage{Job: &a, After: 3, Limit: 10}},
				{"job b's lines come from three chunks", EventPage{Job: &b, Limit: 100}},
				{"job b's earlier lines before the end", EventPage{Job: &b, Before: 3016, Limit: 2, Tail: true}},
				{"job a's earlier lines from the middle of the log", EventPage{Job: &a, Before: 1500, Limit: 500, Tail: true}},
				{"the run's own events", EventPage{Job: &none, Limit: 10}},
			}
			for _, tc := range pages {
				t.Run(tc.name, func(t *testing.T) {
					tc.page.RunID = runID
					got, err := s.PageRunEvents(t.Context(), tc.page)
					if err != nil {
						t.Fatal(err)
					}
					want := wantPage(all, tc.page)
					if len(got) != len(want) {
						t.Fatalf("got %d events (%v), want %d (%v)", len(got), seqsOf(got), len(want), seqsOf(want))
					}
					for i := range got {
						if got[i] != want[i] {
							t.Fatalf("event %d = %+v, want %+v", i, got[i], want[i])
						}
					}
				})
			}

			got, err := EventsAfter(t.Context(), s.DB, runID, 12, 3)
			if err != nil || !slices.Equal(seqsOf(got), []int64{13, 14, 15}) {
				t.Errorf("EventsAfter(12, 3) = %v, %v; want 13..15", seqsOf(got), err)
			}
		})
	}
}

func seqsOf(evs []RunEvent) []int64 {
	out := make([]int64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

func TestAppendEventsRefusesMultiLineData(t *testing.T) {
	if _, err := chunkEvents(1, []RunEvent{{Seq: 1, Data: "{}\n{}"}}); err == nil || !strings.Contains(err.Error(), "newline") {
		t.Fatalf("chunkEvents = %v, want an error about the newline", err)
	}
}

func TestClearRunRecordsDeletesChunks(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "octavo.db"))
	runID, _ := chunkedRun(t, s)
	if err := ClearRunRecords(s.DB, runID); err != nil {
		t.Fatal(err)
	}
	got, err := EventsAfter(t.Context(), s.DB, runID, 0, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("events after clearing = %v, %v; want none", seqsOf(got), err)
	}
}

// TestMigrationMovesRunEventsIntoChunks opens a database written before
// event chunks existed.
func TestMigrationMovesRunEventsIntoChunks(t *testing.T) {
	for _, db := range []struct {
		name string
		dsn  func(t *testing.T) string
		open func(dsn string) gorm.Dialector
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "octavo.db") }, sqlite.Open},
		{"postgres", func(t *testing.T) string { return storetest.Postgres(t) }, postgres.Open},
	} {
		t.Run(db.name, func(t *testing.T) {
			dsn := db.dsn(t)
			writeVersion1Events(t, db.open(dsn))

			s := openTestStore(t, dsn)
			if s.DB.Migrator().HasTable("run_events") {
				t.Error("table run_events is still there after the migration")
			}
			test := "test"
			got, err := s.PageRunEvents(t.Context(), EventPage{RunID: 1, Job: &test, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 3 || got[1].Type != "sh_output" || got[1].AtMs != 3 ||
				got[1].Data != `{"at_ms":3,"type":"sh_output","job_id":"test","line":"two"}` {
				t.Errorf("job test's events after the migration = %+v, want seqs 2 and 3 as stored", got)
			}
			all, err := EventsAfter(t.Context(), s.DB, 1, 0, 10)
			if err != nil || !slices.Equal(seqsOf(all), []int64{1, 2, 3}) {
				t.Errorf("events after the migration = %v, %v; want 1..3", seqsOf(all), err)
			}
		})
	}
}

// writeVersion1Events creates the schema of the first migration with three
// events of run 1 in run_events.
func writeVersion1Events(t *testing.T, dialector gorm.Dialector) {
	t.Helper()
	old, err := gorm.Open(dialector, &gorm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	err = old.Transaction(func(tx *gorm.DB) error {
		if err := tx.AutoMigrate(&schemaMigration{}); err != nil {
			return err
		}
		if err := migrateInitial(tx); err != nil {
			return err
		}
		if err := tx.Create(&schemaMigration{ID: "0001_initial"}).Error; err != nil {
			return err
		}
		for _, q := range []string{
			`INSERT INTO repos (id, full_name, owner, name) VALUES (1, 'alice/app', 'alice', 'app')`,
			`INSERT INTO runs (id, repo_id, ref, sha, state, last_seq) VALUES (1, 1, 'refs/heads/main', 'a', 'complete', 3)`,
			`INSERT INTO run_events (run_id, seq, type, job_name, at_ms, data) VALUES
				(1, 1, 'run_started', '', 1, '{"at_ms":1,"type":"run_started","schema":1,"jobs":[]}'),
				(1, 2, 'sh_output', 'test', 2, '{"at_ms":2,"type":"sh_output","job_id":"test","line":"one"}'),
				(1, 3, 'sh_output', 'test', 3, '{"at_ms":3,"type":"sh_output","job_id":"test","line":"two"}')`,
		} {
			if err := tx.Exec(q).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sqlDB, err := old.DB(); err == nil {
		_ = sqlDB.Close()
	}
}
