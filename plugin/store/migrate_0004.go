package store

import (
	"fmt"

	"gorm.io/gorm"
)

// migrateRunRefStateIndex indexes runs by repository, ref and state. Every
// push looks up the queued and active runs of its ref to replace them. With
// only the (repo_id, ref) index, that lookup read every run the ref ever
// had, so intake slowed down as the history grew.
func migrateRunRefStateIndex(tx *gorm.DB) error {
	if err := tx.Exec(`CREATE INDEX IF NOT EXISTS idx_runs_repo_ref_state ON runs (repo_id, ref, state)`).Error; err != nil {
		return fmt.Errorf("create index idx_runs_repo_ref_state: %w", err)
	}
	return nil
}
