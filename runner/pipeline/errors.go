package pipeline

import "errors"

// ErrStepLimit is returned, wrapped, when Starlark code exceeds its execution
// step limit, which usually means an endless loop.
var ErrStepLimit = errors.New("execution step limit reached")
