package plugin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// lockFileName is the file in the data folder that one octavo process
// holds locked while it runs.
const lockFileName = "octavo.lock"

// errDataDirBusy is returned when another process holds the data folder's
// lock.
var errDataDirBusy = errors.New("data folder is locked")

// openDataDir creates the data folder and takes its lock, so that a second
// octavo process on the same folder fails at start instead of reconciling
// the first one's runs away and fetching into the same mirrors. The caller
// must close the returned file to release the lock.
func openDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("OCTAVO_DATA_DIR (-data-dir): create data folder %s: %w; set it to a writable folder", dir, err)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("OCTAVO_DATA_DIR (-data-dir): open lock file %s: %w; set it to a writable folder", path, err)
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		if errors.Is(err, errDataDirBusy) {
			return nil, fmt.Errorf("OCTAVO_DATA_DIR (-data-dir): data folder %s is in use by another octavo process; run one octavo serve per data folder, and give each replica its own OCTAVO_DATA_DIR and a shared PostgreSQL OCTAVO_DATABASE", dir)
		}
		return nil, fmt.Errorf("OCTAVO_DATA_DIR (-data-dir): lock %s: %w", path, err)
	}
	return f, nil
}

// replicaName names this process among replicas that share a database.
// It is the host name plus a hash of the absolute data folder. Two
// processes on one host with separate data folders then never reconcile
// each other's runs, and a restart on the same folder finds its own.
func replicaName(dataDir string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "octavo"
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return host + "-" + hex.EncodeToString(sum[:4])
}
