package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// InsertDelivery records d inside tx and reports whether it is new. A
// delivery id seen before leaves the table unchanged and returns false.
func InsertDelivery(tx *gorm.DB, d *Delivery) (bool, error) {
	res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "delivery_id"}}, DoNothing: true}).Create(d)
	if res.Error != nil {
		return false, fmt.Errorf("insert delivery %s: %w", d.DeliveryID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// SetDeliveryResult stores the short result text of a delivery.
func SetDeliveryResult(tx *gorm.DB, deliveryID, result string) error {
	err := tx.Model(&Delivery{}).Where("delivery_id = ?", deliveryID).Update("result", result).Error
	if err != nil {
		return fmt.Errorf("update delivery %s: %w", deliveryID, err)
	}
	return nil
}

// FindDelivery returns the delivery with the forge's id, or [ErrNotFound].
func FindDelivery(ctx context.Context, db *gorm.DB, deliveryID string) (*Delivery, error) {
	var d Delivery
	err := db.WithContext(ctx).Where("delivery_id = ?", deliveryID).Take(&d).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("delivery %s: %w", deliveryID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("find delivery %s: %w", deliveryID, err)
	}
	return &d, nil
}

// UpsertRepo inserts r by FullName or refreshes the stored row's forge
// fields, and sets r.ID.
func UpsertRepo(tx *gorm.DB, r *Repo) error {
	err := tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "full_name"}},
		DoUpdates: clause.AssignmentColumns([]string{"owner", "name", "private", "default_branch", "clone_url", "html_url", "updated_at"}),
	}).Create(r).Error
	if err != nil {
		return fmt.Errorf("upsert repository %s: %w", r.FullName, err)
	}

	// NOTE: an upsert that updated an existing row does not report its id
	// on every database, so read it back.
	var id uint
	if err := tx.Model(&Repo{}).Where("full_name = ?", r.FullName).Pluck("id", &id).Error; err != nil {
		return fmt.Errorf("read repository %s: %w", r.FullName, err)
	}
	r.ID = id
	return nil
}

// FindRepo returns the repository "owner/name", or [ErrNotFound].
func FindRepo(ctx context.Context, db *gorm.DB, fullName string) (*Repo, error) {
	var r Repo
	err := db.WithContext(ctx).Where("full_name = ?", fullName).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("repository %s: %w", fullName, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("find repository %s: %w", fullName, err)
	}
	return &r, nil
}
