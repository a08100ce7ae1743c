package giteatest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Delivery is one webhook delivery from Gitea's delivery history (the
// hook_task table; Gitea 1.26 has no API for it). Request and Response are
// zero until Gitea attempted the delivery.
type Delivery struct {
	ID        int64
	HookID    int64
	UUID      string // the X-Gitea-Delivery header
	Event     string // fine-grained event type, e.g. "push", "create"
	Delivered bool   // Gitea attempted it
	Succeeded bool   // the receiver responded with 2xx
	Request   DeliveryRequest
	Response  DeliveryResponse
}

// DeliveryRequest is the request Gitea sent, as Gitea recorded it: the
// headers include the signature, and Body is the exact payload signed.
type DeliveryRequest struct {
	URL     string            `json:"url"`
	Method  string            `json:"http_method"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// DeliveryResponse is the receiver's response as Gitea recorded it. Status
// is 0 when the request itself failed (Body then contains the reason).
type DeliveryResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// hookTask maps the columns of Gitea's hook_task table that we read.
type hookTask struct {
	ID              int64
	HookID          int64
	UUID            string
	EventType       string
	IsDelivered     bool
	IsSucceed       bool
	RequestContent  string
	ResponseContent string
}

// Deliveries returns the delivery history of the webhook hookID, newest
// first. It reads Gitea's SQLite database read-only while Gitea runs.
func (i *Instance) Deliveries(ctx context.Context, hookID int64) ([]Delivery, error) {
	dsn := "file:" + (&url.URL{Path: i.DBPath()}).EscapedPath() + "?mode=ro&_busy_timeout=5000"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, fmt.Errorf("open the gitea database read-only: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open the gitea database read-only: %w", err)
	}
	defer sqlDB.Close()

	var rows []hookTask
	err = db.WithContext(ctx).Table("hook_task").
		Select("id, hook_id, uuid, event_type, is_delivered, is_succeed, request_content, response_content").
		Where("hook_id = ?", hookID).Order("id DESC").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read the deliveries of webhook %d: %w", hookID, err)
	}

	out := make([]Delivery, 0, len(rows))
	for _, r := range rows {
		d := Delivery{ID: r.ID, HookID: r.HookID, UUID: r.UUID, Event: r.EventType, Delivered: r.IsDelivered, Succeeded: r.IsSucceed}
		if r.RequestContent != "" {
			if err := json.Unmarshal([]byte(r.RequestContent), &d.Request); err != nil {
				return nil, fmt.Errorf("decode the request of delivery %s: %w", r.UUID, err)
			}
		}
		if r.ResponseContent != "" {
			if err := json.Unmarshal([]byte(r.ResponseContent), &d.Response); err != nil {
				return nil, fmt.Errorf("decode the response of delivery %s: %w", r.UUID, err)
			}
		}
		out = append(out, d)
	}
	return out, nil
}
