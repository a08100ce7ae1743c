package store

import "errors"

// ErrNotFound is returned when a run, delivery or repository asked for by
// id or name does not exist.
var ErrNotFound = errors.New("not found")
