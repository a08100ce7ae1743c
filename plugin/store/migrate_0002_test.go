package store

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestPendingStatusQueryUsesIndex checks that the sender's query for due
// commit statuses is answered from the partial index, not by walking every
// delivered status.
func TestPendingStatusQueryUsesIndex(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "octavo.db"))

	var plan []struct {
		Detail string
	}
	err := s.DB.Raw(`EXPLAIN QUERY PLAN
		SELECT commit_statuses.* FROM commit_statuses
		JOIN repos ON repos.id = commit_statuses.repo_id
		WHERE commit_statuses.sent_version < commit_statuses.version AND commit_statuses.next_attempt_at <= ?
		ORDER BY commit_statuses.next_attempt_at, commit_statuses.id LIMIT 50`, "2026-01-01").Scan(&plan).Error
	if err != nil {
		t.Fatal(err)
	}

	var details []string
	for _, p := range plan {
		details = append(details, p.Detail)
	}
	got := strings.Join(details, "; ")
	if !strings.Contains(got, "idx_commit_statuses_pending") {
		t.Errorf("query plan = %q, want it to use idx_commit_statuses_pending", got)
	}
}
