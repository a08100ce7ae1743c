package ui

import (
	"testing"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/ui/uitest"
)

// TestLiveResumesInsideChunk stores two chunks of ten lines and
// resumes viewers after a seq in the middle of each, then streams on.
func TestLiveResumesInsideChunk(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	run := uitest.AddRun(t, e.store, repo, "main", store.RunActive, "", 0)
	uitest.AddEvents(t, e.store, run.ID, uitest.Lines("test", "first ", 10)...)
	uitest.AddEvents(t, e.store, run.ID, uitest.Lines("test", "second ", 10)...)

	for _, tc := range []struct {
		name  string
		after int64
	}{
		{"a viewer resumes inside the first chunk", 4},
		{"a viewer resumes on the last line of the first chunk", 10},
		{"a viewer resumes inside the second chunk", 13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := e.dialLive(t, run.ID, tc.after, nil)
			seqs, htmls := readSeqs(t, conn, int(20-tc.after))
			if !equalSeqs(seqs, seqRange(tc.after+1, 20)) {
				t.Fatalf("replayed seqs = %v, want %d..20", seqs, tc.after+1)
			}
			if htmls[len(htmls)-1] != "second 9" {
				t.Errorf("last replayed line = %q, want \"second 9\"", htmls[len(htmls)-1])
			}
			_ = conn.Close()
		})
	}

	conn := e.dialLive(t, run.ID, 17, nil)
	readSeqs(t, conn, 3)
	e.hub.Publish(run.ID, uitest.AddEvents(t, e.store, run.ID, uitest.Lines("test", "third ", 3)...))
	seqs, _ := readSeqs(t, conn, 3)
	if !equalSeqs(seqs, seqRange(21, 23)) {
		t.Fatalf("live seqs after the replay = %v, want 21..23", seqs)
	}
}
