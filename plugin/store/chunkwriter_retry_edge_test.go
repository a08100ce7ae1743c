package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"gorm.io/gorm"
)

// TestChunkWriterEdgeRetryAfterFailedInsert rolls back a transaction whose
// chunk insert failed and stores the same seqs again through the same
// writer, as ingestion does after a database error. Ingestion releases
// the failed batch's read blocks for reuse, so a chunk the writer still
// holds from the failed transaction points at bytes that may already
// belong to later lines.
func TestChunkWriterEdgeRetryAfterFailedInsert(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "octavo.db"))
	runID := edgeRun(t, s)
	w := NewChunkWriter(s.DB, runID)

	lost := []byte(strings.Join(edgeOutputLines("test", "lost", 3), "\n"))
	canceled, cancel := context.WithCancel(t.Context())
	err := s.DB.Transaction(func(tx *gorm.DB) error {
		w.Reset(tx.WithContext(canceled))
		cancel()
		if err := w.Add(1, "test", lost, 3); err != nil {
			return err
		}
		return w.Close()
	})
	if err == nil {
		t.Fatal("storing through a canceled context succeeded, want an error")
	}
	// The caller's buffer is reused once the batch is given up.
	copy(lost, strings.Repeat("#", len(lost)))

	retried := edgeOutputLines("test", "retried", 2)
	err = s.DB.Transaction(func(tx *gorm.DB) error {
		w.Reset(tx)
		if err := w.Add(1, "test", []byte(strings.Join(retried, "\n")), 2); err != nil {
			return err
		}
		return w.Close()
	})
	if err != nil {
		t.Fatalf("storing events 1 and 2 again after the failed transaction: %v", err)
	}

	evs, err := EventsAfter(t.Context(), s.DB, runID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(retried) {
		t.Fatalf("read back %d events, want %d", len(evs), len(retried))
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) || ev.Data != retried[i] {
			t.Errorf("event %d = seq %d %q, want seq %d %q", i, ev.Seq, ev.Data, i+1, retried[i])
		}
	}
}

func edgeOutputLines(job, text string, n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"at_ms":%d,"type":"sh_output","job_id":%q,"seq":1,"stream":"stdout","line":"%s %d"}`, 1000+i, job, text, i)
	}
	return lines
}
