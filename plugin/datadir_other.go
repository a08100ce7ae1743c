//go:build !unix

package plugin

import "os"

// lockFile does nothing on systems without flock.
// TODO: use LockFileEx on Windows.
func lockFile(*os.File) error { return nil }
