package store

import (
	"fmt"

	"gorm.io/gorm"
)

// migratePendingStatusIndex adds a partial index over the commit statuses
// that still wait for delivery. The sender looks for due rows on every pass,
// and without it SQLite and PostgreSQL walk every row ever delivered, which
// grows with each run. Both databases accept this CREATE INDEX … WHERE form.
func migratePendingStatusIndex(tx *gorm.DB) error {
	err := tx.Exec(`CREATE INDEX idx_commit_statuses_pending
		ON commit_statuses (next_attempt_at, id)
		WHERE sent_version < version`).Error
	if err != nil {
		return fmt.Errorf("create index idx_commit_statuses_pending: %w", err)
	}
	return nil
}
