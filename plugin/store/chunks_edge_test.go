package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"gorm.io/gorm"
)

// edgeRun creates a repository and an active run to store events for.
func edgeRun(t *testing.T, s *Store) uint {
	t.Helper()
	repo := Repo{FullName: "alice/edge", Owner: "alice", Name: "edge"}
	if err := s.DB.Create(&repo).Error; err != nil {
		t.Fatal(err)
	}
	run := Run{RepoID: repo.ID, Ref: "refs/heads/main", Branch: "main", SHA: "a", State: RunActive}
	if err := s.DB.Create(&run).Error; err != nil {
		t.Fatal(err)
	}
	return run.ID
}

// TestChunkWriterEdgePartBoundaries adds parts whose joined text lies
// right at maxChunkBytes, one byte under and one over, and parts of one
// line larger than a chunk, and reads every event back.
func TestChunkWriterEdgePartBoundaries(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "octavo.db"))
	runID := edgeRun(t, s)

	// line returns an output line of exactly size bytes.
	line := func(n, size int) string {
		head := fmt.Sprintf(`{"at_ms":%d,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"`, n)
		return head + strings.Repeat(string(rune('a'+n%26)), size-len(head)-2) + `"}`
	}
	// Each part is a list of line sizes. A part's text is its lines
	// joined by newlines.
	half := maxChunkBytes / 2
	parts := [][]int{
		{half, half - 1},     // joined: exactly maxChunkBytes
		{100},                // one byte more would not fit, a new chunk
		{half, half},         // joined: maxChunkBytes + 1, split in two
		{maxChunkBytes + 1},  // one line larger than a chunk
		{200, maxChunkBytes}, // a small line, then one a chunk long
		{maxChunkBytes - 201, 200},
	}

	var want []string
	next := int64(1)
	err := s.DB.Transaction(func(tx *gorm.DB) error {
		w := NewChunkWriter(tx, runID)
		for _, sizes := range parts {
			var lines []string
			for _, size := range sizes {
				lines = append(lines, line(len(want)+len(lines), size))
			}
			if err := w.Add(next, "test", []byte(strings.Join(lines, "\n")), len(lines)); err != nil {
				return err
			}
			next += int64(len(lines))
			want = append(want, lines...)
		}
		return w.Close()
	})
	if err != nil {
		t.Fatal(err)
	}

	var chunks []RunEventChunk
	if err := s.DB.Where("run_id = ?", runID).Order("first_seq").Find(&chunks).Error; err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(chunks); i++ {
		if chunks[i].FirstSeq != chunks[i-1].LastSeq+1 {
			t.Errorf("chunk %d starts at %d, want %d after the chunk before it", i, chunks[i].FirstSeq, chunks[i-1].LastSeq+1)
		}
	}

	evs, err := EventsAfter(t.Context(), s.DB, runID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(want) {
		t.Fatalf("read back %d events, want %d", len(evs), len(want))
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) || ev.Data != want[i] {
			t.Errorf("event %d = seq %d with %d bytes, want seq %d with %d bytes", i, ev.Seq, len(ev.Data), i+1, len(want[i]))
		}
		if ev.AtMs != int64(i) || ev.JobName != "test" || ev.Type != "sh_output" {
			t.Errorf("event %d header = %s %s %d, want sh_output test %d", i, ev.Type, ev.JobName, ev.AtMs, i)
		}
	}
}
