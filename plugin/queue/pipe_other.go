//go:build !linux

package queue

import "os"

// growPipe does nothing where the pipe buffer size cannot be set.
func growPipe(*os.File) {}
