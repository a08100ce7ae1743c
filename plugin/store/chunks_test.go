package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
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
	s := openTestStore(t, filepath.Join(t.TempDir(), "octavo.db"))
	if err := AppendEvents(s.DB, 1, []RunEvent{{Seq: 1, Data: "{}\n{}"}}); err == nil || !strings.Contains(err.Error(), "newline") {
		t.Fatalf("AppendEvents = %v, want an error about the newline", err)
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

// TestReadsSnappyChunks reads a chunk stored by versions that compressed
// with Snappy rather than S2.
func TestReadsSnappyChunks(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "octavo.db"))
	block, err := os.ReadFile("testdata/snappy-chunk.bin")
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile("testdata/snappy-chunk.txt")
	if err != nil {
		t.Fatal(err)
	}
	runID, _ := chunkedRun(t, s)
	if err := s.DB.Exec("INSERT INTO run_event_chunks (run_id, first_seq, last_seq, job_name, data) VALUES (?, 9001, 9002, 'test', ?)", runID, block).Error; err != nil {
		t.Fatal(err)
	}
	got, err := EventsAfter(t.Context(), s.DB, runID, 9000, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(string(text), "\n")
	if len(got) != 2 || got[0].Data != want[0] || got[1].Data != want[1] || got[1].Seq != 9002 {
		t.Errorf("events of the Snappy chunk = %+v, want seqs 9001 and 9002 with %q", got, want)
	}
}

// TestChunkWriterJoinsAndSplitsParts adds parts of several lines as
// ingestion does. Small parts of one job join one chunk, and a part larger
// than a chunk is split at line breaks. A line larger than a chunk is a
// chunk of its own, and a new job starts a chunk. The writer carries on in
// a second transaction after Reset.
func TestChunkWriterJoinsAndSplitsParts(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "octavo.db"))
	runID, all := chunkedRun(t, s)
	next := all[len(all)-1].Seq + 1
	first := next

	line := func(job string, n, size int) string {
		return fmt.Sprintf(`{"at_ms":1,"type":"sh_output","job_id":%q,"seq":1,"stream":"stdout","line":"%d %s"}`, job, n, strings.Repeat("y", size))
	}
	type part struct {
		job   string
		lines []string
	}
	many := func(job string, count, size int) part {
		p := part{job: job}
		for i := range count {
			p.lines = append(p.lines, line(job, i, size))
		}
		return p
	}
	parts := []part{
		many("a", 3, 10),
		many("a", 2, 10),
		many("a", maxChunkBytes/100, 100), // crosses the chunk size
		{"a", []string{line("a", 0, maxChunkBytes+10)}},
		many("a", 2, 10),
		many("b", 2, 10),
	}

	var want []string
	var texts [][]byte
	var w *ChunkWriter
	// The last part goes in a second transaction, through the same writer.
	for _, batch := range [][]part{parts[:len(parts)-1], parts[len(parts)-1:]} {
		err := s.DB.Transaction(func(tx *gorm.DB) error {
			if w == nil {
				w = NewChunkWriter(tx, runID)
			}
			w.Reset(tx)
			for _, p := range batch {
				text := []byte(strings.Join(p.lines, "\n"))
				texts = append(texts, text)
				if err := w.Add(next, p.job, text, len(p.lines)); err != nil {
					return err
				}
				next += int64(len(p.lines))
				want = append(want, p.lines...)
			}
			return w.Close()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range parts {
		if string(texts[i]) != strings.Join(p.lines, "\n") {
			t.Errorf("part %d was changed by the writer", i)
		}
	}

	got, err := EventsAfter(t.Context(), s.DB, runID, first-1, len(want)+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d events back, want %d", len(got), len(want))
	}
	for i, ev := range got {
		if ev.Seq != first+int64(i) || ev.Data != want[i] {
			t.Fatalf("event %d = seq %d %.60s, want seq %d %.60s", i, ev.Seq, ev.Data, first+int64(i), want[i])
		}
	}

	var chunks []RunEventChunk
	if err := s.DB.Where("run_id = ? AND first_seq >= ?", runID, first).Order("first_seq").Find(&chunks).Error; err != nil {
		t.Fatal(err)
	}
	var spans [][2]int64
	for _, c := range chunks {
		spans = append(spans, [2]int64{c.FirstSeq - first, c.LastSeq - first})
		text, err := s2.Decode(nil, c.Data)
		if err != nil {
			t.Fatal(err)
		}
		if len(text) > maxChunkBytes && c.FirstSeq != c.LastSeq {
			t.Errorf("chunk %d..%d has %d bytes of text, over the limit of %d with more than one line", c.FirstSeq, c.LastSeq, len(text), maxChunkBytes)
		}
	}
	big := int64(5 + maxChunkBytes/100)
	if len(spans) < 5 || spans[0][0] != 0 || spans[len(spans)-1] != [2]int64{big + 3, big + 4} {
		t.Errorf("chunks (relative seqs) = %v, want the first to start at 0 and job b's lines %d..%d alone at the end", spans, big+3, big+4)
	}
	var run Run
	if err := s.DB.First(&run, runID).Error; err != nil || run.LastSeq != next-1 {
		t.Errorf("run last_seq = %d, %v; want %d", run.LastSeq, err, next-1)
	}
}
