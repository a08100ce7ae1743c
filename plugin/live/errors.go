package live

import "errors"

// ErrHubClosed is returned by [Hub.Subscribe] when the hub's Run has
// returned, so no live events will follow.
var ErrHubClosed = errors.New("live hub is closed")
